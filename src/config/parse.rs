//! Reading the settings: each variable parsed, checked and named when it cannot be used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::redact;
use super::{DispatchSettings, EventsSettings, Settings};
use crate::domain::number_state::{ConnectLimits, ReplyLimits};
use crate::domain::phone_number::AllowedRegions;
use crate::domain::sealed::SealingKey;
use crate::domain::secret::Secret;
use crate::host::inprocess::InProcessSettings;
use crate::providers::{telnyx, twilio, vonage, ProviderSettings};
use crate::store::WriterSettings;
use crate::vars::{base_url, invalid, ConfigError, Vars};

pub(super) const DEFAULT_RETRY_SCHEDULE: &str = "5,30,120,600,3600";
/// The longest wait any duration setting takes: a year.
const MAX_SECS: i64 = 366 * 24 * 3600;

impl Settings {
    pub(super) fn read(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(var);
        let (get, or) = (
            |name: &str| vars.get(name),
            |name: &str, d: &str| vars.or(name, d),
        );

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
        let pending_ttl = lifetime(&vars, "MOMENTLINE_PENDING_TTL_SECS", "86400", 0)?;
        let code_ttl = lifetime(&vars, "MOMENTLINE_CODE_TTL_SECS", "600", 1)?;
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
            other => Err(invalid(
                variable,
                format!("'{other}' is not 1 (or true, yes) or 0 (or false, no)"),
            )),
        };
        let media_allow_private = switch("MOMENTLINE_MEDIA_ALLOW_PRIVATE", "0")?;
        let metrics = switch("MOMENTLINE_METRICS", "1")?;
        let addr = listen_addr(&or("MOMENTLINE_ADDR", "127.0.0.1:8080"));
        listen_addr_problem(&addr).map_or(Ok(()), |p| Err(invalid("MOMENTLINE_ADDR", p)))?;
        // Read by the log itself before the settings; refused here with every other problem.
        let log_format = get("MOMENTLINE_LOG_FORMAT");
        crate::telemetry::log_format_is_json(log_format.as_deref()).map_err(|_| {
            invalid(
                "MOMENTLINE_LOG_FORMAT",
                format!("'{}' is not text or json", log_format.unwrap_or_default()),
            )
        })?;
        // The dev phone texts as any number, unauthenticated: `serve` refuses it on a network
        // address unless forced (see `startup::preflight`).
        let secret_key = get("MOMENTLINE_SECRET_KEY")
            .map(|k| SealingKey::parse(&k))
            .transpose()
            .map_err(|p| invalid("MOMENTLINE_SECRET_KEY", p))?;
        let (dev_phone, dev_phone_forced) = match or("MOMENTLINE_DEV_PHONE", "0").as_str() {
            "0" | "false" | "no" => (false, false),
            "1" | "true" | "yes" => (true, false),
            "force" => (true, true),
            other => {
                return Err(invalid(
                    "MOMENTLINE_DEV_PHONE",
                    format!("'{other}' is not 1 (or true, yes), 0 (or false, no) or force"),
                ))
            }
        };
        let (dispatch, events) = dispatch_and_events(&vars)?;
        if matches!(dispatch, DispatchSettings::InProcess(_)) && secret_key.is_none() {
            return Err(invalid(
                "MOMENTLINE_SECRET_KEY",
                "must be set when MOMENTLINE_DISPATCH is inprocess: it opens the artists' In \
                 Process keys (make one with `openssl rand -base64 32`)"
                    .into(),
            ));
        }
        let telnyx_public_key = telnyx::read_public_key(&vars)?;
        let twilio_account_sid = get("TWILIO_ACCOUNT_SID");
        let twilio_auth_token = get("TWILIO_AUTH_TOKEN").map(Secret::from);
        let twilio_api_base = twilio::read_api_base(&vars)?;
        let vonage_signature = vonage::read_signature(&vars)?;

        let provider = ProviderSettings::read(&vars, &public_url)?;

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
            secret_key,
        })
    }
}

/// How long something holds, in whole seconds from `least` to a year.
fn lifetime(
    vars: &Vars,
    variable: &'static str,
    default: &str,
    least: i64,
) -> Result<chrono::Duration, ConfigError> {
    vars.or(variable, default)
        .parse::<i64>()
        .ok()
        .filter(|s| (least..=MAX_SECS).contains(s))
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| {
            invalid(
                variable,
                format!("not a whole number of seconds from {least} to {MAX_SECS}"),
            )
        })
}

/// Where Moments are created (`MOMENTLINE_DISPATCH`) and where events go
/// (`MOMENTLINE_EVENTS_URL`, or the dispatch URL in `webhook` mode).
fn dispatch_and_events(
    vars: &Vars,
) -> Result<(DispatchSettings, Option<EventsSettings>), ConfigError> {
    let (get, or) = (
        |name: &str| vars.get(name),
        |name: &str, d: &str| vars.or(name, d),
    );
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
                secret: crate::host::WebhookSecret::parse(&needed("MOMENTLINE_DISPATCH_SECRET")?)
                    .map_err(|p| invalid("MOMENTLINE_DISPATCH_SECRET", p))?,
            }
        }
        "inprocess" => DispatchSettings::InProcess(InProcessSettings::read(vars)?),
        other => {
            return Err(invalid(
                "MOMENTLINE_DISPATCH",
                format!("'{other}' is not embedded, webhook or inprocess"),
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
            DispatchSettings::Embedded | DispatchSettings::InProcess(_) => None,
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
    Ok((dispatch, events))
}

/// A PostgreSQL URL momentline can connect with.
fn postgres_url(url: &str) -> Result<String, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "'{}' is not a PostgreSQL URL: it starts with postgres:// (unset it for SQLite)",
            redact(url)
        ));
    }
    crate::db::sql::PgTarget::parse(url)
        .map_err(|e| format!("'{}' cannot be used: {e}", redact(url)))?;
    Ok(url.to_owned())
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

/// What is wrong with a listen address's form (`host:port`, the port a number), if anything;
/// whether the host resolves is the start-up check's (`startup::preflight`).
fn listen_addr_problem(addr: &str) -> Option<String> {
    let port = addr.rsplit_once(':').map(|(_, port)| port);
    match port {
        Some(port) if port.parse::<u16>().is_ok() => None,
        _ => Some(format!(
            "'{addr}' is not an address to listen on: give host:port, e.g. 127.0.0.1:8080, or \
             :8080 for every interface"
        )),
    }
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
