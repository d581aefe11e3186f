//! The jobs table: background work enqueued in the same write as the change that causes it,
//! claimed by a runner under a lease, and finished, retried or failed.
//!
//! The state words are written into the SQL rather than bound: SQLite uses a partial index
//! (`WHERE state = 'queued'`) only when the query names the same literal. A test checks the
//! words against `JobState`, and the claim's plan against the indexes.

use super::sql::Locking;
use super::{params, ts, Conn, DbError, Text};
pub use crate::domain::ids::JobId;
use crate::domain::ids::MomentId;
use crate::domain::{JobKind, JobState, TextEnum};
use crate::telemetry::RequestId;
use chrono::{DateTime, Duration, Utc};

/// Work to enqueue.
pub struct NewJob<'a> {
    pub kind: JobKind,
    pub payload: serde_json::Value,
    /// Jobs sharing a queue run one at a time, in the order they were enqueued.
    pub queue: Option<&'a str>,
}

/// Enqueues a job, due now.
pub fn enqueue(conn: &Conn, job: &NewJob, now: DateTime<Utc>) -> Result<JobId, DbError> {
    enqueue_due(conn, job, now, now)
}

/// Enqueues a job, due at `due`. It keeps the id of the request it was queued for (the one
/// the write runs for), and the Moment its payload names.
pub fn enqueue_due(
    conn: &Conn,
    job: &NewJob,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<JobId, DbError> {
    let moment_id = job
        .payload
        .get("moment_id")
        .and_then(serde_json::Value::as_i64);
    let request = RequestId::current();
    conn.query_value(
        "INSERT INTO jobs (kind, payload, queue, state, run_after, created_at, updated_at,
           moment_id, request_id)
         VALUES (?1, ?2, ?3, 'queued', ?5, ?4, ?4, ?6, ?7)
         RETURNING id",
        params![
            Text(job.kind),
            job.payload.to_string(),
            job.queue,
            ts(now),
            ts(due.max(now)),
            moment_id,
            request.as_ref().map(RequestId::as_str)
        ],
    )
}

// A Moment's own jobs, found by their `moment_id` column (their payload's). Only jobs due
// later than now are looked at (few: those held back on purpose), through `jobs_moment`.

static RUNNING_FOR: Locking =
    Locking::new("SELECT state FROM jobs WHERE moment_id = ?2 AND kind = ?1 FOR UPDATE");

/// Takes a Moment's job of `kind` that is queued for later out of the queue; answers its
/// payload, `None` when there is no such job.
pub fn take_later(
    conn: &Conn,
    kind: JobKind,
    moment_id: MomentId,
    now: DateTime<Utc>,
) -> Result<Option<serde_json::Value>, DbError> {
    let payload: Option<String> = conn.query_opt(
        "DELETE FROM jobs WHERE id = (
           SELECT id FROM jobs WHERE moment_id = ?2 AND kind = ?1 AND state = 'queued'
             AND run_after > ?3
           LIMIT 1)
         RETURNING payload",
        params![Text(kind), moment_id, ts(now)],
        |r| r.get(0),
    )?;
    Ok(payload.and_then(|p| serde_json::from_str(&p).ok()))
}

/// Makes a Moment's jobs of `kind` that are queued for later due now.
pub fn due_now(
    conn: &Conn,
    kind: JobKind,
    moment_id: MomentId,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE jobs SET run_after = ?3, updated_at = ?3
         WHERE moment_id = ?2 AND kind = ?1 AND state = 'queued' AND run_after > ?3",
        params![Text(kind), moment_id, ts(now)],
    )
}

/// Makes the jobs of `queue` that ran and wait for later due now (an artist's Moments, once
/// the operator has done what they waited for). Jobs that never ran (no error kept) keep
/// their time: a photo still waiting for its caption.
pub fn queue_due_now(conn: &Conn, queue: &str, now: DateTime<Utc>) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE jobs SET run_after = ?2, updated_at = ?2
         WHERE queue = ?1 AND state = 'queued' AND run_after > ?2
           AND last_error IS NOT NULL",
        params![queue, ts(now)],
    )
}

/// Whether a job of `kind` for the Moment is running. On PostgreSQL the Moment's jobs of `kind`
/// are then held until the write ends: a claim under way elsewhere is waited for (and seen),
/// and none is claimed until the write has changed them as it will.
pub fn running_for(conn: &Conn, kind: JobKind, moment_id: MomentId) -> Result<bool, DbError> {
    let sql = conn.locking(&RUNNING_FOR);
    let states = conn.query_map(sql, params![Text(kind), moment_id], |r| {
        r.get::<_, Text<JobState>>(0)
    })?;
    Ok(states.iter().any(|s| s.0 == JobState::Running))
}

/// Enqueues the keeping of a Moment's media (`{"moment_id", "dispatch"?}`), due now.
pub fn enqueue_keep_media(
    conn: &Conn,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<JobId, DbError> {
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
    /// The request that queued it.
    pub request: Option<RequestId>,
}

/// What there is to claim: the kinds with a job due, and whether a claim has run out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// The kinds asked about that have a job due, in the order they were asked.
    pub kinds: Vec<JobKind>,
    /// A running job's lease has run out: `take_back` puts it back in the queue.
    pub lapsed: bool,
}

impl Due {
    pub fn any(&self) -> bool {
        !self.kinds.is_empty() || self.lapsed
    }
}

/// The read `due` runs for `kinds` kinds: one EXISTS a kind (each a seek in `jobs_due`,
/// however long its backlog), and one for a claim run out (`jobs_running`). Made once for
/// each number of kinds.
fn due_sql(kinds: usize) -> &'static str {
    static MADE: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        (0..=JobKind::ALL.len())
            .map(|kinds| {
                let mut columns: Vec<String> = (0..kinds)
                    .map(|i| {
                        format!(
                            "EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND kind = ?{}
                               AND run_after <= ?1)",
                            i + 2
                        )
                    })
                    .collect();
                columns.push(
                    "EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND lease_until <= ?1)"
                        .into(),
                );
                format!("SELECT {}", columns.join(", "))
            })
            .collect()
    });
    &MADE[kinds.min(JobKind::ALL.len())]
}

/// Which of `kinds` have a job due, and whether any claim has run out: a read, so an idle
/// runner costs no write, and its claim asks only for the kinds that have work.
pub fn due(conn: &Conn, kinds: &[JobKind], now: DateTime<Utc>) -> Result<Due, DbError> {
    let kinds = &kinds[..kinds.len().min(JobKind::ALL.len())];
    let now = ts(now);
    let mut values: Vec<&str> = vec![now.as_str()];
    values.extend(kinds.iter().map(|k| k.as_str()));
    conn.query_row(due_sql(kinds.len()), &values, |r| {
        let mut due = Due::default();
        for (i, kind) in kinds.iter().enumerate() {
            if r.get::<_, bool>(i)? {
                due.kinds.push(*kind);
            }
        }
        due.lapsed = r.get(kinds.len())?;
        Ok(due)
    })
}

/// Puts the jobs whose claim ran out (their runner died or hung) back in the queue, due as
/// they were; answers how many.
pub fn take_back(conn: &Conn, now: DateTime<Utc>) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE jobs SET state = 'queued', leased_by = NULL, lease_until = NULL, updated_at = ?1
         WHERE state = 'running' AND lease_until <= ?1",
        &[ts(now)],
    )
}

/// The claim: due jobs of one kind, oldest first (the order of `jobs_due`, so a long backlog
/// is never sorted), skipping any whose queue has an older job waiting, or any job running
/// (so one queue runs one job at a time, in order). On PostgreSQL, where several instances
/// claim at once, the jobs picked are locked, and those another instance has locked are
/// passed over, so no job is claimed twice. (An older job of a queue being claimed elsewhere
/// is still `queued` here, so the younger ones behind it wait as they should; and a job whose
/// write committed after a younger one's, which may then be running, waits for it.)
static CLAIM: Locking = Locking::new(
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, leased_by = ?1,
       lease_until = ?2, updated_at = ?3
     WHERE id IN (
       SELECT j.id FROM jobs j
       WHERE j.state = 'queued' AND j.kind = ?4 AND j.run_after <= ?3
         AND (j.queue IS NULL OR (NOT EXISTS (
           SELECT 1 FROM jobs e
           WHERE e.queue = j.queue AND e.id < j.id AND e.state IN ('queued', 'running'))
         AND NOT EXISTS (
           SELECT 1 FROM jobs r WHERE r.queue = j.queue AND r.state = 'running')))
       ORDER BY j.run_after, j.id LIMIT ?5 FOR UPDATE SKIP LOCKED)
     RETURNING id, kind, payload, attempts, request_id",
);

/// Claims up to `limit` due jobs of `kinds` (in that order of kinds) for `runner` until
/// `now + lease`. A job whose claim ran out is claimed again only once `take_back` has put it
/// back in the queue.
pub fn claim(
    conn: &Conn,
    runner: &str,
    kinds: &[JobKind],
    limit: usize,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, DbError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let sql = conn.locking(&CLAIM);
    let mut claimed: Vec<Claimed> = Vec::new();
    for kind in kinds {
        let left = limit - claimed.len();
        if left == 0 {
            break;
        }
        let mut of_kind = conn.query_map(
            sql,
            params![runner, ts(now + lease), ts(now), Text(*kind), left],
            |r| {
                let payload: String = r.get(2)?;
                Ok(Claimed {
                    id: r.get(0)?,
                    kind: r.get::<_, Text<JobKind>>(1)?.0,
                    payload: serde_json::from_str(&payload)
                        .map_err(|e| DbError::Decode(format!("job payload: {e}")))?,
                    attempt: r.get(3)?,
                    request: r.get::<_, Option<String>>(4)?.map(RequestId::stored),
                })
            },
        )?;
        of_kind.sort_by_key(|c| c.id);
        claimed.extend(of_kind);
    }
    Ok(claimed)
}

/// Whether `runner` still holds its claim on the job for this attempt.
///
/// On PostgreSQL the claim's row stays locked until the write ends, so no other instance can
/// take the job back (its lease run out) between this answer and the outcome written on it.
pub fn holds(conn: &Conn, job: &Claimed, runner: &str) -> Result<bool, DbError> {
    let sql = conn.locking(&HOLDS);
    let held = conn.query_opt(sql, params![job.id, runner, job.attempt], |_| Ok(()))?;
    Ok(held.is_some())
}

static HOLDS: Locking = Locking::new(
    "SELECT id FROM jobs
     WHERE id = ?1 AND state = 'running' AND leased_by = ?2 AND attempts = ?3 FOR UPDATE",
);

/// The job succeeded: removed if `runner` still holds its claim for this attempt (as `holds`
/// answers, and on PostgreSQL with its row locked the same way); answers whether it was.
pub fn finish_held(conn: &Conn, job: &Claimed, runner: &str) -> Result<bool, DbError> {
    let removed = conn.execute(
        "DELETE FROM jobs
         WHERE id = ?1 AND state = 'running' AND leased_by = ?2 AND attempts = ?3",
        params![job.id, runner, job.attempt],
    )?;
    Ok(removed > 0)
}

/// The job succeeded: it is removed, its work is recorded where it belongs.
pub fn finish(conn: &Conn, id: JobId) -> Result<(), DbError> {
    conn.execute("DELETE FROM jobs WHERE id = ?1", &[id])?;
    Ok(())
}

/// The job runs again at `at`. `counted` false gives the attempt back (the provider asked
/// us to slow down: nothing was tried).
pub fn retry(
    conn: &Conn,
    id: JobId,
    at: DateTime<Utc>,
    error: &str,
    counted: bool,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE jobs SET state = 'queued', run_after = ?2, last_error = ?3, leased_by = NULL,
           lease_until = NULL, attempts = attempts - ?4, updated_at = ?5
         WHERE id = ?1",
        params![id, ts(at), error, i64::from(!counted), ts(now)],
    )?;
    Ok(())
}

/// The job is given up for good, its reason kept.
pub fn fail(conn: &Conn, id: JobId, error: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    conn.execute(
        "UPDATE jobs SET state = 'failed', last_error = ?2, leased_by = NULL, lease_until = NULL,
           updated_at = ?3
         WHERE id = ?1",
        params![id, error, ts(now)],
    )?;
    Ok(())
}

/// Puts every job `runner` holds back in the queue, due now (it is stopping). With no
/// runner named, every claim is released: at start-up, any claim is an earlier process's,
/// since one process at a time serves a SQLite database.
/// Extends every claim `runner` holds until `until`, so a job that runs long is not taken
/// over while its runner lives; answers the claims renewed.
pub fn renew(
    conn: &Conn,
    runner: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE jobs SET lease_until = ?2, updated_at = ?3
         WHERE state = 'running' AND leased_by = ?1",
        params![runner, ts(until), ts(now)],
    )
}

pub fn release(conn: &Conn, runner: Option<&str>, now: DateTime<Utc>) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE jobs SET state = 'queued', leased_by = NULL, lease_until = NULL, run_after = ?1,
           updated_at = ?1
         WHERE state = 'running' AND (CAST(?2 AS TEXT) IS NULL OR leased_by = ?2)",
        params![ts(now), runner],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Engine;
    use crate::store::with_database;

    fn text_job(conn: &Conn, to: &str, now: DateTime<Utc>) -> JobId {
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
        with_database(|conn| {
            let plan: Vec<String> = conn.query_map(
                &format!("EXPLAIN QUERY PLAN {}", CLAIM.on(Engine::Sqlite)),
                params!["r", "t", "t", "send_text", 1],
                |r| r.get::<_, String>(3),
            )?;
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
            // Running jobs are few (each runner's concurrency), and found by their index.
            assert!(
                plan.contains("USING INDEX jobs_running")
                    || plan.contains("USING INDEX jobs_queue (queue=?)"),
                "{plan}"
            );
            Ok(())
        });
    }

    #[test]
    fn one_queue_runs_in_order_and_a_retry_holds_the_younger_ones_back() {
        with_database(|conn| {
            let now = Utc::now();
            let lease = Duration::minutes(5);
            let kinds = [JobKind::SendText];
            let (a1, a2) = (text_job(conn, "+1a", now), text_job(conn, "+1a", now));
            let b1 = text_job(conn, "+1b", now);

            let ids = |claimed: Vec<Claimed>| claimed.into_iter().map(|c| c.id).collect::<Vec<_>>();
            let first = claim(conn, "r", &kinds, 10, lease, now).expect("claim");
            assert_eq!(ids(first), [a1, b1], "one job a queue at a time");
            assert!(ids(claim(conn, "r", &kinds, 10, lease, now).expect("claim")).is_empty());

            // a1 fails and waits a minute: a2 waits behind it.
            retry(conn, a1, now + Duration::minutes(1), "503", true, now).expect("retry");
            finish(conn, b1).expect("finish");
            assert!(ids(claim(conn, "r", &kinds, 10, lease, now).expect("claim")).is_empty());
            let later = now + Duration::minutes(2);
            assert_eq!(
                ids(claim(conn, "r", &kinds, 10, lease, later).expect("claim")),
                [a1]
            );
            finish(conn, a1).expect("finish");
            assert_eq!(
                ids(claim(conn, "r", &kinds, 10, lease, later).expect("claim")),
                [a2]
            );
            Ok(())
        });
    }

    #[test]
    fn a_job_whose_write_committed_late_waits_for_the_younger_one_running_in_its_queue() {
        with_database(|conn| {
            let now = Utc::now();
            let lease = Duration::minutes(5);
            let kinds = [JobKind::SendText];
            let younger = text_job(conn, "+1a", now);
            assert_eq!(
                claim(conn, "r", &kinds, 10, lease, now)
                    .expect("claim")
                    .len(),
                1
            );
            // Another write, begun first, commits now: its job has the older id.
            let late = text_job(conn, "+1a", now);
            conn.execute(
                "UPDATE jobs SET id = ?1 WHERE id = ?2",
                params![younger.0 - 1, late],
            )?;
            assert!(
                claim(conn, "r", &kinds, 10, lease, now)
                    .expect("claim")
                    .is_empty(),
                "one job of a queue runs at a time, whatever their ids"
            );
            finish(conn, younger).expect("finish");
            assert_eq!(
                claim(conn, "r", &kinds, 10, lease, now)
                    .expect("claim")
                    .len(),
                1
            );
            Ok(())
        });
    }

    #[test]
    fn a_claim_whose_lease_ran_out_is_taken_over_and_the_old_holder_no_longer_holds_it() {
        with_database(|conn| {
            let now = Utc::now();
            let kinds = [JobKind::SendText];
            text_job(conn, "+1a", now);
            let mine = claim(conn, "old", &kinds, 1, Duration::seconds(30), now).expect("claim");
            assert!(holds(conn, &mine[0], "old").expect("holds"));
            assert!(claim(conn, "new", &kinds, 1, Duration::seconds(30), now)
                .expect("claim")
                .is_empty());
            let later = now + Duration::seconds(31);
            assert_eq!(
                due(conn, &kinds, later).expect("due"),
                Due {
                    kinds: Vec::new(),
                    lapsed: true
                }
            );
            assert_eq!(take_back(conn, later).expect("take back"), 1);
            assert_eq!(due(conn, &kinds, later).expect("due").kinds, kinds);
            let theirs =
                claim(conn, "new", &kinds, 1, Duration::seconds(30), later).expect("claim");
            assert_eq!(theirs.len(), 1);
            assert_eq!(theirs[0].attempt, 2);
            assert!(!holds(conn, &mine[0], "old").expect("holds"));
            assert!(holds(conn, &theirs[0], "new").expect("holds"));
            Ok(())
        });
    }

    #[test]
    fn release_puts_one_runners_claims_back_or_everyones() {
        with_database(|conn| {
            let now = Utc::now();
            let kinds = [JobKind::SendText];
            for to in ["+1a", "+1b", "+1c"] {
                text_job(conn, to, now);
            }
            claim(conn, "one", &kinds, 1, Duration::minutes(5), now).expect("claim");
            claim(conn, "two", &kinds, 2, Duration::minutes(5), now).expect("claim");
            assert_eq!(release(conn, Some("one"), now).expect("release"), 1);
            assert_eq!(release(conn, None, now).expect("release"), 2);
            let running: i64 = conn.query_value(
                "SELECT count(*) FROM jobs WHERE state = 'running'",
                params![],
            )?;
            assert_eq!(running, 0);
            Ok(())
        });
    }
}
