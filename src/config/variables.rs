//! Every variable momentline reads, its default and what it sets: its own here, each
//! provider's in the provider's file. `momentline --help` prints them; the README's tables say
//! more (a test checks both list them all).

use super::parse::DEFAULT_RETRY_SCHEDULE;
use crate::vars::Variable;

/// momentline's own variables: its name, its default, and what it sets.
const OWN: &[Variable] = &[
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
        "how long a photo alone waits for its words, and words alone stay open to a photo; 0 for never",
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
        "where Moments are created: embedded, webhook or inprocess",
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
    (
        "MOMENTLINE_SECRET_KEY",
        "",
        "32 bytes, base64: seals artists' In Process keys at rest (needed by inprocess)",
    ),
];

/// Every variable: momentline's own, each provider's, then the log's.
pub fn variables() -> Vec<&'static Variable> {
    OWN.iter()
        .chain(crate::host::inprocess::VARIABLES)
        .chain(crate::providers::variables())
        .chain(std::iter::once(&("RUST_LOG", "info", "log filter")))
        .collect()
}

/// The variables, as `momentline --help` shows them.
pub fn variables_help() -> String {
    let all = variables();
    let width = all.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    let mut help = String::from("Environment variables:\n");
    for (name, default, what) in all {
        let default = if default.is_empty() {
            String::new()
        } else {
            format!(" [default: {default}]")
        };
        help.push_str(&format!("  {name:width$}  {what}{default}\n"));
    }
    help
}
