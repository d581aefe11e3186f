//! Logging: one subscriber for every command, writing to stderr as text or JSON lines; and
//! the request id that ties a webhook's lines to the lines of the writes and the jobs it
//! caused.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::sync::Arc;

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

/// Whether `MOMENTLINE_LOG_FORMAT`'s value asks for JSON lines (`json`) or text (`text`,
/// or none).
pub fn log_format_is_json(value: Option<&str>) -> Result<bool, LogFormatError> {
    match value.unwrap_or_default().trim() {
        "" | "text" => Ok(false),
        "json" => Ok(true),
        other => Err(LogFormatError(other.to_owned())),
    }
}

/// Logs at `info` unless `RUST_LOG` says otherwise, as text unless `MOMENTLINE_LOG_FORMAT`
/// is `json`. A `RUST_LOG` that cannot be used is logged (as a warning) with the fallback; a
/// `MOMENTLINE_LOG_FORMAT` that cannot is logged as text, and the settings refuse it with
/// every other problem (`crate::config`).
pub fn init() {
    let json =
        log_format_is_json(std::env::var("MOMENTLINE_LOG_FORMAT").ok().as_deref()).unwrap_or(false);
    let (filter, problem) = filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests start several apps) keeps the first subscriber.
    // JSON lines carry the fields of the spans they were written in (the request id, a job's
    // id and kind), and the thread: the writer's lines are told apart by it.
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_thread_names(true)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
    if let Some(problem) = problem {
        tracing::warn!("RUST_LOG is invalid: {problem}; logging at info instead");
    }
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

/// The id of one HTTP request, and of everything it caused: the writes it made and the jobs
/// it queued carry it, so one search of the log follows a text from its webhook to its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

tokio::task_local! {
    /// The request (or the job) a task works for.
    static TASK_REQUEST: RequestId;
}

thread_local! {
    /// The request a write running on this thread (the writer's, a pool's) was made for.
    static THREAD_REQUEST: RefCell<Option<RequestId>> = const { RefCell::new(None) };
}

impl RequestId {
    /// A new id: 16 random hex digits.
    pub fn new() -> Self {
        let mut bytes = [0u8; 8];
        // Without randomness the id is the time: still unique enough to follow a request.
        if getrandom::fill(&mut bytes).is_err() {
            bytes = chrono::Utc::now()
                .timestamp_nanos_opt()
                .unwrap_or_default()
                .to_be_bytes();
        }
        Self(hex::encode(bytes).into())
    }

    /// A caller's own id (its `x-request-id`), kept when it is sane: 1 to 64 letters, digits
    /// and `-_.:`, so it can be logged and echoed as it is.
    pub fn from_caller(value: &str) -> Option<Self> {
        let sane = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        sane.then(|| Self(value.into()))
    }

    /// A stored id, as it was kept.
    pub fn stored(value: String) -> Self {
        Self(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The request the running task or thread works for, if any.
    pub fn current() -> Option<Self> {
        TASK_REQUEST
            .try_with(Clone::clone)
            .ok()
            .or_else(|| THREAD_REQUEST.with(|r| r.borrow().clone()))
    }

    /// Runs `future` as work for `id`.
    pub async fn scope<F: std::future::Future>(id: Option<Self>, future: F) -> F::Output {
        match id {
            Some(id) => TASK_REQUEST.scope(id, future).await,
            None => future.await,
        }
    }

    /// Runs `work` on this thread as work for `id` (a write on the writer's thread).
    /// The id before is put back however `work` ends, a panic included (the writer catches
    /// a write's panic and goes on with the next).
    pub fn on_thread<T>(id: Option<Self>, work: impl FnOnce() -> T) -> T {
        struct Restore(Option<RequestId>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let before = self.0.take();
                THREAD_REQUEST.with(|r| *r.borrow_mut() = before);
            }
        }
        let _restore = Restore(THREAD_REQUEST.with(|r| r.replace(id)));
        work()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
    fn a_callers_request_id_is_kept_only_when_it_is_sane() {
        for good in ["abc", "req-1.2:3_x", &"a".repeat(64)] {
            assert_eq!(
                RequestId::from_caller(good).map(|id| id.to_string()),
                Some(good.to_owned())
            );
        }
        for bad in ["", "a b", "a\nb", "<script>", &"a".repeat(65), "é"] {
            assert_eq!(RequestId::from_caller(bad), None, "{bad:?}");
        }
        let made = RequestId::new();
        assert_eq!(made.as_str().len(), 16);
        assert_ne!(made, RequestId::new());
    }

    #[test]
    fn a_request_id_set_on_a_thread_is_seen_there_until_the_work_ends() {
        let id = RequestId::from_caller("r1");
        assert_eq!(RequestId::current(), None);
        let seen = RequestId::on_thread(id.clone(), RequestId::current);
        assert_eq!(seen, id);
        assert_eq!(RequestId::current(), None);
        let panicked = std::panic::catch_unwind(|| {
            RequestId::on_thread(id.clone(), || panic!("a write panics"));
        });
        assert!(panicked.is_err());
        assert_eq!(RequestId::current(), None, "not left behind by a panic");
    }

    #[test]
    fn a_word_that_is_no_level_or_target_is_named() {
        let said = problem("verbose").expect("refused");
        assert!(said.contains("'verbose'"), "{said}");
        let said = problem("momentline=loud").expect("refused");
        assert!(said.contains("momentline=loud"), "{said}");
    }
}
