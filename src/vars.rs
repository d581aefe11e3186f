//! Reading settings from environment variables: a lookup that trims values and drops empty
//! ones, defaults, and the error that names the variable at fault. Whatever has variables of
//! its own (the settings, each provider) reads them through `Vars` and lists them as
//! `Variable`s for `--help` and the README.

/// A variable: its name, its default (empty: none), and what it sets.
pub type Variable = (&'static str, &'static str, &'static str);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{variable} is invalid: {problem}")]
    Invalid {
        variable: &'static str,
        problem: String,
    },
    #[error("{variable}{} must be set when MOMENTLINE_SMS_PROVIDER is {provider}", or_else(.instead))]
    Missing {
        variable: &'static str,
        /// A variable that would do instead.
        instead: Option<&'static str>,
        provider: &'static str,
    },
    /// More than one problem, each on a line of its own.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

fn or_else(instead: &Option<&'static str>) -> String {
    instead.map(|v| format!(" (or {v})")).unwrap_or_default()
}

/// `variable` has a value that cannot be used, for `problem`.
pub fn invalid(variable: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid { variable, problem }
}

/// The variables, through a lookup (the process environment, or a test's table).
#[derive(Clone, Copy)]
pub struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// A variable's value, trimmed; `None` when it is unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A variable's value, or `default`.
    pub fn or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// A variable `provider` cannot work without.
    pub fn need(&self, name: &'static str, provider: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing {
            variable: name,
            instead: None,
            provider,
        })
    }

    /// One of two variables `provider` cannot work without, when neither is set.
    pub fn need_one_of(
        &self,
        name: &'static str,
        instead: &'static str,
        provider: &'static str,
    ) -> Result<(), ConfigError> {
        if self.get(name).is_some() || self.get(instead).is_some() {
            return Ok(());
        }
        Err(ConfigError::Missing {
            variable: name,
            instead: Some(instead),
            provider,
        })
    }

    /// An http(s) URL without its trailing slash, or `default`.
    pub fn base_url(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        base_url(&self.or(name, default)).map_err(|p| invalid(name, p))
    }
}

/// An http(s) URL without its trailing slash.
pub fn base_url(input: &str) -> Result<String, String> {
    let trimmed = input.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("'{input}' is not an http(s) URL"))?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(format!("'{input}' is not an http(s) URL"));
    }
    Ok(trimmed.to_owned())
}
