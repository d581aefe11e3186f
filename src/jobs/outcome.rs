//! Where an attempt leaves its job, and the one write that records it: the kind's own changes
//! with the job row's, while the runner still holds the claim.

use chrono::{DateTime, Utc};

use super::{Record, Settled};
use crate::db::jobs::{self, Claimed, JobId};
use crate::db::{params, Conn, DbError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    Done,
    Retrying,
    Failed,
}

impl Ended {
    /// The outcome label of `momentline_jobs_finished_total`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }
}

/// Where an attempt left its job.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub(super) ended: Ended,
    /// Retrying: when.
    at: Option<DateTime<Utc>>,
    /// Whether the attempt counts against the schedule.
    counted: bool,
    pub(super) reason: String,
}

impl Outcome {
    pub(super) fn done() -> Self {
        Self {
            ended: Ended::Done,
            at: None,
            counted: true,
            reason: String::new(),
        }
    }

    pub(super) fn retry(reason: String, at: DateTime<Utc>, counted: bool) -> Self {
        Self {
            ended: Ended::Retrying,
            at: Some(at),
            counted,
            reason,
        }
    }

    pub(super) fn failed(reason: String) -> Self {
        Self {
            ended: Ended::Failed,
            at: None,
            counted: true,
            reason,
        }
    }

    pub(super) fn as_settled(&self) -> Settled<'_> {
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

/// The outcome's line in the log.
pub(super) fn log(job: &Claimed, outcome: &Outcome, now: DateTime<Utc>) {
    let (id, kind, attempt, reason) = (job.id.0, job.kind, job.attempt, &outcome.reason);
    match outcome.ended {
        Ended::Done => tracing::debug!(job = id, %kind, attempt, "job done"),
        // Nothing was tried (the provider asked to wait, or the database was unavailable):
        // that is said where it was learnt, once, not for every job it holds back.
        Ended::Retrying if !outcome.counted => tracing::debug!(job = id, %kind, attempt,
            retry_in_secs = outcome.at.map_or(0, |at| (at - now).num_seconds()), %reason,
            "job held back; will look again"),
        Ended::Retrying => tracing::warn!(job = id, %kind, attempt,
            retry_in_secs = outcome.at.map_or(0, |at| (at - now).num_seconds()), %reason,
            "job failed; will retry"),
        Ended::Failed => {
            tracing::error!(job = id, %kind, attempt, %reason, "job failed for good")
        }
    }
}

/// What the kind records with the outcome.
pub(super) enum Recording<'a> {
    /// Its own record: always when its work was done (a text the provider took is recorded
    /// as sent whoever holds the job now), otherwise only while the claim is held.
    Whole(&'a Record),
    /// After its own record could not be written: only a job failing for good gets it, under
    /// a savepoint, so that if it fails again the job row is still settled.
    LastWord(Option<&'a Record>),
}

/// Records `outcome` for `claim` in one write: the kind's changes as `recording` says, and
/// the job row's, if `runner` still holds the claim. Answers how the job ended, `None` when
/// the claim was lost (the job row is another runner's now).
pub(super) fn record(
    tx: &Conn,
    claim: &Claimed,
    runner: &str,
    outcome: &Outcome,
    recording: Recording,
    now: DateTime<Utc>,
) -> Result<Option<Ended>, DbError> {
    // A job done is removed if the claim is still held, in the statement that asks.
    let done = outcome.ended == Ended::Done;
    let held = match done {
        true => jobs::finish_held(tx, claim, runner)?,
        false => jobs::holds(tx, claim, runner)?,
    };
    match recording {
        Recording::Whole(record) => {
            if held || outcome.ended == Ended::Done {
                record(tx, outcome.as_settled())?;
            }
        }
        Recording::LastWord(Some(record)) if held && outcome.ended == Ended::Failed => {
            tx.execute("SAVEPOINT last_word", params![])?;
            let said = record(tx, outcome.as_settled());
            if said.is_err() {
                tx.execute("ROLLBACK TO last_word", params![])?;
            }
            tx.execute("RELEASE last_word", params![])?;
            // In a batch, another write holds what the last word needs: the whole outcome
            // is recorded again alone, where it may wait.
            if let Err(DbError::WouldWait) = said {
                return Err(DbError::WouldWait);
            }
        }
        Recording::LastWord(_) => {}
    }
    if !held {
        return Ok(None);
    }
    if !done {
        outcome.write(tx, claim.id, now)?;
    }
    Ok(Some(outcome.ended))
}
