//! The jobs table: background work enqueued in the same write as the change that causes it,
//! claimed by a runner under a lease, and finished, retried or failed.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{ts, Text};
use crate::domain::{JobKind, JobState, TextEnum};

/// A job's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Work to enqueue.
pub struct NewJob<'a> {
    pub kind: JobKind,
    pub payload: serde_json::Value,
    /// Jobs sharing a queue run one at a time, in the order they were enqueued.
    pub queue: Option<&'a str>,
}

/// Enqueues a job, due now.
pub fn enqueue(conn: &Connection, job: &NewJob, now: DateTime<Utc>) -> rusqlite::Result<JobId> {
    conn.prepare_cached(
        "INSERT INTO jobs (kind, payload, queue, state, run_after, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)",
    )?
    .execute(params![
        Text(job.kind),
        job.payload.to_string(),
        job.queue,
        Text(JobState::Queued),
        ts(now)
    ])?;
    Ok(JobId(conn.last_insert_rowid()))
}

/// A job a runner holds: its claim is (id, runner, attempt).
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: JobId,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    /// Attempts begun, this one included.
    pub attempt: u32,
}

/// Whether any job of `kinds` is due: a read, so an idle runner costs no write.
pub fn any_due(conn: &Connection, kinds: &[JobKind], now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let words = kinds_json(kinds);
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = ?1 AND run_after <= ?2
           AND kind IN (SELECT value FROM json_each(?3)))
         OR EXISTS (SELECT 1 FROM jobs WHERE state = ?4 AND lease_until <= ?2)",
    )?
    .query_row(
        params![
            Text(JobState::Queued),
            ts(now),
            words,
            Text(JobState::Running)
        ],
        |r| r.get(0),
    )
}

/// When the next queued job of `kinds` falls due, if any is queued.
pub fn next_due(conn: &Connection, kinds: &[JobKind]) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let at: Option<String> = conn
        .prepare_cached(
            "SELECT min(run_after) FROM jobs WHERE state = ?1
               AND kind IN (SELECT value FROM json_each(?2))",
        )?
        .query_row(params![Text(JobState::Queued), kinds_json(kinds)], |r| {
            r.get(0)
        })
        .optional()?
        .flatten();
    super::opt_ts(at)
}

fn kinds_json(kinds: &[JobKind]) -> String {
    serde_json::Value::from(kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>()).to_string()
}

/// Claims up to `limit` due jobs of `kinds` for `runner` until `now + lease`. A job whose
/// queue has an older job waiting or running is not due yet, so one queue runs in order.
/// Claims whose lease ran out (their runner died) are taken back first.
pub fn claim(
    conn: &Connection,
    runner: &str,
    kinds: &[JobKind],
    limit: usize,
    lease: Duration,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<Claimed>> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?1, leased_by = NULL, lease_until = NULL, updated_at = ?3
         WHERE state = ?2 AND lease_until <= ?3",
    )?
    .execute(params![
        Text(JobState::Queued),
        Text(JobState::Running),
        ts(now)
    ])?;
    let mut stmt = conn.prepare_cached(
        "UPDATE jobs SET state = ?1, attempts = attempts + 1, leased_by = ?2, lease_until = ?3,
           updated_at = ?4
         WHERE id IN (
           SELECT j.id FROM jobs j
           WHERE j.state = ?5 AND j.run_after <= ?4
             AND j.kind IN (SELECT value FROM json_each(?6))
             AND (j.queue IS NULL OR NOT EXISTS (
               SELECT 1 FROM jobs e
               WHERE e.queue = j.queue AND e.id < j.id AND e.state IN (?5, ?1)))
           ORDER BY j.run_after, j.id LIMIT ?7)
         RETURNING id, kind, payload, attempts",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(
        params![
            Text(JobState::Running),
            runner,
            ts(now + lease),
            ts(now),
            Text(JobState::Queued),
            kinds_json(kinds),
            limit
        ],
        |r| {
            let payload: String = r.get(2)?;
            Ok(Claimed {
                id: JobId(r.get(0)?),
                kind: r.get::<_, Text<JobKind>>(1)?.0,
                payload: serde_json::from_str(&payload).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        2,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?,
                attempt: r.get(3)?,
            })
        },
    )?;
    let mut claimed: Vec<Claimed> = rows.collect::<rusqlite::Result<_>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Whether `runner` still holds its claim on the job for this attempt.
pub fn holds(conn: &Connection, job: &Claimed, runner: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM jobs
           WHERE id = ?1 AND state = ?2 AND leased_by = ?3 AND attempts = ?4)",
    )?
    .query_row(
        params![job.id.0, Text(JobState::Running), runner, job.attempt],
        |r| r.get(0),
    )
}

/// The job succeeded: it is removed, its work is recorded where it belongs.
pub fn finish(conn: &Connection, id: JobId) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute([id.0])?;
    Ok(())
}

/// The job runs again at `at`. `counted` false gives the attempt back (the provider asked
/// us to slow down: nothing was tried).
pub fn retry(
    conn: &Connection,
    id: JobId,
    at: DateTime<Utc>,
    error: &str,
    counted: bool,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, run_after = ?3, last_error = ?4, leased_by = NULL,
           lease_until = NULL, attempts = attempts - ?5, updated_at = ?6
         WHERE id = ?1",
    )?
    .execute(params![
        id.0,
        Text(JobState::Queued),
        ts(at),
        error,
        i64::from(!counted),
        ts(now)
    ])?;
    Ok(())
}

/// The job is given up for good, its reason kept.
pub fn fail(conn: &Connection, id: JobId, error: &str, now: DateTime<Utc>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, last_error = ?3, leased_by = NULL, lease_until = NULL,
           updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![id.0, Text(JobState::Failed), error, ts(now)])?;
    Ok(())
}

/// Puts every job `runner` holds back in the queue, due now (it is stopping). With no
/// runner named, every claim is released: at start-up, any claim is an earlier process's.
pub fn release(
    conn: &Connection,
    runner: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?1, leased_by = NULL, lease_until = NULL, run_after = ?3,
           updated_at = ?3
         WHERE state = ?2 AND (?4 IS NULL OR leased_by = ?4)",
    )?
    .execute(params![
        Text(JobState::Queued),
        Text(JobState::Running),
        ts(now),
        runner
    ])
}
