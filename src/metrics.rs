//! Prometheus metrics: one registry per application, gathered where the work happens and
//! served as text on `GET /metrics`.
//!
//! The `prometheus` crate without its default features (no protobuf) builds fewer crates
//! than the `metrics` facade and its exporter, and its registries need not be process-wide:
//! each application (and so each test server) keeps its own.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use chrono::{DateTime, Utc};
use prometheus::core::Collector;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::db::{params, parse_ts, Conn, DbError};
use crate::domain::{JobKind, TextEnum};

/// Seconds, for request and provider latencies: a millisecond to half a minute.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Writes in a batch: one to the largest batch the writer takes (`WriterSettings::batch`).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// How a provider webhook was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Authentic and applied (a text, a status, or an event momentline ignores).
    Received,
    /// Authentic, and already applied once.
    Duplicate,
    /// Not shown to be from the provider: a bad or missing signature, or no secret to check.
    Rejected,
    /// Authentic or not, it could not be applied: malformed, busy, or a failure of ours.
    Error,
}

impl WebhookOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
            Self::Error => "error",
        }
    }
}

/// Every metric of one application, and the registry that serves them.
pub struct Metrics {
    registry: Registry,
    webhooks: IntCounterVec,
    webhook_seconds: HistogramVec,
    jobs_finished: IntCounterVec,
    send_seconds: HistogramVec,
    jobs_queued: IntGaugeVec,
    oldest_due_age: GaugeVec,
}

/// Counters a benchmark or an operator can read; `batch_sizes` and `transitions` are also
/// served on `/metrics`.
#[derive(Debug)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub writes: AtomicU64,
    pub largest_batch: AtomicU64,
    /// SQL statements the writes ran, the writer's own (BEGIN, SAVEPOINT, COMMIT) included.
    pub statements: AtomicU64,
    /// Writes in each committed batch.
    pub batch_sizes: prometheus::Histogram,
    /// Number state changes committed, by from, to and cause.
    pub transitions: prometheus::IntCounterVec,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            batches: AtomicU64::default(),
            writes: AtomicU64::default(),
            largest_batch: AtomicU64::default(),
            statements: AtomicU64::default(),
            batch_sizes: writer_batch_sizes(),
            transitions: number_transitions(),
        }
    }
}

/// The writer's batch sizes; the writer keeps it (see `WriterStats`), `Metrics` serves it.
pub fn writer_batch_sizes() -> Histogram {
    Histogram::with_opts(
        HistogramOpts::new(
            "momentline_writer_batch_size",
            "Writes committed together in one batch",
        )
        .buckets(BATCH_BUCKETS.to_vec()),
    )
    .expect("the writer batch histogram is well formed")
}

/// Number state changes; the writer counts them as they commit (see `WriterStats`).
pub fn number_transitions() -> IntCounterVec {
    IntCounterVec::new(
        Opts::new(
            "momentline_number_transitions_total",
            "Changes of a number's state, by from, to and cause",
        ),
        &["from", "to", "cause"],
    )
    .expect("the transitions counter is well formed")
}

impl Metrics {
    /// The application's metrics, the writer's among them.
    pub fn new(writer: &WriterStats) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let webhooks = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "momentline_webhooks_total",
                    "Provider webhooks answered, by provider and outcome",
                ),
                &["provider", "outcome"],
            )?,
        )?;
        let webhook_seconds = registered(
            &registry,
            latency_by_provider(
                "momentline_webhook_duration_seconds",
                "Time to handle a provider webhook, from request to answer",
            )?,
        )?;
        let jobs_finished = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "momentline_jobs_finished_total",
                    "Job attempts settled, by kind and outcome (done, retrying, failed)",
                ),
                &["kind", "outcome"],
            )?,
        )?;
        let send_seconds = registered(
            &registry,
            latency_by_provider(
                "momentline_send_duration_seconds",
                "Time the provider's API took to answer a text",
            )?,
        )?;
        let jobs_queued = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "momentline_jobs_queued",
                    "Jobs waiting to run (due or not), by kind",
                ),
                &["kind"],
            )?,
        )?;
        let oldest_due_age = registered(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "momentline_jobs_oldest_due_age_seconds",
                    "How long the oldest due job of a kind has been due; 0 when none is",
                ),
                &["kind"],
            )?,
        )?;
        registered(&registry, writer.batch_sizes.clone())?;
        registered(&registry, writer.transitions.clone())?;
        Ok(Self {
            registry,
            webhooks,
            webhook_seconds,
            jobs_finished,
            send_seconds,
            jobs_queued,
            oldest_due_age,
        })
    }

    /// A webhook answered with `outcome`, `started` when its request came in.
    pub fn webhook(&self, provider: &str, outcome: WebhookOutcome, started: Instant) {
        self.webhooks
            .with_label_values(&[provider, outcome.as_str()])
            .inc();
        self.webhook_seconds
            .with_label_values(&[provider])
            .observe(started.elapsed().as_secs_f64());
    }

    /// A job attempt settled and recorded: `outcome` is done, retrying or failed.
    pub fn job_finished(&self, kind: JobKind, outcome: &str) {
        self.jobs_finished
            .with_label_values(&[kind.as_str(), outcome])
            .inc();
    }

    /// The provider's API answered a text (or failed to) after `started`.
    pub fn sent(&self, provider: &str, started: Instant) {
        self.send_seconds
            .with_label_values(&[provider])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Reads the queue's gauges from the database, then renders everything as Prometheus
    /// text.
    pub fn render(&self, conn: &Conn, now: DateTime<Utc>) -> Result<String, RenderError> {
        let mut queued: Vec<(String, i64, Option<String>)> =
            conn.query_map(QUEUE, params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for (kind, _) in JobKind::ALL {
            if !queued.iter().any(|(k, _, _)| k == kind.as_str()) {
                queued.push((kind.as_str().to_owned(), 0, None));
            }
        }
        for (kind, count, oldest) in queued {
            self.jobs_queued.with_label_values(&[&kind]).set(count);
            let age = match oldest {
                Some(at) => (now - parse_ts(&at)?).num_milliseconds().max(0) as f64 / 1000.0,
                None => 0.0,
            };
            self.oldest_due_age.with_label_values(&[&kind]).set(age);
        }
        Ok(TextEncoder::new().encode_to_string(&self.registry.gather())?)
    }
}

/// `metric`, once it is served by `registry`.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// Seconds something took, by provider.
fn latency_by_provider(name: &str, help: &str) -> Result<HistogramVec, prometheus::Error> {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        &["provider"],
    )
}

/// Queued jobs by kind, and the earliest `run_after` of each: answered from the partial
/// index `jobs_due` (kind, run_after) alone, whose state literal it repeats.
const QUEUE: &str = "SELECT kind, count(*), min(run_after) FROM jobs WHERE state = 'queued'
     GROUP BY kind";

/// The content type of `render`'s text.
pub fn content_type() -> &'static str {
    prometheus::TEXT_FORMAT
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("could not read the jobs queue")]
    Read(#[from] DbError),
    #[error("could not encode the metrics")]
    Encode(#[from] prometheus::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_registered_under_its_documented_name() {
        let stats = WriterStats::default();
        let metrics = Metrics::new(&stats).expect("metrics");
        let readme = include_str!("../README.md");
        metrics.webhook("telnyx", WebhookOutcome::Received, Instant::now());
        metrics.job_finished(JobKind::SendText, "done");
        metrics.sent("telnyx", Instant::now());
        stats.batch_sizes.observe(1.0);
        stats
            .transitions
            .with_label_values(&["pending", "verified", "inbound"])
            .inc();
        metrics.jobs_queued.with_label_values(&["send_text"]).set(0);
        metrics
            .oldest_due_age
            .with_label_values(&["send_text"])
            .set(0.0);
        let families = metrics.registry.gather();
        assert!(families.iter().all(|f| !f.get_metric().is_empty()));
        assert_eq!(families.len(), 8);
        for family in families {
            assert!(
                readme.contains(&format!("`{}`", family.name())),
                "{} is not in the README",
                family.name()
            );
        }
    }

    #[test]
    fn the_queue_gauges_are_read_from_the_due_index_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            crate::store::Store::open(&dir.path().join("m.db"), Default::default()).expect("open");
        let text = store
            .reads()
            .with(|conn| {
                let sqlite = conn.as_sqlite().expect("a SQLite database");
                let plan: Vec<String> = sqlite
                    .prepare(&format!("EXPLAIN QUERY PLAN {QUEUE}"))?
                    .query_map([], |r| r.get::<_, String>(3))?
                    .collect::<Result<_, _>>()?;
                let plan = plan.join("\n");
                assert!(plan.contains("USING COVERING INDEX jobs_due"), "{plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
                Ok(Metrics::new(store.writer_stats())
                    .expect("metrics")
                    .render(conn, Utc::now()))
            })
            .expect("plan")
            .expect("render");
        for (kind, _) in JobKind::ALL {
            assert!(text.contains(&format!(
                "momentline_jobs_queued{{kind=\"{}\"}} 0",
                kind.as_str()
            )));
        }
    }
}
