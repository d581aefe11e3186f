//! Settings, read once from the environment (every variable optional; see README.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;

use crate::domain::number_state::{ConnectLimits, ReplyLimits};
use crate::domain::phone_number::AllowedRegions;
use crate::domain::secret::Secret;
use crate::providers::phonify::PhonifyConfig;
use crate::providers::telnyx::{self, TelnyxConfig};
use crate::providers::textflow::TextFlowConfig;
use crate::providers::twilio::TwilioConfig;
use crate::providers::vonage::{SignatureMethod, SignatureSecret, VonageConfig};
use crate::store::WriterSettings;

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
}

/// Where events about numbers and Moments are delivered (`MOMENTLINE_EVENTS_URL`, or the
/// dispatch URL in `webhook` mode), signed as Standard Webhooks.
#[derive(Debug, Clone)]
pub struct EventsSettings {
    pub url: String,
    pub secret: crate::host::WebhookSecret,
}

/// The outbound provider and its credentials.
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    Console,
    Telnyx(TelnyxConfig),
    Twilio(TwilioConfig),
    Vonage(VonageConfig),
    TextFlow(TextFlowConfig),
    Phonify(PhonifyConfig),
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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{variable} is invalid: {problem}")]
    Invalid {
        variable: &'static str,
        problem: String,
    },
    #[error("{variable} must be set when MOMENTLINE_SMS_PROVIDER is {provider}")]
    Missing {
        variable: &'static str,
        provider: &'static str,
    },
    /// More than one problem, each on a line of its own.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// The variable to set aside to look for further problems: the one at fault when it is
    /// set, else the one that made it required.
    fn set_aside(&self, is_set: impl Fn(&str) -> bool) -> Option<&'static str> {
        let variable = match self {
            Self::Invalid { variable, .. } => *variable,
            Self::Missing { .. } => return Some("MOMENTLINE_SMS_PROVIDER"),
            Self::Several(_) => return None,
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

/// The values of `MOMENTLINE_SMS_PROVIDER`.
const PROVIDERS: &[&str] = &[
    "console", "telnyx", "twilio", "vonage", "textflow", "phonify",
];
const DEFAULT_RETRY_SCHEDULE: &str = "5,30,120,600,3600";
/// Every variable momentline reads: its name, its default, and what it sets. `momentline
/// --help` prints these; the README's tables say more (a test checks both list them all).
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "MOMENTLINE_ADDR",
        "127.0.0.1:8080",
        "listen address; port 0 picks a free one",
    ),
    ("MOMENTLINE_DB", "momentline.db", "SQLite file"),
    (
        "MOMENTLINE_DATABASE_URL",
        "(none: SQLite)",
        "postgres:// URL: PostgreSQL instead of SQLite, for several instances",
    ),
    (
        "MOMENTLINE_PUBLIC_URL",
        "http://127.0.0.1:8080",
        "public base URL of links and callbacks",
    ),
    (
        "MOMENTLINE_MANAGE_URL",
        "https://inprocess.world/manage",
        "where unknown numbers are sent",
    ),
    (
        "MOMENTLINE_SMS_PROVIDER",
        "console",
        "console, telnyx, twilio, vonage, textflow or phonify",
    ),
    (
        "MOMENTLINE_PENDING_TTL_SECS",
        "86400",
        "how long a connect request waits for its yes",
    ),
    (
        "MOMENTLINE_PROMPT_COOLDOWN_SECS",
        "60",
        "least time between two prompts or codes to one number",
    ),
    (
        "MOMENTLINE_PROMPTS_PER_DAY",
        "5",
        "prompts and codes one number may get in 24 hours",
    ),
    (
        "MOMENTLINE_CONNECTS_PER_HOUR",
        "30",
        "prompts and codes one artist may cause in an hour",
    ),
    (
        "MOMENTLINE_REPLIES_PER_HOUR",
        "30",
        "automatic replies one number may get in an hour",
    ),
    (
        "MOMENTLINE_REMINDERS_PER_HOUR",
        "3",
        "reminders to reply yes one number may get in an hour",
    ),
    (
        "MOMENTLINE_WELCOME_INTERVAL_SECS",
        "86400",
        "least time between two welcomes to one unknown number",
    ),
    (
        "MOMENTLINE_CODE_TTL_SECS",
        "600",
        "how long a texted verification code holds",
    ),
    (
        "MOMENTLINE_MERGE_SECS",
        "20",
        "how long a photo alone or a caption alone waits for its other half; 0 for never",
    ),
    (
        "MOMENTLINE_ALLOWED_COUNTRIES",
        "US,CA",
        "ISO regions that may be connected; * for all",
    ),
    (
        "MOMENTLINE_MEDIA_DIR",
        "media/ beside the database",
        "where Moment media is kept",
    ),
    (
        "MOMENTLINE_RETRY_SCHEDULE",
        DEFAULT_RETRY_SCHEDULE,
        "seconds before each retry of a job",
    ),
    ("MOMENTLINE_SEND_RATE", "no limit", "texts a second at most"),
    ("MOMENTLINE_JOB_CONCURRENCY", "64", "jobs running at once"),
    (
        "MOMENTLINE_WRITE_QUEUE",
        "1024",
        "writes that may wait; past it, 503",
    ),
    (
        "MOMENTLINE_JOB_LEASE_SECS",
        "60",
        "how long a job's claim holds unless renewed; another instance then takes it over",
    ),
    (
        "MOMENTLINE_SHUTDOWN_GRACE_SECS",
        "10",
        "on SIGTERM, time for running jobs to finish",
    ),
    (
        "MOMENTLINE_DISPATCH",
        "embedded",
        "where Moments are created: embedded or webhook",
    ),
    (
        "MOMENTLINE_DISPATCH_URL",
        "",
        "webhook: the host's endpoint for new Moments",
    ),
    (
        "MOMENTLINE_DISPATCH_SECRET",
        "",
        "webhook: the signing secret, whsec_ and base64",
    ),
    (
        "MOMENTLINE_EVENTS_URL",
        "the dispatch URL in webhook mode",
        "where events go; off for none (not with webhook dispatch)",
    ),
    (
        "MOMENTLINE_EVENTS_SECRET",
        "MOMENTLINE_DISPATCH_SECRET",
        "the events' signing secret",
    ),
    (
        "MOMENTLINE_MEDIA_ALLOW_PRIVATE",
        "0",
        "1 fetches media from private addresses (tests)",
    ),
    (
        "MOMENTLINE_METRICS",
        "1",
        "0 turns GET /metrics (Prometheus) off",
    ),
    (
        "MOMENTLINE_LOG_FORMAT",
        "text",
        "log lines as text or json (one object a line)",
    ),
    (
        "MOMENTLINE_DEV_PHONE",
        "0",
        "1 serves the dev phone at /dev/phone (development only)",
    ),
    ("TELNYX_API_KEY", "", "Telnyx: API v2 key"),
    ("TELNYX_FROM_NUMBER", "", "Telnyx: the sender number"),
    (
        "TELNYX_MESSAGING_PROFILE_ID",
        "",
        "Telnyx: or the sending messaging profile",
    ),
    (
        "TELNYX_PUBLIC_KEY",
        "",
        "Telnyx: webhook Ed25519 public key",
    ),
    (
        "TELNYX_API_BASE",
        "https://api.telnyx.com",
        "Telnyx: API base",
    ),
    ("TWILIO_ACCOUNT_SID", "", "Twilio: account SID"),
    (
        "TWILIO_AUTH_TOKEN",
        "",
        "Twilio: auth token (also verifies webhooks)",
    ),
    ("TWILIO_FROM_NUMBER", "", "Twilio: the sender number"),
    (
        "TWILIO_MESSAGING_SERVICE_SID",
        "",
        "Twilio: or the sending messaging service",
    ),
    (
        "TWILIO_API_BASE",
        "https://api.twilio.com",
        "Twilio: API base",
    ),
    ("VONAGE_API_KEY", "", "Vonage: API key"),
    ("VONAGE_API_SECRET", "", "Vonage: API secret"),
    ("VONAGE_FROM", "", "Vonage: the sender"),
    (
        "VONAGE_SIGNATURE_SECRET",
        "",
        "Vonage: webhook signature secret",
    ),
    (
        "VONAGE_SIGNATURE_METHOD",
        "sha256",
        "Vonage: md5hash, md5, sha1, sha256 or sha512",
    ),
    (
        "VONAGE_API_BASE",
        "https://rest.nexmo.com",
        "Vonage: API base",
    ),
    ("TEXTFLOW_API_KEY", "", "TextFlow: API key"),
    (
        "TEXTFLOW_API_BASE",
        "https://textflow.me",
        "TextFlow: API base",
    ),
    ("PHONIFY_API_KEY", "", "Phonify: API key"),
    ("PHONIFY_APP", "", "Phonify: app id"),
    (
        "PHONIFY_API_BASE",
        "https://api.phonify.io",
        "Phonify: API base",
    ),
    ("RUST_LOG", "info", "log filter"),
];

/// The variables, as `momentline --help` shows them.
pub fn variables_help() -> String {
    let width = VARIABLES.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    let mut help = String::from("Environment variables:\n");
    for (name, default, what) in VARIABLES {
        let default = if default.is_empty() {
            String::new()
        } else {
            format!(" [default: {default}]")
        };
        help.push_str(&format!("  {name:width$}  {what}{default}\n"));
    }
    help
}

/// The longest wait any duration setting takes: a year.
const MAX_SECS: i64 = 366 * 24 * 3600;

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
            let read = Self::read(|name| {
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
            let next = problem.set_aside(|name| {
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

    fn read(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let or = |name: &str, default: &str| get(name).unwrap_or_else(|| default.to_owned());
        let invalid =
            |variable: &'static str, problem: String| ConfigError::Invalid { variable, problem };

        let db_path = PathBuf::from(or("MOMENTLINE_DB", "momentline.db"));
        let database_url = get("MOMENTLINE_DATABASE_URL")
            .map(|url| postgres_url(&url))
            .transpose()
            .map_err(|p| invalid("MOMENTLINE_DATABASE_URL", p))?;
        let media_dir = get("MOMENTLINE_MEDIA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| beside(&db_path, "media"));
        let public_url = base_url(&or("MOMENTLINE_PUBLIC_URL", "http://127.0.0.1:8080"))
            .map_err(|p| invalid("MOMENTLINE_PUBLIC_URL", p))?;
        let manage_url = base_url(&or(
            "MOMENTLINE_MANAGE_URL",
            "https://inprocess.world/manage",
        ))
        .map_err(|p| invalid("MOMENTLINE_MANAGE_URL", p))?;
        let pending_ttl = or("MOMENTLINE_PENDING_TTL_SECS", "86400")
            .parse::<i64>()
            .ok()
            .filter(|s| (0..=MAX_SECS).contains(s))
            .and_then(chrono::Duration::try_seconds)
            .ok_or_else(|| {
                invalid(
                    "MOMENTLINE_PENDING_TTL_SECS",
                    format!("not a whole number of seconds from 0 to {MAX_SECS}"),
                )
            })?;
        let code_ttl = or("MOMENTLINE_CODE_TTL_SECS", "600")
            .parse::<i64>()
            .ok()
            .filter(|s| (1..=MAX_SECS).contains(s))
            .and_then(chrono::Duration::try_seconds)
            .ok_or_else(|| {
                invalid(
                    "MOMENTLINE_CODE_TTL_SECS",
                    format!("not a whole number of seconds from 1 to {MAX_SECS}"),
                )
            })?;
        let allowed_regions = AllowedRegions::parse(&or("MOMENTLINE_ALLOWED_COUNTRIES", "US,CA"))
            .map_err(|p| invalid("MOMENTLINE_ALLOWED_COUNTRIES", p))?;
        let retry_schedule =
            parse_schedule(&or("MOMENTLINE_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE))
                .map_err(|p| invalid("MOMENTLINE_RETRY_SCHEDULE", p))?;
        let send_rate = get("MOMENTLINE_SEND_RATE")
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0 && *r <= 100_000.0)
                    .ok_or_else(|| {
                        invalid(
                            "MOMENTLINE_SEND_RATE",
                            format!("'{v}' is not a number of texts a second above 0 and at most 100000"),
                        )
                    })
            })
            .transpose()?;
        let whole =
            |variable: &'static str, default: &str, range: std::ops::RangeInclusive<u64>| {
                let value = or(variable, default);
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        invalid(
                            variable,
                            format!(
                                "'{value}' is not a whole number from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        )
                    })
            };
        let job_concurrency = whole("MOMENTLINE_JOB_CONCURRENCY", "64", 1..=4096)?;
        let write_queue = whole("MOMENTLINE_WRITE_QUEUE", "1024", 1..=1_000_000)?;
        let shutdown_grace = whole("MOMENTLINE_SHUTDOWN_GRACE_SECS", "10", 0..=3600)?;
        let job_lease = whole("MOMENTLINE_JOB_LEASE_SECS", "60", 3..=3600)?;
        let merge_secs = whole("MOMENTLINE_MERGE_SECS", "20", 0..=3600)?;
        // The limits against texting a number too often (DESIGN.md's pumping limits).
        let count = |variable: &'static str, default: &str| {
            whole(variable, default, 0..=1_000_000).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let secs = |variable: &'static str, default: &str| {
            whole(variable, default, 0..=MAX_SECS.unsigned_abs())
                .map(|n| chrono::Duration::seconds(i64::try_from(n).unwrap_or(MAX_SECS)))
        };
        let connect_limits = ConnectLimits {
            prompt_cooldown: secs("MOMENTLINE_PROMPT_COOLDOWN_SECS", "60")?,
            prompts_per_day: count("MOMENTLINE_PROMPTS_PER_DAY", "5")? as usize,
            connects_per_hour: count("MOMENTLINE_CONNECTS_PER_HOUR", "30")? as usize,
        };
        let reply_limits = ReplyLimits {
            reminders_per_hour: count("MOMENTLINE_REMINDERS_PER_HOUR", "3")?,
            replies_per_hour: count("MOMENTLINE_REPLIES_PER_HOUR", "30")?,
            welcome_interval: secs("MOMENTLINE_WELCOME_INTERVAL_SECS", "86400")?,
        };
        let switch = |variable: &'static str, default: &str| match or(variable, default).as_str() {
            "0" | "false" | "no" => Ok(false),
            "1" | "true" | "yes" => Ok(true),
            other => Err(invalid(variable, format!("'{other}' is not 1 or 0"))),
        };
        let media_allow_private = switch("MOMENTLINE_MEDIA_ALLOW_PRIVATE", "0")?;
        let metrics = switch("MOMENTLINE_METRICS", "1")?;
        let addr = listen_addr(&or("MOMENTLINE_ADDR", "127.0.0.1:8080"));
        // The dev phone texts as any number, unauthenticated: `serve` refuses it on a network
        // address unless forced (see `startup::preflight`).
        let (dev_phone, dev_phone_forced) = match or("MOMENTLINE_DEV_PHONE", "0").as_str() {
            "0" | "false" | "no" => (false, false),
            "1" | "true" | "yes" => (true, false),
            "force" => (true, true),
            other => {
                return Err(invalid(
                    "MOMENTLINE_DEV_PHONE",
                    format!("'{other}' is not 1, 0 or force"),
                ))
            }
        };
        let dispatch = match or("MOMENTLINE_DISPATCH", "embedded").as_str() {
            "embedded" => DispatchSettings::Embedded,
            "webhook" => {
                let needed = |variable: &'static str| {
                    get(variable).ok_or_else(|| {
                        invalid(
                            variable,
                            "must be set when MOMENTLINE_DISPATCH is webhook".into(),
                        )
                    })
                };
                DispatchSettings::Webhook {
                    url: endpoint_url(&needed("MOMENTLINE_DISPATCH_URL")?)
                        .map_err(|p| invalid("MOMENTLINE_DISPATCH_URL", p))?,
                    secret: crate::host::WebhookSecret::parse(&needed(
                        "MOMENTLINE_DISPATCH_SECRET",
                    )?)
                    .map_err(|p| invalid("MOMENTLINE_DISPATCH_SECRET", p))?,
                }
            }
            other => {
                return Err(invalid(
                    "MOMENTLINE_DISPATCH",
                    format!("'{other}' is not embedded or webhook"),
                ))
            }
        };
        let events = {
            let secret = get("MOMENTLINE_EVENTS_SECRET")
                .map(|s| {
                    crate::host::WebhookSecret::parse(&s)
                        .map_err(|p| invalid("MOMENTLINE_EVENTS_SECRET", p))
                })
                .transpose()?;
            let dispatched = match &dispatch {
                DispatchSettings::Webhook { url, secret } => Some((url.clone(), secret.clone())),
                DispatchSettings::Embedded => None,
            };
            match get("MOMENTLINE_EVENTS_URL").as_deref() {
                Some("off") if dispatched.is_some() => {
                    return Err(invalid(
                        "MOMENTLINE_EVENTS_URL",
                        "cannot be off when MOMENTLINE_DISPATCH is webhook: the host must hear \
                         of UNDO (moment.deleted) to withdraw a Moment it was sent"
                            .into(),
                    ))
                }
                Some("off") => None,
                Some(url) => Some(EventsSettings {
                    url: endpoint_url(url).map_err(|p| invalid("MOMENTLINE_EVENTS_URL", p))?,
                    secret: secret
                        .or_else(|| dispatched.map(|(_, s)| s))
                        .ok_or_else(|| {
                            invalid(
                                "MOMENTLINE_EVENTS_SECRET",
                                "must be set with MOMENTLINE_EVENTS_URL unless \
                                 MOMENTLINE_DISPATCH_SECRET is"
                                    .into(),
                            )
                        })?,
                }),
                None => dispatched.map(|(url, dispatch_secret)| EventsSettings {
                    url,
                    secret: secret.unwrap_or(dispatch_secret),
                }),
            }
        };
        let telnyx_public_key = get("TELNYX_PUBLIC_KEY")
            .map(|k| telnyx::parse_public_key(&k))
            .transpose()
            .map_err(|p| invalid("TELNYX_PUBLIC_KEY", p))?;

        let twilio_account_sid = get("TWILIO_ACCOUNT_SID");
        let twilio_auth_token = get("TWILIO_AUTH_TOKEN").map(Secret::from);
        let twilio_api_base = base_url(&or("TWILIO_API_BASE", "https://api.twilio.com"))
            .map_err(|p| invalid("TWILIO_API_BASE", p))?;
        let vonage_signature = match get("VONAGE_SIGNATURE_SECRET") {
            None => None,
            Some(secret) => {
                let word = or("VONAGE_SIGNATURE_METHOD", "sha256");
                let method = SignatureMethod::parse(&word).ok_or_else(|| {
                    invalid(
                        "VONAGE_SIGNATURE_METHOD",
                        format!("'{word}' is not one of md5hash, md5, sha1, sha256, sha512"),
                    )
                })?;
                Some(SignatureSecret {
                    secret: secret.into(),
                    method,
                })
            }
        };
        let api_base = |variable: &'static str, default: &str| {
            base_url(&or(variable, default)).map_err(|p| invalid(variable, p))
        };

        let provider_name = or("MOMENTLINE_SMS_PROVIDER", "console").to_ascii_lowercase();
        let need = |variable: &'static str| {
            get(variable).ok_or(ConfigError::Missing {
                variable,
                provider: PROVIDERS
                    .iter()
                    .find(|p| **p == provider_name)
                    .copied()
                    .unwrap_or("console"),
            })
        };
        let provider = match provider_name.as_str() {
            "console" => ProviderSettings::Console,
            "telnyx" => {
                let from_number = get("TELNYX_FROM_NUMBER");
                let messaging_profile_id = get("TELNYX_MESSAGING_PROFILE_ID");
                if from_number.is_none() && messaging_profile_id.is_none() {
                    need("TELNYX_FROM_NUMBER")?;
                }
                ProviderSettings::Telnyx(TelnyxConfig {
                    api_key: need("TELNYX_API_KEY")?.into(),
                    from_number,
                    messaging_profile_id,
                    api_base: api_base("TELNYX_API_BASE", "https://api.telnyx.com")?,
                })
            }
            "twilio" => {
                let from_number = get("TWILIO_FROM_NUMBER");
                let messaging_service_sid = get("TWILIO_MESSAGING_SERVICE_SID");
                if from_number.is_none() && messaging_service_sid.is_none() {
                    need("TWILIO_FROM_NUMBER")?;
                }
                ProviderSettings::Twilio(TwilioConfig {
                    account_sid: need("TWILIO_ACCOUNT_SID")?,
                    auth_token: need("TWILIO_AUTH_TOKEN")?.into(),
                    from_number,
                    messaging_service_sid,
                    api_base: twilio_api_base.clone(),
                    status_callback: format!("{public_url}/webhooks/twilio/status"),
                })
            }
            "vonage" => ProviderSettings::Vonage(VonageConfig {
                api_key: need("VONAGE_API_KEY")?,
                api_secret: need("VONAGE_API_SECRET")?.into(),
                from: need("VONAGE_FROM")?,
                api_base: api_base("VONAGE_API_BASE", "https://rest.nexmo.com")?,
            }),
            "textflow" => ProviderSettings::TextFlow(TextFlowConfig {
                api_key: need("TEXTFLOW_API_KEY")?.into(),
                api_base: api_base("TEXTFLOW_API_BASE", "https://textflow.me")?,
            }),
            "phonify" => ProviderSettings::Phonify(PhonifyConfig {
                api_key: need("PHONIFY_API_KEY")?.into(),
                app: need("PHONIFY_APP")?,
                api_base: api_base("PHONIFY_API_BASE", "https://api.phonify.io")?,
            }),
            other => {
                return Err(invalid(
                    "MOMENTLINE_SMS_PROVIDER",
                    format!("'{other}' is not one of {}", PROVIDERS.join(", ")),
                ))
            }
        };

        Ok(Self {
            addr,
            db_path,
            database_url,
            public_url,
            manage_url,
            provider,
            telnyx_public_key,
            twilio_account_sid,
            twilio_auth_token,
            twilio_api_base,
            vonage_signature,
            pending_ttl,
            code_ttl,
            allowed_regions,
            media_dir,
            retry_schedule,
            connect_limits,
            reply_limits,
            provider_timeout: Duration::from_secs(10),
            send_rate,
            job_concurrency: usize::try_from(job_concurrency).unwrap_or(64),
            job_lease: chrono::Duration::seconds(i64::try_from(job_lease).unwrap_or(60)),
            writer: WriterSettings {
                queue: usize::try_from(write_queue).unwrap_or(1024),
                ..WriterSettings::default()
            },
            shutdown_grace: Duration::from_secs(shutdown_grace),
            media_allow_private,
            dispatch,
            events,
            metrics,
            // At most 3600, so always whole seconds chrono holds.
            merge_window: chrono::Duration::seconds(i64::try_from(merge_secs).unwrap_or(20)),
            run_workers: true,
            dev_phone,
            dev_phone_forced,
        })
    }
}

/// A PostgreSQL URL momentline can connect with.
fn postgres_url(url: &str) -> Result<String, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "'{}' is not a PostgreSQL URL: it starts with postgres:// (unset it for SQLite)",
            redact(url)
        ));
    }
    url.parse::<postgres::Config>()
        .map_err(|e| format!("'{}' cannot be read: {e}", redact(url)))?;
    Ok(url.to_owned())
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

fn beside(file: &Path, name: &str) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

/// An http(s) endpoint, kept as given: a trailing slash may be part of its path, and a host
/// answering the other spelling with a redirect would fail (redirects are not followed).
fn endpoint_url(input: &str) -> Result<String, String> {
    base_url(input)?;
    Ok(input.to_owned())
}

/// An http(s) URL without its trailing slash.
fn base_url(input: &str) -> Result<String, String> {
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

/// `:8080` listens on every interface, as such addresses usually mean.
fn listen_addr(input: &str) -> String {
    match input.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => input.to_owned(),
    }
}

/// Whether a listen address reaches this machine only: a loopback IP, or `localhost`.
pub(crate) fn listens_on_loopback(addr: &str) -> bool {
    if let Ok(socket) = addr.parse::<std::net::SocketAddr>() {
        return socket.ip().is_loopback();
    }
    addr.rsplit_once(':')
        .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

/// `5,30,120` seconds between attempts.
fn parse_schedule(input: &str) -> Result<Vec<Duration>, String> {
    input
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| *secs <= MAX_SECS.unsigned_abs())
                .map(Duration::from_secs)
                .ok_or_else(|| format!("'{s}' is not a whole number of seconds up to {MAX_SECS}"))
        })
        .collect()
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
        let source = include_str!("config.rs");
        let readme = include_str!("../README.md");
        let listed: Vec<&str> = VARIABLES.iter().map(|(name, _, _)| *name).collect();
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
        assert!(err.to_string().starts_with("TELNYX_FROM_NUMBER"));
    }

    #[test]
    fn each_provider_names_what_it_lacks() {
        for (provider, first_missing) in [
            ("twilio", "TWILIO_FROM_NUMBER"),
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
            Some(SignatureMethod::HmacSha256)
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
