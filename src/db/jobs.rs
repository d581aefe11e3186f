//! The jobs table: background work enqueued in the same write as the change that causes it,
//! claimed by a runner under a lease, and finished, retried or failed.
//!
//! The state words are written into the SQL rather than bound: SQLite uses a partial index
//! (`WHERE state = 'queued'`) only when the query names the same literal. A test checks the
//! words against `JobState`, and the claim's plan against the indexes.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{ts, Text};
use crate::domain::{JobKind, TextEnum};

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
    enqueue_due(conn, job, now, now)
}

/// Enqueues a job, due at `due`.
pub fn enqueue_due(
    conn: &Connection,
    job: &NewJob,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> rusqlite::Result<JobId> {
    conn.prepare_cached(
        "INSERT INTO jobs (kind, payload, queue, state, run_after, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'queued', ?5, ?4, ?4)",
    )?
    .execute(params![
        Text(job.kind),
        job.payload.to_string(),
        job.queue,
        ts(now),
        ts(due.max(now))
    ])?;
    Ok(JobId(conn.last_insert_rowid()))
}

// A Moment's own jobs, found by the `moment_id` in their payload. Only jobs due later than
// now are looked at (few: those held back on purpose), through `jobs_due`.

/// Takes a Moment's job of `kind` that is queued for later out of the queue; answers its
/// payload, `None` when there is no such job.
pub fn take_later(
    conn: &Connection,
    kind: JobKind,
    moment_id: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<serde_json::Value>> {
    let payload: Option<String> = conn
        .prepare_cached(
            "DELETE FROM jobs WHERE id = (
               SELECT id FROM jobs WHERE state = 'queued' AND kind = ?1 AND run_after > ?3
                 AND json_extract(payload, '$.moment_id') = ?2
               LIMIT 1)
             RETURNING payload",
        )?
        .query_row(params![Text(kind), moment_id, ts(now)], |r| r.get(0))
        .optional()?;
    Ok(payload.and_then(|p| serde_json::from_str(&p).ok()))
}

/// Makes a Moment's jobs of `kind` that are queued for later due now.
pub fn due_now(
    conn: &Connection,
    kind: JobKind,
    moment_id: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE jobs SET run_after = ?3, updated_at = ?3
         WHERE state = 'queued' AND kind = ?1 AND run_after > ?3
           AND json_extract(payload, '$.moment_id') = ?2",
    )?
    .execute(params![Text(kind), moment_id, ts(now)])
}

/// Whether a job of `kind` for the Moment is running.
pub fn running_for(conn: &Connection, kind: JobKind, moment_id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND kind = ?1
           AND json_extract(payload, '$.moment_id') = ?2)",
    )?
    .query_row(params![Text(kind), moment_id], |r| r.get(0))
}

/// Enqueues the keeping of a Moment's media (`{"moment_id", "dispatch"?}`), due now.
pub fn enqueue_keep_media(
    conn: &Connection,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> rusqlite::Result<JobId> {
    enqueue(
        conn,
        &NewJob {
            kind: JobKind::KeepMedia,
            payload,
            queue: None,
        },
        now,
    )
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

/// Whether any job of `kinds` is due, or any claim has run out: a read, so an idle runner
/// costs no write.
pub fn any_due(conn: &Connection, kinds: &[JobKind], now: DateTime<Utc>) -> rusqlite::Result<bool> {
    // One parameter a kind: the statement is prepared once for each number of kinds asked.
    let places = (2..kinds.len() + 2)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let now = ts(now);
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&now];
    let words: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    values.extend(words.iter().map(|w| w as &dyn rusqlite::ToSql));
    conn.prepare_cached(&format!(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND run_after <= ?1
           AND kind IN ({places}))
         OR EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND lease_until <= ?1)"
    ))?
    .query_row(values.as_slice(), |r| r.get(0))
}

/// The claim's SQL: due jobs of one kind, oldest first (the order of `jobs_due`, so a long
/// backlog is never sorted), skipping any whose queue has an older job waiting or running
/// (so one queue runs in order).
const CLAIM: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, leased_by = ?1,
       lease_until = ?2, updated_at = ?3
     WHERE id IN (
       SELECT j.id FROM jobs j
       WHERE j.state = 'queued' AND j.kind = ?4 AND j.run_after <= ?3
         AND (j.queue IS NULL OR NOT EXISTS (
           SELECT 1 FROM jobs e
           WHERE e.queue = j.queue AND e.id < j.id AND e.state IN ('queued', 'running')))
       ORDER BY j.run_after, j.id LIMIT ?5)
     RETURNING id, kind, payload, attempts";

/// Claims up to `limit` due jobs of `kinds` (in that order of kinds) for `runner` until
/// `now + lease`. Claims whose lease ran out (their runner died or hung) are taken back
/// first.
pub fn claim(
    conn: &Connection,
    runner: &str,
    kinds: &[JobKind],
    limit: usize,
    lease: Duration,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<Claimed>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    conn.prepare_cached(
        "UPDATE jobs SET state = 'queued', leased_by = NULL, lease_until = NULL, updated_at = ?1
         WHERE state = 'running' AND lease_until <= ?1",
    )?
    .execute([ts(now)])?;
    let mut stmt = conn.prepare_cached(CLAIM)?;
    let mut claimed: Vec<Claimed> = Vec::new();
    for kind in kinds {
        let left = i64::try_from(limit - claimed.len()).unwrap_or(i64::MAX);
        if left == 0 {
            break;
        }
        let rows = stmt.query_map(
            params![runner, ts(now + lease), ts(now), Text(*kind), left],
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
        let mut of_kind: Vec<Claimed> = rows.collect::<rusqlite::Result<_>>()?;
        of_kind.sort_by_key(|c| c.id);
        claimed.extend(of_kind);
    }
    Ok(claimed)
}

/// Whether `runner` still holds its claim on the job for this attempt.
pub fn holds(conn: &Connection, job: &Claimed, runner: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM jobs
           WHERE id = ?1 AND state = 'running' AND leased_by = ?2 AND attempts = ?3)",
    )?
    .query_row(params![job.id.0, runner, job.attempt], |r| r.get(0))
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
        "UPDATE jobs SET state = 'queued', run_after = ?2, last_error = ?3, leased_by = NULL,
           lease_until = NULL, attempts = attempts - ?4, updated_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![id.0, ts(at), error, i64::from(!counted), ts(now)])?;
    Ok(())
}

/// The job is given up for good, its reason kept.
pub fn fail(conn: &Connection, id: JobId, error: &str, now: DateTime<Utc>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE jobs SET state = 'failed', last_error = ?2, leased_by = NULL, lease_until = NULL,
           updated_at = ?3
         WHERE id = ?1",
    )?
    .execute(params![id.0, error, ts(now)])?;
    Ok(())
}

/// Puts every job `runner` holds back in the queue, due now (it is stopping). With no
/// runner named, every claim is released: at start-up, any claim is an earlier process's,
/// since one process at a time serves a SQLite database.
pub fn release(
    conn: &Connection,
    runner: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE jobs SET state = 'queued', leased_by = NULL, lease_until = NULL, run_after = ?1,
           updated_at = ?1
         WHERE state = 'running' AND (?2 IS NULL OR leased_by = ?2)",
    )?
    .execute(params![ts(now), runner])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobState;

    fn database() -> (tempfile::TempDir, crate::db::Pool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = crate::store::Store::open(&dir.path().join("j.db"), Default::default())
            .expect("open")
            .reads()
            .clone();
        (dir, pool)
    }

    fn text_job(conn: &Connection, to: &str, now: DateTime<Utc>) -> JobId {
        enqueue(
            conn,
            &NewJob {
                kind: JobKind::SendText,
                payload: serde_json::json!({ "message_id": 1 }),
                queue: Some(to),
            },
            now,
        )
        .expect("enqueue")
    }

    #[test]
    fn the_state_words_in_the_sql_are_the_enums() {
        let words: Vec<&str> = JobState::ALL.iter().map(|(_, w)| *w).collect();
        assert_eq!(words, ["queued", "running", "failed"]);
    }

    #[test]
    fn the_claim_finds_due_jobs_and_their_queues_by_index() {
        let (_dir, pool) = database();
        let conn = pool.get().expect("conn");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {CLAIM}"))
            .expect("plan")
            .query_map(params!["r", "t", "t", "send_text", 1], |r| {
                r.get::<_, String>(3)
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        let plan = plan.join("\n");
        assert!(
            plan.contains("USING INDEX jobs_due (kind=? AND run_after<?)"),
            "{plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE"),
            "a backlog is never sorted: {plan}"
        );
        assert!(
            plan.contains("USING INDEX jobs_queue (queue=? AND id<?)"),
            "{plan}"
        );
    }

    #[test]
    fn one_queue_runs_in_order_and_a_retry_holds_the_younger_ones_back() {
        let (_dir, pool) = database();
        let conn = pool.get().expect("conn");
        let now = Utc::now();
        let lease = Duration::minutes(5);
        let kinds = [JobKind::SendText];
        let (a1, a2) = (text_job(&conn, "+1a", now), text_job(&conn, "+1a", now));
        let b1 = text_job(&conn, "+1b", now);

        let ids = |claimed: Vec<Claimed>| claimed.into_iter().map(|c| c.id).collect::<Vec<_>>();
        let first = claim(&conn, "r", &kinds, 10, lease, now).expect("claim");
        assert_eq!(ids(first), [a1, b1], "one job a queue at a time");
        assert!(ids(claim(&conn, "r", &kinds, 10, lease, now).expect("claim")).is_empty());

        // a1 fails and waits a minute: a2 waits behind it.
        retry(&conn, a1, now + Duration::minutes(1), "503", true, now).expect("retry");
        finish(&conn, b1).expect("finish");
        assert!(ids(claim(&conn, "r", &kinds, 10, lease, now).expect("claim")).is_empty());
        let later = now + Duration::minutes(2);
        assert_eq!(
            ids(claim(&conn, "r", &kinds, 10, lease, later).expect("claim")),
            [a1]
        );
        finish(&conn, a1).expect("finish");
        assert_eq!(
            ids(claim(&conn, "r", &kinds, 10, lease, later).expect("claim")),
            [a2]
        );
    }

    #[test]
    fn a_claim_whose_lease_ran_out_is_taken_over_and_the_old_holder_no_longer_holds_it() {
        let (_dir, pool) = database();
        let conn = pool.get().expect("conn");
        let now = Utc::now();
        let kinds = [JobKind::SendText];
        text_job(&conn, "+1a", now);
        let mine = claim(&conn, "old", &kinds, 1, Duration::seconds(30), now).expect("claim");
        assert!(holds(&conn, &mine[0], "old").expect("holds"));
        assert!(claim(&conn, "new", &kinds, 1, Duration::seconds(30), now)
            .expect("claim")
            .is_empty());
        let later = now + Duration::seconds(31);
        let theirs = claim(&conn, "new", &kinds, 1, Duration::seconds(30), later).expect("claim");
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].attempt, 2);
        assert!(!holds(&conn, &mine[0], "old").expect("holds"));
        assert!(holds(&conn, &theirs[0], "new").expect("holds"));
    }

    #[test]
    fn release_puts_one_runners_claims_back_or_everyones() {
        let (_dir, pool) = database();
        let conn = pool.get().expect("conn");
        let now = Utc::now();
        let kinds = [JobKind::SendText];
        for to in ["+1a", "+1b", "+1c"] {
            text_job(&conn, to, now);
        }
        claim(&conn, "one", &kinds, 1, Duration::minutes(5), now).expect("claim");
        claim(&conn, "two", &kinds, 2, Duration::minutes(5), now).expect("claim");
        assert_eq!(release(&conn, Some("one"), now).expect("release"), 1);
        assert_eq!(release(&conn, None, now).expect("release"), 2);
        let running: i64 = conn
            .query_row(
                "SELECT count(*) FROM jobs WHERE state = 'running'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(running, 0);
    }
}
