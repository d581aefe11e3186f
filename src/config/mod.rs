//! Settings, read once from the environment (every variable optional; see README.md):
//! `Settings` here, the reading in `parse.rs`, the list of variables in `variables.rs`. Each
//! provider reads its own variables (`crate::providers::ProviderSettings::read`).

mod parse;
mod variables;

use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;

use crate::domain::number_state::{ConnectLimits, ReplyLimits};
use crate::domain::phone_number::AllowedRegions;
use crate::domain::sealed::SealingKey;
use crate::domain::secret::Secret;
use crate::providers::vonage::SignatureSecret;
pub use crate::providers::ProviderSettings;
use crate::store::WriterSettings;
pub use crate::vars::ConfigError;
pub(crate) use parse::listens_on_loopback;
pub use variables::{variables, variables_help};

/// Where Moments are created.
#[derive(Debug, Clone)]
pub enum DispatchSettings {
    /// Recorded here, with momentline's own page (the default).
    Embedded,
    /// Posted to the host platform as Standard Webhooks.
    Webhook {
        url: String,
        secret: crate::host::WebhookSecret,
    },
    /// Created on In Process, through its public API, with each artist's own key.
    InProcess(crate::host::inprocess::InProcessSettings),
}

/// Where events about numbers and Moments are delivered (`MOMENTLINE_EVENTS_URL`, or the
/// dispatch URL in `webhook` mode), signed as Standard Webhooks.
#[derive(Debug, Clone)]
pub struct EventsSettings {
    pub url: String,
    pub secret: crate::host::WebhookSecret,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: String,
    pub db_path: PathBuf,
    /// `MOMENTLINE_DATABASE_URL`: PostgreSQL instead of the SQLite file at `db_path`.
    pub database_url: Option<String>,
    pub public_url: String,
    pub manage_url: String,
    pub provider: ProviderSettings,
    /// `None` refuses every Telnyx webhook.
    pub telnyx_public_key: Option<VerifyingKey>,
    /// `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`: Twilio webhooks are refused without the
    /// token, and Twilio's media URLs may need both.
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<Secret>,
    /// Where Twilio's API is (`TWILIO_API_BASE`): media there may be fetched with the
    /// account's credentials, as may media on Twilio's own hosts.
    pub twilio_api_base: String,
    /// `None` refuses every Vonage webhook.
    pub vonage_signature: Option<SignatureSecret>,
    pub pending_ttl: chrono::Duration,
    /// How long a verification code holds from when it is sent.
    pub code_ttl: chrono::Duration,
    pub allowed_regions: AllowedRegions,
    pub media_dir: PathBuf,
    /// The wait before each retry of a failed send; its length + 1 is the number of attempts.
    pub retry_schedule: Vec<Duration>,
    pub connect_limits: ConnectLimits,
    pub reply_limits: ReplyLimits,
    /// How long one provider request may take.
    pub provider_timeout: Duration,
    /// Texts a second at most (`MOMENTLINE_SEND_RATE`); `None` for no limit.
    pub send_rate: Option<f64>,
    /// Jobs run at once (`MOMENTLINE_JOB_CONCURRENCY`).
    pub job_concurrency: usize,
    /// How long a claimed job is held before another runner may take it.
    pub job_lease: chrono::Duration,
    /// Writes that may wait for the writer (`MOMENTLINE_WRITE_QUEUE`), and per batch.
    pub writer: WriterSettings,
    /// On shutdown, how long running jobs may take to finish (`MOMENTLINE_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace: Duration,
    /// Whether media may be fetched from loopback, private and link-local addresses
    /// (`MOMENTLINE_MEDIA_ALLOW_PRIVATE`): for tests and local stand-ins only.
    pub media_allow_private: bool,
    /// Where Moments are created (`MOMENTLINE_DISPATCH`).
    pub dispatch: DispatchSettings,
    /// Where events go; `None` sends none.
    pub events: Option<EventsSettings>,
    /// Whether `GET /metrics` answers (`MOMENTLINE_METRICS`).
    pub metrics: bool,
    /// How long a photo alone or a caption alone waits for its other half
    /// (`MOMENTLINE_MERGE_SECS`); zero turns merging off.
    pub merge_window: chrono::Duration,
    /// Run the jobs runner inside `serve` (tests drive it round by round).
    pub run_workers: bool,
    /// Serve the dev phone at `/dev/phone` (`MOMENTLINE_DEV_PHONE`): for development only.
    pub dev_phone: bool,
    /// `MOMENTLINE_DEV_PHONE=force`: served even on a non-loopback address.
    pub dev_phone_forced: bool,
    /// What artists' In Process keys are sealed with at rest (`MOMENTLINE_SECRET_KEY`).
    pub secret_key: Option<SealingKey>,
}

/// The variable to set aside to look for further problems after `problem`: the one at fault
/// when it is set, else the one that made it required.
fn set_aside(problem: &ConfigError, is_set: impl Fn(&str) -> bool) -> Option<&'static str> {
    {
        let variable = match problem {
            ConfigError::Invalid { variable, .. } => *variable,
            ConfigError::Missing { .. } => return Some("MOMENTLINE_SMS_PROVIDER"),
            ConfigError::Several(_) => return None,
        };
        if is_set(variable) {
            return Some(variable);
        }
        Some(match variable {
            "MOMENTLINE_DISPATCH_URL" | "MOMENTLINE_DISPATCH_SECRET" => "MOMENTLINE_DISPATCH",
            "MOMENTLINE_EVENTS_SECRET" => "MOMENTLINE_EVENTS_URL",
            _ => return None,
        })
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `var`, so tests need not touch the process environment. Every
    /// problem is reported at once: a variable at fault is set aside (as if unset) and the
    /// rest read again, until no new problem turns up.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut aside: Vec<&'static str> = Vec::new();
        // A provider's missing credentials are stood in for, so every one is named at once.
        let mut stood_in: Vec<&'static str> = Vec::new();
        let mut problems: Vec<ConfigError> = Vec::new();
        loop {
            let read = Self::read(&|name| {
                if aside.contains(&name) {
                    None
                } else if stood_in.contains(&name) {
                    Some("missing".to_owned())
                } else {
                    var(name)
                }
            });
            let problem = match read {
                Ok(settings) if problems.is_empty() => return Ok(settings),
                Ok(_) => break,
                Err(problem) => problem,
            };
            if let ConfigError::Missing { variable, .. } = &problem {
                if !stood_in.contains(variable) {
                    stood_in.push(variable);
                    problems.push(problem);
                    continue;
                }
            }
            let next = set_aside(&problem, |name| {
                var(name).is_some_and(|v| !v.trim().is_empty()) && !aside.contains(&name)
            });
            // A variable set aside for its bad value may then be missing: said once.
            let again = matches!(&problem, ConfigError::Invalid { variable, .. } if aside.contains(variable));
            if !again {
                problems.push(problem);
            }
            match next {
                Some(variable) if !aside.contains(&variable) => aside.push(variable),
                _ => break,
            }
        }
        Err(match problems.len() {
            1 => problems.remove(0),
            _ => ConfigError::Several(problems),
        })
    }
}

/// A database URL with its password hidden, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl Settings {
    /// Where the database is.
    pub fn database(&self) -> crate::store::Database {
        match &self.database_url {
            Some(url) => crate::store::Database::Postgres(url.clone()),
            None => crate::store::Database::Sqlite(self.db_path.clone()),
        }
    }

    /// The database, for people: the SQLite path, or the PostgreSQL URL without its password.
    pub fn database_name(&self) -> String {
        match &self.database_url {
            Some(url) => redact(url),
            None => self.db_path.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn nothing_set_means_the_embedded_defaults() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.addr, "127.0.0.1:8080");
        assert_eq!(s.db_path, PathBuf::from("momentline.db"));
        assert_eq!(s.media_dir, PathBuf::from("media"));
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert!(matches!(s.provider, ProviderSettings::Console));
        assert_eq!(s.pending_ttl, chrono::Duration::seconds(86_400));
        assert_eq!(s.code_ttl, chrono::Duration::seconds(600));
        assert_eq!(s.retry_schedule.len(), 5);
        assert!(s.telnyx_public_key.is_none());
        assert_eq!(s.merge_window, chrono::Duration::seconds(20));
    }

    #[test]
    fn the_in_process_host_needs_the_secret_key_and_refuses_bad_values_by_name() {
        let refused = |vars: &[(&str, &str)], variable: &str| match settings(vars) {
            Err(ConfigError::Invalid {
                variable: named, ..
            }) => assert_eq!(named, variable),
            other => panic!("{vars:?} gave {other:?}"),
        };
        let key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        refused(
            &[("MOMENTLINE_DISPATCH", "inprocess")],
            "MOMENTLINE_SECRET_KEY",
        );
        for (variable, value) in [
            ("INPROCESS_CHAIN", "ethereum"),
            ("INPROCESS_API_BASE", "inprocess.world/api"),
            ("INPROCESS_SITE_URL", "ftp://inprocess.world"),
            ("INPROCESS_CREATE_REFERRAL", "0x123"),
            ("INPROCESS_TIMEOUT_SECS", "0"),
            ("INPROCESS_LOOK_AFTER_SECS", "soon"),
        ] {
            refused(
                &[
                    ("MOMENTLINE_DISPATCH", "inprocess"),
                    ("MOMENTLINE_SECRET_KEY", key),
                    (variable, value),
                ],
                variable,
            );
        }
        let good = settings(&[
            ("MOMENTLINE_DISPATCH", "inprocess"),
            ("MOMENTLINE_SECRET_KEY", key),
            ("INPROCESS_CHAIN", "base-sepolia"),
            ("INPROCESS_SITE_URL", "https://testnet.inprocess.world/"),
        ])
        .expect("settings");
        match good.dispatch {
            DispatchSettings::InProcess(i) => {
                assert_eq!(i.chain, crate::domain::chain::Chain::BaseSepolia);
                assert_eq!(i.site_url, "https://testnet.inprocess.world");
                assert_eq!(i.api_base, "https://inprocess.world/api");
                assert_eq!(i.create_referral, None);
                assert_eq!(i.timeout, std::time::Duration::from_secs(240));
            }
            other => panic!("{other:?}"),
        }
        assert!(good.events.is_none(), "no events unless asked for");
    }

    #[test]
    fn bad_values_of_the_job_and_dispatch_variables_are_refused_by_name() {
        let refused = |vars: &[(&str, &str)], variable: &str| match settings(vars) {
            Err(ConfigError::Invalid {
                variable: named, ..
            }) => assert_eq!(named, variable),
            other => panic!("{vars:?} gave {other:?}"),
        };
        refused(&[("MOMENTLINE_SEND_RATE", "abc")], "MOMENTLINE_SEND_RATE");
        refused(&[("MOMENTLINE_SEND_RATE", "0")], "MOMENTLINE_SEND_RATE");
        refused(
            &[("MOMENTLINE_JOB_CONCURRENCY", "0")],
            "MOMENTLINE_JOB_CONCURRENCY",
        );
        refused(
            &[("MOMENTLINE_WRITE_QUEUE", "-1")],
            "MOMENTLINE_WRITE_QUEUE",
        );
        refused(
            &[("MOMENTLINE_SHUTDOWN_GRACE_SECS", "1h")],
            "MOMENTLINE_SHUTDOWN_GRACE_SECS",
        );
        refused(
            &[("MOMENTLINE_MEDIA_ALLOW_PRIVATE", "maybe")],
            "MOMENTLINE_MEDIA_ALLOW_PRIVATE",
        );
        refused(&[("MOMENTLINE_MERGE_SECS", "-1")], "MOMENTLINE_MERGE_SECS");
        refused(
            &[("MOMENTLINE_MERGE_SECS", "3601")],
            "MOMENTLINE_MERGE_SECS",
        );
        refused(&[("MOMENTLINE_DISPATCH", "ftp")], "MOMENTLINE_DISPATCH");
        refused(
            &[("MOMENTLINE_DISPATCH", "webhook")],
            "MOMENTLINE_DISPATCH_URL",
        );
        refused(
            &[
                ("MOMENTLINE_DISPATCH", "webhook"),
                ("MOMENTLINE_DISPATCH_URL", "https://host.example/moments"),
                ("MOMENTLINE_DISPATCH_SECRET", "whsec_!!"),
            ],
            "MOMENTLINE_DISPATCH_SECRET",
        );
        let good = settings(&[
            ("MOMENTLINE_SEND_RATE", "2.5"),
            ("MOMENTLINE_DISPATCH", "webhook"),
            ("MOMENTLINE_DISPATCH_URL", "https://host.example/moments/"),
            (
                "MOMENTLINE_DISPATCH_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ])
        .expect("settings");
        assert_eq!(good.send_rate, Some(2.5));
        assert!(
            matches!(
                good.dispatch,
                DispatchSettings::Webhook { ref url, .. } if url == "https://host.example/moments/"
            ),
            "an endpoint keeps its trailing slash"
        );
    }

    #[test]
    fn events_go_to_their_own_url_or_the_dispatch_url_and_need_a_secret() {
        const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let url = |vars: &[(&str, &str)]| {
            settings(vars)
                .expect("settings")
                .events
                .map(|events| events.url)
        };
        assert_eq!(url(&[]), None, "no events by default");
        let webhook = [
            ("MOMENTLINE_DISPATCH", "webhook"),
            ("MOMENTLINE_DISPATCH_URL", "https://host.example/moments"),
            ("MOMENTLINE_DISPATCH_SECRET", SECRET),
        ];
        assert_eq!(
            url(&webhook).as_deref(),
            Some("https://host.example/moments"),
            "webhook mode sends events to the dispatch URL"
        );
        let off = [webhook.as_slice(), &[("MOMENTLINE_EVENTS_URL", "off")]].concat();
        let refused = settings(&off).err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.starts_with("MOMENTLINE_EVENTS_URL")
                    && e.contains("MOMENTLINE_DISPATCH is webhook")
                    && e.contains("UNDO")),
            "the host must hear of UNDO: {refused:?}"
        );
        assert_eq!(url(&[("MOMENTLINE_EVENTS_URL", "off")]), None);
        let own = [
            webhook.as_slice(),
            &[("MOMENTLINE_EVENTS_URL", "https://host.example/events/")],
        ]
        .concat();
        assert_eq!(
            url(&own).as_deref(),
            Some("https://host.example/events/"),
            "an endpoint keeps its trailing slash"
        );
        assert_eq!(
            settings(&[("MOMENTLINE_EVENTS_URL", "https://host.example/events")])
                .err()
                .map(|e| e.to_string().split(' ').next().map(str::to_owned)),
            Some(Some("MOMENTLINE_EVENTS_SECRET".to_owned())),
            "embedded dispatch has no secret to share"
        );
        let embedded = [
            ("MOMENTLINE_EVENTS_URL", "https://host.example/events"),
            ("MOMENTLINE_EVENTS_SECRET", SECRET),
        ];
        assert_eq!(
            url(&embedded).as_deref(),
            Some("https://host.example/events")
        );
        let bad = [
            ("MOMENTLINE_EVENTS_URL", "https://host.example/events"),
            ("MOMENTLINE_EVENTS_SECRET", "whsec_!!"),
        ];
        assert!(settings(&bad)
            .err()
            .is_some_and(|e| e.to_string().starts_with("MOMENTLINE_EVENTS_SECRET")));
        assert!(settings(&[
            ("MOMENTLINE_EVENTS_URL", "ftp://x"),
            ("MOMENTLINE_EVENTS_SECRET", SECRET)
        ])
        .err()
        .is_some_and(|e| e.to_string().starts_with("MOMENTLINE_EVENTS_URL")));
    }

    #[test]
    fn every_problem_is_reported_at_once_each_naming_its_variable() {
        let problems = settings(&[
            ("MOMENTLINE_SEND_RATE", "fast"),
            ("MOMENTLINE_JOB_CONCURRENCY", "0"),
            ("MOMENTLINE_DISPATCH", "webhook"),
            ("MOMENTLINE_SMS_PROVIDER", "telnyx"),
            ("MOMENTLINE_PROMPTS_PER_DAY", "-1"),
        ])
        .err()
        .map(|e| e.to_string())
        .expect("refused");
        let lines: Vec<&str> = problems.lines().collect();
        for variable in [
            "MOMENTLINE_SEND_RATE",
            "MOMENTLINE_JOB_CONCURRENCY",
            "MOMENTLINE_DISPATCH_URL",
            "TELNYX_FROM_NUMBER",
            "MOMENTLINE_PROMPTS_PER_DAY",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(variable)),
                "{variable} not reported in:\n{problems}"
            );
        }
        // Every credential a provider lacks is named in one go.
        let twilio = settings(&[("MOMENTLINE_SMS_PROVIDER", "twilio")])
            .err()
            .map(|e| e.to_string())
            .expect("refused");
        for variable in [
            "TWILIO_FROM_NUMBER",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
        ] {
            assert!(twilio.contains(variable), "{variable} not named: {twilio}");
        }
        // One problem alone is reported as it is.
        assert!(matches!(
            settings(&[("MOMENTLINE_SEND_RATE", "fast")]),
            Err(ConfigError::Invalid {
                variable: "MOMENTLINE_SEND_RATE",
                ..
            })
        ));
    }

    #[test]
    fn the_texting_limits_are_variables() {
        let s = settings(&[
            ("MOMENTLINE_PROMPT_COOLDOWN_SECS", "5"),
            ("MOMENTLINE_PROMPTS_PER_DAY", "2"),
            ("MOMENTLINE_CONNECTS_PER_HOUR", "7"),
            ("MOMENTLINE_REPLIES_PER_HOUR", "9"),
            ("MOMENTLINE_REMINDERS_PER_HOUR", "1"),
            ("MOMENTLINE_WELCOME_INTERVAL_SECS", "3600"),
        ])
        .expect("settings");
        assert_eq!(
            s.connect_limits.prompt_cooldown,
            chrono::Duration::seconds(5)
        );
        assert_eq!(s.connect_limits.prompts_per_day, 2);
        assert_eq!(s.connect_limits.connects_per_hour, 7);
        assert_eq!(s.reply_limits.replies_per_hour, 9);
        assert_eq!(s.reply_limits.reminders_per_hour, 1);
        assert_eq!(s.reply_limits.welcome_interval, chrono::Duration::hours(1));
        let defaults = settings(&[]).expect("settings");
        assert_eq!(defaults.connect_limits, ConnectLimits::default());
        assert_eq!(defaults.reply_limits, ReplyLimits::default());
    }

    #[test]
    fn every_variable_read_is_listed_for_help_and_in_the_readme() {
        // Where variables are read: the settings and each provider.
        let source = [
            include_str!("parse.rs"),
            include_str!("../providers/mod.rs"),
            include_str!("../providers/telnyx.rs"),
            include_str!("../providers/twilio.rs"),
            include_str!("../providers/vonage/mod.rs"),
            include_str!("../providers/textflow.rs"),
            include_str!("../providers/phonify.rs"),
        ]
        .concat();
        let readme = include_str!("../../README.md");
        let listed: Vec<&str> = variables().iter().map(|(name, _, _)| *name).collect();
        let read = source
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|word| {
                word.len() > 4
                    && word.contains('_')
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .collect::<std::collections::BTreeSet<_>>();
        for name in read {
            assert!(
                listed.contains(&name),
                "{name} is read but not in VARIABLES"
            );
        }
        for name in &listed {
            assert!(
                readme.contains(&format!("`{name}`")),
                "{name} is not in the README"
            );
        }
    }

    #[test]
    fn no_credential_is_shown_when_settings_are_printed() {
        let secrets = [
            ("TWILIO_AUTH_TOKEN", "tw-token-0123456789"),
            ("TELNYX_API_KEY", "KEY-telnyx-0123456789"),
            ("VONAGE_API_SECRET", "vonage-secret-0123"),
            ("VONAGE_SIGNATURE_SECRET", "vonage-signature-0123"),
        ];
        for provider in ["twilio", "telnyx", "vonage"] {
            let mut vars = vec![
                ("MOMENTLINE_SMS_PROVIDER", provider),
                ("TWILIO_ACCOUNT_SID", "AC1"),
                ("TWILIO_FROM_NUMBER", "+18445550001"),
                ("TELNYX_FROM_NUMBER", "+18445550001"),
                ("VONAGE_API_KEY", "key"),
                ("VONAGE_FROM", "18445550001"),
            ];
            vars.extend_from_slice(&secrets);
            let printed = format!("{:?}", settings(&vars).expect("settings"));
            for (name, value) in secrets {
                assert!(!printed.contains(value), "{name} printed with {provider}");
            }
            assert!(printed.contains("[redacted]"));
        }
    }

    #[test]
    fn a_database_url_selects_postgres_and_is_checked() {
        let s = settings(&[(
            "MOMENTLINE_DATABASE_URL",
            "postgres://momentline:secret@db.internal:5432/momentline",
        )])
        .expect("ok");
        assert!(matches!(s.database(), crate::store::Database::Postgres(_)));
        assert_eq!(
            s.database_name(),
            "postgres://momentline:***@db.internal:5432/momentline"
        );
        let s = settings(&[]).expect("ok");
        assert_eq!(
            s.database(),
            crate::store::Database::Sqlite(PathBuf::from("momentline.db"))
        );
        for bad in ["mysql://x@y/z", "postgres://u:pw@host:notaport/db"] {
            let e = settings(&[("MOMENTLINE_DATABASE_URL", bad)])
                .expect_err("refused")
                .to_string();
            assert!(e.contains("MOMENTLINE_DATABASE_URL"), "{e}");
            assert!(!e.contains("pw@"), "the password is never shown: {e}");
        }
    }

    #[test]
    fn the_media_dir_sits_beside_the_database() {
        let s = settings(&[("MOMENTLINE_DB", "/var/lib/momentline/m.db")]).expect("ok");
        assert_eq!(s.media_dir, PathBuf::from("/var/lib/momentline/media"));
    }

    #[test]
    fn the_listen_address_and_the_log_format_are_named_with_every_other_problem() {
        let err = settings(&[
            ("MOMENTLINE_ADDR", "nowhere"),
            ("MOMENTLINE_LOG_FORMAT", "yaml"),
            ("MOMENTLINE_SEND_RATE", "fast"),
        ])
        .expect_err("three problems");
        let said = err.to_string();
        for variable in [
            "MOMENTLINE_ADDR",
            "MOMENTLINE_LOG_FORMAT",
            "MOMENTLINE_SEND_RATE",
        ] {
            assert!(said.contains(variable), "{variable} in {said}");
        }
        assert!(said.contains("'yaml' is not text or json"), "{said}");
        assert!(settings(&[("MOMENTLINE_ADDR", ":8080")]).is_ok());
    }

    #[test]
    fn a_missing_provider_credential_names_the_variable() {
        let err = settings(&[
            ("MOMENTLINE_SMS_PROVIDER", "telnyx"),
            ("TELNYX_FROM_NUMBER", "+18445550001"),
        ])
        .expect_err("no key");
        assert_eq!(
            err.to_string(),
            "TELNYX_API_KEY must be set when MOMENTLINE_SMS_PROVIDER is telnyx"
        );
        let err = settings(&[
            ("MOMENTLINE_SMS_PROVIDER", "telnyx"),
            ("TELNYX_API_KEY", "k"),
        ])
        .expect_err("no sender");
        assert_eq!(
            err.to_string(),
            "TELNYX_FROM_NUMBER (or TELNYX_MESSAGING_PROFILE_ID) must be set when \
             MOMENTLINE_SMS_PROVIDER is telnyx",
            "the sender can be either"
        );
        match settings(&[("MOMENTLINE_DEV_PHONE", "maybe")]) {
            Err(e) => assert!(e
                .to_string()
                .contains("is not 1 (or true, yes), 0 (or false, no) or force")),
            Ok(_) => panic!("maybe is no answer"),
        }
    }

    #[test]
    fn each_provider_names_what_it_lacks() {
        for (provider, first_missing) in [
            (
                "twilio",
                "TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)",
            ),
            ("vonage", "VONAGE_API_KEY"),
            ("textflow", "TEXTFLOW_API_KEY"),
            ("phonify", "PHONIFY_API_KEY"),
        ] {
            let err = settings(&[("MOMENTLINE_SMS_PROVIDER", provider)]).expect_err(provider);
            // Every missing one is named, a line each, the first first.
            assert_eq!(
                err.to_string().lines().next().map(str::to_owned),
                Some(format!(
                    "{first_missing} must be set when MOMENTLINE_SMS_PROVIDER is {provider}"
                ))
            );
        }
        let s = settings(&[
            ("MOMENTLINE_SMS_PROVIDER", "twilio"),
            ("MOMENTLINE_PUBLIC_URL", "https://m.example"),
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_MESSAGING_SERVICE_SID", "MG1"),
        ])
        .expect("complete");
        let ProviderSettings::Twilio(twilio) = s.provider else {
            panic!("not twilio");
        };
        assert_eq!(
            twilio.status_callback,
            "https://m.example/webhooks/twilio/status"
        );
        assert_eq!(twilio.api_base, "https://api.twilio.com");
    }

    #[test]
    fn the_vonage_signature_method_defaults_to_sha256() {
        let s = settings(&[("VONAGE_SIGNATURE_SECRET", "s")]).expect("ok");
        assert_eq!(
            s.vonage_signature.map(|v| v.method),
            Some(crate::providers::vonage::SignatureMethod::HmacSha256)
        );
        let err = settings(&[
            ("VONAGE_SIGNATURE_SECRET", "s"),
            ("VONAGE_SIGNATURE_METHOD", "crc"),
        ])
        .expect_err("bad method");
        assert!(err.to_string().starts_with("VONAGE_SIGNATURE_METHOD"));
    }

    #[test]
    fn bad_values_are_named() {
        for (var, value) in [
            ("MOMENTLINE_SMS_PROVIDER", "pigeon"),
            ("MOMENTLINE_PENDING_TTL_SECS", "soon"),
            ("MOMENTLINE_PENDING_TTL_SECS", "99999999999999999"),
            ("MOMENTLINE_CODE_TTL_SECS", "0"),
            ("MOMENTLINE_CODE_TTL_SECS", "ten minutes"),
            ("MOMENTLINE_RETRY_SCHEDULE", "5,99999999999999"),
            ("MOMENTLINE_ALLOWED_COUNTRIES", "USA"),
            ("MOMENTLINE_PUBLIC_URL", "example.com"),
            ("TELNYX_PUBLIC_KEY", "nope"),
            ("MOMENTLINE_RETRY_SCHEDULE", "5,x"),
            ("MOMENTLINE_METRICS", "maybe"),
        ] {
            let err = settings(&[(var, value)]).expect_err(var);
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn a_bare_port_listens_everywhere() {
        let s = settings(&[("MOMENTLINE_ADDR", ":0")]).expect("ok");
        assert_eq!(s.addr, "0.0.0.0:0");
    }

    #[test]
    fn the_dev_phone_is_off_unless_asked_for() {
        assert!(!settings(&[]).expect("defaults").dev_phone);
        let on = settings(&[("MOMENTLINE_DEV_PHONE", "1")]).expect("loopback");
        assert!(on.dev_phone);
        for addr in ["localhost:8080", "[::1]:0", "127.0.0.2:9000"] {
            let on = settings(&[("MOMENTLINE_DEV_PHONE", "1"), ("MOMENTLINE_ADDR", addr)]);
            assert!(on.expect(addr).dev_phone, "{addr}");
        }
    }

    #[test]
    fn the_dev_phone_is_1_0_or_force() {
        let forced = settings(&[
            ("MOMENTLINE_DEV_PHONE", "force"),
            ("MOMENTLINE_ADDR", ":8080"),
        ])
        .expect("force");
        assert!(forced.dev_phone && forced.dev_phone_forced);
        let on = settings(&[("MOMENTLINE_DEV_PHONE", "1"), ("MOMENTLINE_ADDR", ":8080")])
            .expect("read; serve refuses it (startup::preflight)");
        assert!(on.dev_phone && !on.dev_phone_forced);
        let off = settings(&[("MOMENTLINE_DEV_PHONE", "0"), ("MOMENTLINE_ADDR", ":8080")]);
        assert!(!off.expect("off").dev_phone);
        assert!(matches!(
            settings(&[("MOMENTLINE_DEV_PHONE", "maybe")]),
            Err(ConfigError::Invalid {
                variable: "MOMENTLINE_DEV_PHONE",
                ..
            })
        ));
    }

    #[test]
    fn urls_lose_their_trailing_slash() {
        let s = settings(&[("MOMENTLINE_PUBLIC_URL", "https://m.example/")]).expect("ok");
        assert_eq!(s.public_url, "https://m.example");
    }
}
