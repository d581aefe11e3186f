//! The jobs runner: claims due jobs, runs each kind's handler in a slot of its own, and
//! records the outcome in one write with the handler's own changes: done, retried on the
//! schedule (or after the provider's `Retry-After`), or failed for good.
//!
//! A kind is one file here and one arm in `Runner::execute`. Handlers never open a
//! transaction: they return what to record, and the runner writes it with the job's outcome.

mod broadcast;
mod deliver_event;
pub(crate) mod dispatch_moment;
mod keep_media;
mod pacer;
mod send_text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::db::jobs::{self, Claimed, JobId};
use crate::db::{params, Conn, DbError};
use crate::domain::JobKind;
use crate::events::Events;
use crate::media::MediaKeeper;
use crate::providers::Sender;
use crate::store::{Store, WriteError};
use crate::telemetry::{error_chain, RequestId};
use tracing::Instrument;

pub use pacer::Pacer;

/// Every kind, in the order a round considers them.
pub const ALL_KINDS: &[JobKind] = &[
    JobKind::DispatchMoment,
    JobKind::SendText,
    JobKind::KeepMedia,
    JobKind::DeliverEvent,
    JobKind::Broadcast,
];

/// The longest a provider's `Retry-After` holds a job back.
pub const LONGEST_WAIT: Duration = Duration::from_secs(3600);
/// How often the runner looks for due retries when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);

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
}

/// What a round did, by how its jobs ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub done: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl Round {
    pub fn claimed(&self) -> usize {
        self.done + self.retrying + self.failed
    }

    fn count(&mut self, ended: Ended) {
        match ended {
            Ended::Done => self.done += 1,
            Ended::Retrying => self.retrying += 1,
            Ended::Failed => self.failed += 1,
        }
    }

    pub fn add(&mut self, other: Round) {
        self.done += other.done;
        self.retrying += other.retrying;
        self.failed += other.failed;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Done,
    Retrying,
    Failed,
}

impl Ended {
    /// The outcome label of `momentline_jobs_finished_total`.
    fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("could not claim jobs")]
    Claim(#[source] WriteError),
    #[error("could not look for due jobs")]
    Read(#[source] crate::db::DbError),
}

/// Runs jobs. Cheap to clone; every clone is the same runner.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: JobContext,
    settings: RunnerSettings,
    /// This process's name on its claims.
    name: String,
    wake: Notify,
    /// Texts claimed and not yet settled: each holds or waits for a pacer turn.
    sends_in_flight: AtomicUsize,
}

impl Runner {
    pub fn new(ctx: JobContext, settings: RunnerSettings) -> Result<Self, getrandom::Error> {
        let mut id = [0u8; 6];
        getrandom::fill(&mut id)?;
        Ok(Self {
            inner: Arc::new(Inner {
                ctx,
                settings,
                name: format!("runner-{}-{}", std::process::id(), hex::encode(id)),
                wake: Notify::new(),
                sends_in_flight: AtomicUsize::new(0),
            }),
        })
    }

    /// Tells the runner work was queued, so it looks at once.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    fn store(&self) -> &Store {
        &self.inner.ctx.store
    }

    /// Releases claims left by an earlier process on this database (it stopped or died
    /// mid-job), so their jobs run now instead of when their leases run out. On PostgreSQL
    /// other instances may be running: their claims are theirs, and a dead one's are taken
    /// over when their (renewed) leases run out.
    pub async fn release_stale_claims(&self) -> Result<usize, WriteError> {
        if self.store().engine() == crate::db::Engine::Postgres {
            return Ok(0);
        }
        let released = self
            .store()
            .write_waiting(|tx| jobs::release(tx, None, Utc::now()))
            .await?;
        if released > 0 {
            tracing::info!(released, "released jobs an earlier run had claimed");
        }
        Ok(released)
    }

    /// Runs jobs until `stop` is cancelled; then claims nothing more, lets running jobs
    /// finish within the grace period and puts the rest back in the queue.
    pub async fn run(self, stop: CancellationToken) {
        let cap = self.inner.settings.concurrency.max(1);
        let mut running = JoinSet::new();
        let mut held: HashMap<tokio::task::Id, Claimed> = HashMap::new();
        let renew_every = self.renew_every();
        let mut renewed = tokio::time::Instant::now();
        loop {
            while let Some(done) = running.try_join_next_with_id() {
                self.reap(done, &mut held).await;
            }
            if !held.is_empty() && renewed.elapsed() >= renew_every && self.renew_claims().await {
                renewed = tokio::time::Instant::now();
            }
            let free = cap - running.len();
            let mut claimed = 0;
            if free > 0 {
                match self.claim_mix(free).await {
                    Ok((jobs, settled)) => {
                        // Jobs settled at the claim may have queued more (a dispatch its
                        // reply): they count, so the runner looks again at once.
                        claimed = jobs.len() + settled;
                        for job in jobs {
                            let kept = job.clone();
                            let work = self.start(job);
                            let task = running.spawn(async move {
                                work.await;
                            });
                            held.insert(task.id(), kept);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %error_chain(&e), "jobs runner could not claim");
                    }
                }
            }
            if claimed > 0 && running.len() < cap {
                // More may be due: look again at once.
                continue;
            }
            tokio::select! {
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    self.reap(done, &mut held).await;
                }
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                () = stop.cancelled() => break,
            }
        }
        self.shut_down(running, held).await;
    }

    /// How often claims are renewed: three times a lease.
    fn renew_every(&self) -> Duration {
        (self.inner.settings.lease / 3)
            .to_std()
            .unwrap_or(Duration::from_secs(1))
    }

    /// Extends the claims this runner holds by a whole lease: a job running long (a slow
    /// host, a large photo) keeps its claim while this process lives, and loses it within a
    /// lease once the process is gone.
    async fn renew_claims(&self) -> bool {
        let (name, lease) = (self.inner.name.clone(), self.inner.settings.lease);
        let renewed = self
            .store()
            .write_waiting(move |tx| {
                let now = Utc::now();
                jobs::renew(tx, &name, now + lease, now)
            })
            .await;
        if let Err(e) = &renewed {
            tracing::warn!(error = %error_chain(e), "could not renew this runner's job claims");
        }
        renewed.is_ok()
    }

    /// Claims for `free` slots in one write. Texts are claimed only as fast as the pacer
    /// lets them go, so a claimed text never waits long enough for its lease to run out,
    /// and slots stay free for the other kinds while sends are paced or paused.
    async fn claim_mix(&self, free: usize) -> Result<(Vec<Claimed>, usize), RunnerError> {
        let waiting = self.inner.sends_in_flight.load(Ordering::SeqCst);
        let sends = self
            .inner
            .ctx
            .pacer
            .turns_within(CLAIM_HORIZON)
            .map_or(free, |turns| turns.saturating_sub(waiting).min(free));
        let (name, lease) = (self.inner.name.clone(), self.inner.settings.lease);
        if !self.due(ALL_KINDS).await? {
            return Ok((Vec::new(), 0));
        }
        let inline = self.inline();
        // On PostgreSQL the claim's FOR UPDATE SKIP LOCKED keeps two instances off one job.
        self.store()
            .write_waiting(move |tx| {
                let now = Utc::now();
                let mut claimed = jobs::claim(tx, &name, &[JobKind::SendText], sends, lease, now)?;
                let others = [
                    JobKind::DispatchMoment,
                    JobKind::KeepMedia,
                    JobKind::DeliverEvent,
                    JobKind::Broadcast,
                ];
                let rest = free - claimed.len();
                claimed.extend(jobs::claim(tx, &name, &others, rest, lease, now)?);
                inline.settle(tx, claimed)
            })
            .await
            .map_err(RunnerError::Claim)
            .inspect(|(_, settled)| self.count_settled_at_claim(*settled))
    }

    /// Embedded dispatches settled in the write that claimed them are done jobs too.
    fn count_settled_at_claim(&self, settled: usize) {
        for _ in 0..settled {
            self.inner
                .ctx
                .metrics
                .job_finished(JobKind::DispatchMoment, Ended::Done.as_str());
        }
    }

    fn inline(&self) -> Inline {
        Inline {
            host: self.inner.ctx.host.clone(),
            sender: self.inner.ctx.sender.name(),
            events: self.inner.ctx.events(),
        }
    }

    async fn due(&self, kinds: &[JobKind]) -> Result<bool, RunnerError> {
        let kinds = kinds.to_vec();
        self.store()
            .read(move |c| jobs::any_due(c, &kinds, Utc::now()))
            .await
            .map_err(RunnerError::Read)
    }

    async fn shut_down(
        &self,
        mut running: JoinSet<()>,
        mut held: HashMap<tokio::task::Id, Claimed>,
    ) {
        let in_flight = running.len();
        if in_flight > 0 {
            tracing::info!(
                in_flight,
                grace_secs = self.inner.settings.grace.as_secs_f64(),
                "jobs runner stopping: letting running jobs finish"
            );
        }
        let deadline = tokio::time::sleep(self.inner.settings.grace);
        tokio::pin!(deadline);
        // Claims stay renewed through the grace period, however it compares with the lease.
        let mut renew = tokio::time::interval(self.renew_every());
        renew.tick().await;
        loop {
            tokio::select! {
                next = running.join_next_with_id() => match next {
                    Some(done) => self.reap(done, &mut held).await,
                    None => break,
                },
                _ = renew.tick() => {
                    self.renew_claims().await;
                }
                () = &mut deadline => {
                    running.abort_all();
                    while running.join_next().await.is_some() {}
                    break;
                }
            }
        }
        let name = self.inner.name.clone();
        match self
            .store()
            .write_waiting(move |tx| jobs::release(tx, Some(&name), Utc::now()))
            .await
        {
            Ok(0) => {}
            Ok(released) => {
                tracing::warn!(
                    released,
                    "jobs unfinished at shutdown were put back in the queue"
                )
            }
            Err(e) => tracing::error!(error = %error_chain(&e),
                "could not release unfinished jobs; the next start releases them"),
        }
        tracing::info!("jobs runner stopped");
    }

    /// A finished task. One that panicked left its job claimed: it is settled as a failed
    /// attempt, retried on the schedule like any other.
    async fn reap(
        &self,
        done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
        held: &mut HashMap<tokio::task::Id, Claimed>,
    ) {
        let (task, panicked) = match &done {
            Ok((task, ())) => (*task, false),
            Err(e) => (e.id(), e.is_panic()),
        };
        let Some(job) = held.remove(&task) else {
            return;
        };
        if panicked {
            tracing::error!(job = %job.id, kind = %job.kind, "a job panicked");
            self.settle_only(&job, "the job panicked", false, None)
                .await;
        }
    }

    /// One round, for tests and tools: claims every due job of `kinds` (up to the
    /// concurrency cap), runs them all at once and records each outcome.
    pub async fn run_once(&self, kinds: &[JobKind]) -> Result<Round, RunnerError> {
        if !self.due(kinds).await? {
            return Ok(Round::default());
        }
        let (name, lease, kinds, limit) = (
            self.inner.name.clone(),
            self.inner.settings.lease,
            kinds.to_vec(),
            self.inner.settings.concurrency.max(1),
        );
        let inline = self.inline();
        let (jobs, settled) = self
            .store()
            .write_waiting(move |tx| {
                let claimed = jobs::claim(tx, &name, &kinds, limit, lease, Utc::now())?;
                inline.settle(tx, claimed)
            })
            .await
            .map_err(RunnerError::Claim)?;
        self.count_settled_at_claim(settled);
        let mut running = JoinSet::new();
        for job in jobs {
            running.spawn(self.start(job));
        }
        let mut round = Round {
            done: settled,
            ..Round::default()
        };
        while let Some(done) = running.join_next().await {
            if let Ok(Some(ended)) = done {
                round.count(ended);
            }
        }
        Ok(round)
    }

    /// Runs one claimed job and records how it ended; `None` when that could not be written.
    /// Counted among the texts in flight from its claim until it is settled, even if its
    /// task panics or is aborted.
    fn start(&self, job: Claimed) -> impl std::future::Future<Output = Option<Ended>> + Send {
        struct InFlight(Option<Arc<Inner>>);
        impl Drop for InFlight {
            fn drop(&mut self) {
                if let Some(inner) = &self.0 {
                    inner.sends_in_flight.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        let counted = (job.kind == JobKind::SendText).then(|| {
            self.inner.sends_in_flight.fetch_add(1, Ordering::SeqCst);
            Arc::clone(&self.inner)
        });
        let guard = InFlight(counted);
        let runner = self.clone();
        async move {
            let ended = runner.execute(job).await;
            drop(guard);
            ended
        }
    }

    /// Runs one claimed job in a span of its own, as work for the request that queued it.
    async fn execute(&self, job: Claimed) -> Option<Ended> {
        let span = tracing::info_span!("job", job = %job.id, kind = %job.kind,
            attempt = job.attempt, request_id = tracing::field::Empty);
        if let Some(request) = &job.request {
            span.record("request_id", request.as_str());
        }
        let request = job.request.clone();
        RequestId::scope(request, self.perform_and_record(job))
            .instrument(span)
            .await
    }

    async fn perform_and_record(&self, job: Claimed) -> Option<Ended> {
        let ctx = &self.inner.ctx;
        let performed = match job.kind {
            JobKind::SendText => send_text::perform(ctx, &job).await,
            JobKind::KeepMedia => keep_media::perform(ctx, &job).await,
            JobKind::DispatchMoment => dispatch_moment::perform(ctx, &job).await,
            JobKind::DeliverEvent => deliver_event::perform(ctx, &job).await,
            JobKind::Broadcast => broadcast::perform(ctx, &job).await,
        };
        let now = Utc::now();
        let settled = self.settle(&job, performed.attempted, now);
        log_outcome(&job, &settled, now);
        // A write the database could not take is tried again a few times: its record may
        // say a provider took a text, which must not be sent again.
        let mut waits = RECORD_RETRIES.iter();
        loop {
            let (name, record, claim, outcome) = (
                self.inner.name.clone(),
                Arc::clone(&performed.record),
                job.clone(),
                settled.clone(),
            );
            let written = self
                .store()
                .write_waiting(move |tx| {
                    let held = jobs::holds(tx, &claim, &name)?;
                    if held || outcome.ended == Ended::Done {
                        // What happened out there is recorded even when the claim was lost:
                        // a text the provider took is sent, whoever holds the job now.
                        record(tx, outcome.as_settled())?;
                    }
                    if held {
                        outcome.write(tx, claim.id, now)?;
                    }
                    Ok(held)
                })
                .await;
            match written {
                Ok(true) => {
                    self.inner
                        .ctx
                        .metrics
                        .job_finished(job.kind, settled.ended.as_str());
                    return Some(settled.ended);
                }
                Ok(false) => {
                    tracing::warn!(job = %job.id, kind = %job.kind,
                        "a job's claim ran out before it finished; its outcome was not recorded");
                    return None;
                }
                Err(e) => {
                    let transient = match &e {
                        WriteError::Failed(db) => db.is_transient(),
                        WriteError::Commit(_) | WriteError::Busy => true,
                        WriteError::Stopped | WriteError::Panicked => false,
                    };
                    match waits.next().filter(|_| transient) {
                        Some(wait) => {
                            tracing::warn!(job = %job.id, kind = %job.kind, error = %error_chain(&e),
                                "could not record a job's outcome; trying again");
                            tokio::time::sleep(*wait).await;
                        }
                        None => {
                            let reason =
                                format!("could not record the outcome: {}", error_chain(&e));
                            tracing::error!(job = %job.id, kind = %job.kind, %reason);
                            let record = (settled.ended != Ended::Done)
                                .then(|| Arc::clone(&performed.record));
                            self.settle_only(&job, &reason, settled.ended == Ended::Done, record)
                                .await;
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// How an attempt ends, after the retry schedule.
    fn settle(&self, job: &Claimed, attempted: Attempted, now: DateTime<Utc>) -> Outcome {
        let schedule = &self.inner.settings.schedule;
        match attempted {
            Attempted::Done => Outcome::done(),
            Attempted::Retry { reason, at_least } => {
                match retry_at(schedule, job.attempt, at_least, now) {
                    Some(at) => Outcome::retry(reason, at, true),
                    None => Outcome::failed(reason),
                }
            }
            Attempted::Throttled { reason, wait } => {
                let wait = chrono::Duration::from_std(wait.min(LONGEST_WAIT))
                    .unwrap_or(chrono::TimeDelta::MAX);
                Outcome::retry(reason, now + wait, false)
            }
            Attempted::Failed { reason } => Outcome::failed(reason),
        }
    }

    /// Settles a job whose own outcome could not be recorded (it panicked, or its record
    /// fails every time), if it is still held. One whose work was done (a provider took the
    /// text) is failed with the reason, never tried again: that would do it twice. Any other
    /// is a failed attempt, retried on the schedule; on the last, the kind's `record` says
    /// it failed for good where it can (the text in error, the Moment failed).
    async fn settle_only(&self, job: &Claimed, reason: &str, done: bool, record: Option<Record>) {
        let now = Utc::now();
        let outcome = if done {
            Outcome::failed(reason.to_owned())
        } else {
            self.settle(
                job,
                Attempted::Retry {
                    reason: reason.to_owned(),
                    at_least: None,
                },
                now,
            )
        };
        let (name, claim) = (self.inner.name.clone(), job.clone());
        let written = self
            .store()
            .write_waiting(move |tx| {
                if !jobs::holds(tx, &claim, &name)? {
                    return Ok(None);
                }
                if let (Ended::Failed, false, Some(record)) = (outcome.ended, done, &record) {
                    // Under a savepoint: if this fails too, the job row is still settled.
                    tx.execute("SAVEPOINT last_word", params![])?;
                    if record(tx, outcome.as_settled()).is_err() {
                        tx.execute("ROLLBACK TO last_word", params![])?;
                    }
                    tx.execute("RELEASE last_word", params![])?;
                }
                outcome.write(tx, claim.id, now)?;
                Ok(Some(outcome.ended))
            })
            .await;
        match written {
            Ok(Some(ended)) => self
                .inner
                .ctx
                .metrics
                .job_finished(job.kind, ended.as_str()),
            Ok(None) => {}
            Err(e) => tracing::error!(job = %job.id, error = %error_chain(&e),
                "could not settle a job; it runs again when its lease runs out"),
        }
    }
}

/// Jobs with nothing to wait for, settled in the write that claims them: the embedded
/// dispatch. Each is settled under a savepoint of its own; one that fails is left to the
/// ordinary path, which retries and reports it.
struct Inline {
    /// Only a host that needs no asking has its dispatches settled at once.
    host: crate::host::Host,
    sender: &'static str,
    events: Events,
}

impl Inline {
    /// Settles what it can of `claimed`; answers the rest, and how many it settled.
    fn settle(&self, tx: &Conn, claimed: Vec<Claimed>) -> Result<(Vec<Claimed>, usize), DbError> {
        let mut rest = Vec::with_capacity(claimed.len());
        let mut settled = 0;
        for job in claimed {
            if job.kind != JobKind::DispatchMoment || !self.host.needs_no_asking() {
                rest.push(job);
                continue;
            }
            tx.execute("SAVEPOINT inline", params![])?;
            // The texts it queues carry on the request that queued it.
            let done = RequestId::on_thread(job.request.clone(), || {
                dispatch_moment::settle_at_claim(tx, &job, &self.host, self.sender, self.events)
            })
            .and_then(|done| {
                if done {
                    jobs::finish(tx, job.id)?;
                }
                Ok(done)
            });
            if !matches!(done, Ok(true)) {
                tx.execute("ROLLBACK TO inline", params![])?;
            }
            tx.execute("RELEASE inline", params![])?;
            match done {
                Ok(true) => settled += 1,
                Ok(false) => rest.push(job),
                Err(e) => {
                    tracing::warn!(job = %job.id, error = %e, "dispatch could not be settled at once");
                    rest.push(job);
                }
            }
        }
        Ok((rest, settled))
    }
}

/// How long the outcome write is retried when the database cannot take it.
const RECORD_RETRIES: &[Duration] = &[
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// How far ahead the runner claims texts the pacer will let go.
const CLAIM_HORIZON: Duration = Duration::from_secs(2);

/// Where an attempt left its job.
#[derive(Debug, Clone)]
struct Outcome {
    ended: Ended,
    /// Retrying: when.
    at: Option<DateTime<Utc>>,
    /// Whether the attempt counts against the schedule.
    counted: bool,
    reason: String,
}

impl Outcome {
    fn done() -> Self {
        Self {
            ended: Ended::Done,
            at: None,
            counted: true,
            reason: String::new(),
        }
    }

    fn retry(reason: String, at: DateTime<Utc>, counted: bool) -> Self {
        Self {
            ended: Ended::Retrying,
            at: Some(at),
            counted,
            reason,
        }
    }

    fn failed(reason: String) -> Self {
        Self {
            ended: Ended::Failed,
            at: None,
            counted: true,
            reason,
        }
    }

    fn as_settled(&self) -> Settled<'_> {
        match self.ended {
            Ended::Done => Settled::Done,
            Ended::Retrying => Settled::Retrying {
                reason: &self.reason,
            },
            Ended::Failed => Settled::Failed {
                reason: &self.reason,
            },
        }
    }

    /// Writes the job row's side of the outcome.
    fn write(&self, tx: &Conn, id: JobId, now: DateTime<Utc>) -> Result<(), DbError> {
        match (self.ended, self.at) {
            (Ended::Done, _) => jobs::finish(tx, id),
            (Ended::Retrying, Some(at)) => jobs::retry(tx, id, at, &self.reason, self.counted, now),
            _ => jobs::fail(tx, id, &self.reason, now),
        }
    }
}

fn log_outcome(job: &Claimed, outcome: &Outcome, now: DateTime<Utc>) {
    let (id, kind, attempt, reason) = (job.id.0, job.kind, job.attempt, &outcome.reason);
    match outcome.ended {
        Ended::Done => tracing::debug!(job = id, %kind, attempt, "job done"),
        Ended::Retrying => tracing::warn!(job = id, %kind, attempt,
            retry_in_secs = outcome.at.map_or(0, |at| (at - now).num_seconds()), %reason,
            "job failed; will retry"),
        Ended::Failed => {
            tracing::error!(job = id, %kind, attempt, %reason, "job failed for good")
        }
    }
}

/// When to try again after failed attempt number `attempt` (from 1), or `None` when that was
/// the last the schedule allows. Each wait gets up to a tenth more at random, so retries of
/// many jobs do not arrive together, and is never shorter than `at_least` (itself capped at
/// `LONGEST_WAIT`).
pub fn retry_at(
    schedule: &[Duration],
    attempt: u32,
    at_least: Option<Duration>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    let asked = at_least.unwrap_or_default().min(LONGEST_WAIT);
    let wait = with_jitter(*schedule.get(index)?).max(asked);
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::TimeDelta::MAX);
    Some(
        now.checked_add_signed(wait)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

fn with_jitter(wait: Duration) -> Duration {
    let mut byte = [0u8; 1];
    if getrandom::fill(&mut byte).is_err() {
        return wait;
    }
    wait + wait.mul_f64(f64::from(byte[0]) / 2550.0)
}

/// A number from a job's payload.
fn payload_id(job: &Claimed, field: &str) -> Option<i64> {
    job.payload.get(field).and_then(serde_json::Value::as_i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let now = Utc::now();
        let schedule = [Duration::from_secs(10), Duration::from_secs(100)];
        let first = retry_at(&schedule, 1, None, now).expect("a retry");
        assert!((10_000..=11_000).contains(&(first - now).num_milliseconds()));
        let second = retry_at(&schedule, 2, None, now).expect("a retry");
        assert!((100_000..=110_000).contains(&(second - now).num_milliseconds()));
        assert_eq!(retry_at(&schedule, 3, None, now), None);
        assert_eq!(retry_at(&schedule, 0, None, now), None);
    }

    #[test]
    fn a_providers_wait_is_honoured_when_longer_up_to_an_hour() {
        let now = Utc::now();
        let at = retry_at(&[Duration::ZERO], 1, Some(Duration::from_secs(120)), now);
        assert_eq!(at.map(|t| (t - now).num_seconds()), Some(120));
        let huge = retry_at(
            &[Duration::ZERO],
            1,
            Some(Duration::from_secs(u64::MAX)),
            now,
        );
        assert_eq!(huge.map(|t| (t - now).num_minutes()), Some(60));
    }
}
