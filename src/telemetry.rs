//! Logging: one subscriber for every command, writing to stderr as text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Targets momentline's log lines come from: a bare word in `RUST_LOG` that is neither a
/// level nor one of these (`RUST_LOG=verbose`) would silence everything, so it is refused.
const TARGETS: &[&str] = &[
    "momentline",
    "actix_web",
    "actix_server",
    "actix_http",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "rusqlite",
    "r2d2",
    "tokio",
    "mio",
];
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("MOMENTLINE_LOG_FORMAT is invalid: '{0}' is not text or json")]
pub struct LogFormatError(String);

/// Logs at `info` unless `RUST_LOG` says otherwise, as text unless `MOMENTLINE_LOG_FORMAT`
/// is `json`. A `RUST_LOG` that cannot be used is logged (as a warning) with the fallback.
pub fn init() -> Result<(), LogFormatError> {
    let json = match std::env::var("MOMENTLINE_LOG_FORMAT")
        .unwrap_or_default()
        .trim()
    {
        "" | "text" => false,
        "json" => true,
        other => return Err(LogFormatError(other.to_owned())),
    };
    let (filter, problem) = filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests start several apps) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    if let Some(problem) = problem {
        tracing::warn!("RUST_LOG is invalid: {problem}; logging at info instead");
    }
    Ok(())
}

/// The filter `RUST_LOG` asks for, or `info` and what was wrong with it.
fn filter(rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let Some(directives) = rust_log.map(str::trim).filter(|d| !d.is_empty()) else {
        return (EnvFilter::new("info"), None);
    };
    let unknown = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains(['=', '[']))
        .find(|word| {
            let target = word.split("::").next().unwrap_or(word);
            word.parse::<LevelFilter>().is_err() && !TARGETS.contains(&target)
        });
    if let Some(word) = unknown {
        let problem = format!(
            "'{word}' is neither a level ({}) nor a target momentline logs from ({})",
            LEVELS.join(", "),
            TARGETS.join(", ")
        );
        return (EnvFilter::new("info"), Some(problem));
    }
    match EnvFilter::builder().parse(directives) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(format!("'{directives}': {e}"))),
    }
}

/// An error and its causes on one line, for the log.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(rust_log: &str) -> Option<String> {
        filter(Some(rust_log)).1
    }

    #[test]
    fn levels_and_known_targets_are_taken() {
        for good in [
            "info",
            "DEBUG",
            "5",
            "momentline=debug,actix_web=warn",
            "momentline::jobs",
            "warn,momentline::routes=trace",
            "",
        ] {
            assert_eq!(problem(good), None, "{good}");
        }
    }

    #[test]
    fn a_word_that_is_no_level_or_target_is_named() {
        let said = problem("verbose").expect("refused");
        assert!(said.contains("'verbose'"), "{said}");
        let said = problem("momentline=loud").expect("refused");
        assert!(said.contains("momentline=loud"), "{said}");
    }
}
