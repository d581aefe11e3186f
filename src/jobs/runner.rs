//! The runner: claims due jobs (settling at once those that need nothing more), runs each in
//! a slot of its own, renews its claims, and writes each outcome; on shutdown it lets running
//! jobs finish for a grace period and releases the rest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::inline::Inline;
use super::outcome::{self, Ended, Outcome, Recording};
use super::retry::{self, RECORD_RETRIES};
use super::{
    broadcast, deliver_event, dispatch_moment, hide_moment, keep_media, send_batch, send_text,
    Attempted, JobContext, Record, RunnerSettings, ALL_KINDS,
};
use crate::db::jobs::{self, Claimed};
use crate::domain::JobKind;
use crate::store::{Store, WriteError};
use crate::telemetry::{error_chain, RequestId};

/// How often the runner looks for due retries when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);

/// How far ahead the runner claims texts the pacer will let go.
const CLAIM_HORIZON: Duration = Duration::from_secs(2);

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
                    // A database that cannot take writes is said once by the store.
                    Err(RunnerError::Claim(e)) if e.may_pass() => {
                        tracing::debug!(error = %error_chain(&e), "jobs runner could not claim");
                    }
                    Err(RunnerError::Read(e)) if e.is_transient() => {
                        tracing::debug!(error = %error_chain(&e), "jobs runner could not claim");
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
        let due = self.due(ALL_KINDS).await?;
        if !due.any() {
            return Ok((Vec::new(), 0));
        }
        let inline = self.inline();
        // Only the kinds the read found due are asked for (a job that fell due since is
        // claimed in the next round), and claims run out are taken back only when the read
        // saw one: a round costs the writer a statement for each kind with work. On
        // PostgreSQL the claim's FOR UPDATE SKIP LOCKED keeps two instances off one job.
        self.store()
            .write_waiting(move |tx| {
                let now = Utc::now();
                // A job taken back may be of any kind: all are looked for then.
                let kinds = match due.lapsed {
                    true => {
                        jobs::take_back(tx, now)?;
                        ALL_KINDS
                    }
                    false => &due.kinds[..],
                };
                let texts: Vec<JobKind> = kinds
                    .iter()
                    .copied()
                    .filter(|kind| *kind == JobKind::SendText)
                    .collect();
                let mut claimed = jobs::claim(tx, &name, &texts, sends, lease, now)?;
                // Every other kind, in `ALL_KINDS`' order.
                let others: Vec<JobKind> = kinds
                    .iter()
                    .copied()
                    .filter(|kind| *kind != JobKind::SendText)
                    .collect();
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

    /// What there is to claim of `kinds`, as a read sees it.
    async fn due(&self, kinds: &[JobKind]) -> Result<jobs::Due, RunnerError> {
        let kinds = kinds.to_vec();
        self.store()
            .read(move |c| jobs::due(c, &kinds, Utc::now()))
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
        let due = self.due(kinds).await?;
        if !due.any() {
            return Ok(Round::default());
        }
        let (name, lease, limit, asked) = (
            self.inner.name.clone(),
            self.inner.settings.lease,
            self.inner.settings.concurrency.max(1),
            kinds.to_vec(),
        );
        let inline = self.inline();
        let (jobs, settled) = self
            .store()
            .write_waiting(move |tx| {
                let now = Utc::now();
                // A job taken back may be of any kind asked for: all are looked for then.
                let kinds = match due.lapsed {
                    true => {
                        jobs::take_back(tx, now)?;
                        &asked
                    }
                    false => &due.kinds,
                };
                let claimed = jobs::claim(tx, &name, kinds, limit, lease, now)?;
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
            JobKind::HideMoment => hide_moment::perform(ctx, &job).await,
            JobKind::SendBatch => send_batch::perform(ctx, &job).await,
        };
        let now = Utc::now();
        let settled = retry::settle(
            &self.inner.settings.schedule,
            &job,
            performed.attempted,
            now,
        );
        outcome::log(&job, &settled, now);
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
                    outcome::record(tx, &claim, &name, &outcome, Recording::Whole(&record), now)
                })
                .await;
            match written {
                Ok(Some(_)) => {
                    self.inner
                        .ctx
                        .metrics
                        .job_finished(job.kind, settled.ended.as_str());
                    return Some(settled.ended);
                }
                Ok(None) => {
                    tracing::warn!(job = %job.id, kind = %job.kind,
                        "a job's claim ran out before it finished; its outcome was not recorded");
                    return None;
                }
                Err(e) => {
                    let transient = e.may_pass() || matches!(e, WriteError::Commit(_));
                    match waits.next().filter(|_| transient) {
                        // The database unavailable is said once by the store.
                        Some(wait) if e.may_pass() => {
                            tracing::debug!(job = %job.id, kind = %job.kind, error = %error_chain(&e),
                                "could not record a job's outcome; trying again");
                            tokio::time::sleep(*wait).await;
                        }
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
            retry::settle(
                &self.inner.settings.schedule,
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
                let last_word = Recording::LastWord(record.as_ref());
                outcome::record(tx, &claim, &name, &outcome, last_word, now)
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
