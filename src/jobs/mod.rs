//! The jobs runner: claims due jobs, runs each kind's handler in a slot of its own, and
//! records the outcome in one write with the handler's own changes: done, retried on the
//! schedule (or after the provider's `Retry-After`), or failed for good.
//!
//! A kind is one file here and one arm in `runner.rs` (`Runner::perform_and_record`). Handlers
//! never open a transaction: they return what to record, and the runner writes it with the
//! job's outcome (`outcome::record`, the one write that does). `retry.rs` is the policy,
//! `inline.rs` what a claim settles at once.

mod broadcast;
mod deliver_event;
pub(crate) mod dispatch_moment;
mod hide_moment;
mod inline;
mod keep_media;
mod outcome;
mod pacer;
mod retry;
mod runner;
mod send_batch;
mod send_text;

use std::sync::Arc;
use std::time::Duration;

use crate::db::jobs::Claimed;
use crate::db::{Conn, DbError};
use crate::domain::JobKind;
use crate::events::Events;
use crate::media::MediaKeeper;
use crate::providers::Sender;
use crate::store::Store;

pub use pacer::Pacer;
pub use retry::{retry_at, LONGEST_WAIT};
pub use runner::{Round, Runner, RunnerError};

/// Every kind, in the order a round considers them.
pub const ALL_KINDS: &[JobKind] = &[
    JobKind::DispatchMoment,
    JobKind::SendText,
    JobKind::KeepMedia,
    JobKind::DeliverEvent,
    JobKind::Broadcast,
    JobKind::HideMoment,
    JobKind::SendBatch,
];

/// How the runner works.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Jobs running at once.
    pub concurrency: usize,
    /// How long a claim holds before another runner may take the job.
    pub lease: chrono::Duration,
    /// The wait before each retry; its length + 1 is the number of attempts.
    pub schedule: Vec<Duration>,
    /// On shutdown, how long running jobs may take to finish before they are released.
    pub grace: Duration,
}

/// What the handlers share.
pub struct JobContext {
    pub store: Store,
    pub sender: Arc<Sender>,
    pub pacer: Pacer,
    pub media: MediaKeeper,
    pub public_url: String,
    /// Where Moments are created.
    pub host: crate::host::Host,
    /// How long a verification code holds from when it is sent.
    pub code_ttl: chrono::Duration,
    /// Where events are delivered; `None` when none are.
    pub events: Option<crate::host::Endpoint>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl JobContext {
    /// Whether the changes jobs record make events.
    pub fn events(&self) -> Events {
        Events::when(self.events.is_some())
    }
}

/// How one attempt ended, as its kind saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    Done,
    /// Another attempt may succeed, not before `at_least` if given.
    Retry {
        reason: String,
        at_least: Option<Duration>,
    },
    /// The provider asked for a slower pace: nothing was tried, no attempt is spent.
    Throttled {
        reason: String,
        wait: Duration,
    },
    /// No attempt will succeed.
    Failed {
        reason: String,
    },
    /// The database could not be read now (unreachable, restarting): nothing was tried, no
    /// attempt is spent, and the job is looked at again shortly.
    Unavailable {
        reason: String,
    },
}

impl Attempted {
    /// What an attempt needed could not be read: another attempt may read it.
    fn read_failed(what: &str, e: &DbError) -> Self {
        let reason = format!(
            "could not read {what}: {}",
            crate::telemetry::error_chain(e)
        );
        if e.is_transient() {
            return Self::Unavailable { reason };
        }
        Self::Retry {
            reason,
            at_least: None,
        }
    }
}

/// How the runner settled an attempt, after the retry schedule: what a handler records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled<'a> {
    Done,
    Retrying { reason: &'a str },
    Failed { reason: &'a str },
}

/// What a handler leaves to record with the job's outcome, inside the same write. It may
/// run more than once (a write that failed is tried again), so it must be idempotent.
pub type Record = Arc<dyn Fn(&Conn, Settled) -> Result<(), DbError> + Send + Sync>;

/// A handler's answer: how the attempt ended, and what to write about it.
pub struct Performed {
    pub attempted: Attempted,
    pub record: Record,
}

impl Performed {
    /// An outcome with nothing of the kind's own to record.
    pub fn only(attempted: Attempted) -> Self {
        Self {
            attempted,
            record: Arc::new(|_, _| Ok(())),
        }
    }

    /// No attempt will succeed, and the kind has nothing to record.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::only(Attempted::Failed {
            reason: reason.into(),
        })
    }
}

/// An id from a job's payload, as its type (`i64` for the bare number a span records).
fn payload_id<I: serde::de::DeserializeOwned>(job: &Claimed, field: &str) -> Option<I> {
    job.payload.get(field).and_then(|v| I::deserialize(v).ok())
}
