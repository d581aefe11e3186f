//! Broadcasts: an operator's text to every verified number, queued a batch of numbers at a
//! time by a `broadcast` job that keeps its place in the row, so no write holds the writer
//! long and a restart carries on where the last batch ended.

use super::batches;
use super::jobs::{self, NewJob};
use super::messages::{self, NewOutbound};
use super::{params, ts, Conn, DbError, Text};
use crate::domain::ids::ArtistId;
pub use crate::domain::ids::BroadcastId;
use crate::domain::number_state::ReplyKind;
use crate::domain::{JobKind, MessageState};
use chrono::{DateTime, Duration, Utc};

/// Numbers a broadcast job queues texts for in one write.
pub const BATCH: usize = 500;

fn fan_out_job(id: BroadcastId) -> NewJob<'static> {
    NewJob {
        kind: JobKind::Broadcast,
        payload: serde_json::json!({ "broadcast_id": id }),
        queue: None,
    }
}

/// Records a broadcast and the job that queues its texts; answers its id and how many
/// numbers are verified now (what it will reach unless that changes while it is queued).
pub fn create(tx: &Conn, body: &str, now: DateTime<Utc>) -> Result<(BroadcastId, i64), DbError> {
    let id: BroadcastId = tx.query_value(
        "INSERT INTO broadcasts (body, created_at) VALUES (?1, ?2) RETURNING id",
        params![body, ts(now)],
    )?;
    jobs::enqueue(tx, &fan_out_job(id), now)?;
    let verified = tx.query_value(
        "SELECT count(*) FROM phone_numbers WHERE state = 'verified'",
        params![],
    )?;
    Ok((id, verified))
}

/// Whether broadcast `id` has been queued for every verified number; `None` when there is no
/// such broadcast.
pub fn finished(conn: &Conn, id: BroadcastId) -> Result<Option<bool>, DbError> {
    conn.query_opt(
        "SELECT queued_at IS NOT NULL FROM broadcasts WHERE id = ?1",
        &[id],
        |r| r.get(0),
    )
}

/// What one batch of a fan-out did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Texts queued by this batch.
    pub queued: usize,
    /// Numbers queued so far, this batch included.
    pub total: i64,
    /// Whether every verified number now has its text.
    pub finished: bool,
}

/// How a fan-out sends the texts it queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    /// A send_text job each, due one `spacing` apart.
    EachText { spacing: Duration },
    /// The whole batch in one call to the provider's bulk path (a `send_batch` job).
    Bulk,
}

/// Queues broadcast `id`'s text for the next `limit` verified numbers after its cursor, in
/// order of number, and moves the cursor past them. With `Sending::Bulk` the texts are one
/// batch, sent in one call by its own job; otherwise each has its send job. A number verified later than the cursor
/// passed it gets nothing; one that opts out before its text goes is never sent it
/// (send_text withholds it). The texts' jobs are due one `spacing` apart from `now`, so a
/// paced provider sees them no faster than it takes them and an automatic reply queued
/// meanwhile waits behind only those due before it. When more numbers may remain, the next
/// batch's job is queued, due when this batch's last text is. `None` when there is no such
/// broadcast.
pub fn fan_out(
    tx: &Conn,
    id: BroadcastId,
    limit: usize,
    provider: &str,
    sending: Sending,
    now: DateTime<Utc>,
) -> Result<Option<Batch>, DbError> {
    let spacing = match sending {
        Sending::EachText { spacing } => spacing,
        Sending::Bulk => Duration::zero(),
    };
    // One fan-out of a broadcast at a time, on any instance: each goes on from where the
    // last left its cursor, so no number is queued twice.
    tx.lock(&format!("broadcast:{id}"))?;
    let row = tx.query_opt(
        "SELECT body, cursor, queued, queued_at FROM broadcasts WHERE id = ?1",
        &[id],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        },
    )?;
    let Some((body, cursor, queued, queued_at)) = row else {
        return Ok(None);
    };
    if queued_at.is_some() {
        return Ok(Some(Batch {
            queued: 0,
            total: queued,
            finished: true,
        }));
    }
    let numbers: Vec<(String, Option<ArtistId>)> = tx.query_map(
        "SELECT e164, owner_id FROM phone_numbers
         WHERE state = 'verified' AND e164 > ?1 ORDER BY e164 LIMIT ?2",
        params![cursor.as_deref().unwrap_or(""), limit],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut due = now;
    let mut batched = Vec::new();
    for (to, owner) in &numbers {
        let text = NewOutbound {
            artist: *owner,
            to,
            from: None,
            body: &body,
            provider,
            purpose: ReplyKind::Broadcast,
        };
        match sending {
            Sending::EachText { .. } => {
                messages::queue_broadcast_text(tx, &text, id, due, now)?;
            }
            Sending::Bulk => batched.push(messages::record_batched_text(tx, &text, id, now)?),
        }
        due += spacing;
    }
    batches::queue(tx, id, &batched, now)?;
    let finished = numbers.len() < limit;
    let total = queued + i64::try_from(numbers.len()).unwrap_or(i64::MAX);
    tx.execute(
        "UPDATE broadcasts SET queued = ?2, cursor = coalesce(?3, cursor),
           queued_at = CASE WHEN ?4 = 1 THEN CAST(?5 AS TEXT) END
         WHERE id = ?1",
        params![
            id,
            total,
            numbers.last().map(|(e164, _)| e164.as_str()),
            finished,
            ts(now)
        ],
    )?;
    if !finished {
        jobs::enqueue_due(tx, &fan_out_job(id), due - spacing, now)?;
    }
    Ok(Some(Batch {
        queued: numbers.len(),
        total,
        finished,
    }))
}

/// Where a broadcast stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: BroadcastId,
    pub body: String,
    pub created_at: String,
    /// Numbers its text was queued for.
    pub numbers: i64,
    /// When every verified number had its text; `None` while queuing goes on.
    pub queued_at: Option<String>,
    /// Why queuing stopped, if its job failed for good.
    pub queuing_failed: Option<String>,
    /// Accepted by the provider (or delivered).
    pub sent: i64,
    /// Queued, not yet accepted.
    pub waiting: i64,
    /// Refused for good, or out of attempts.
    pub failed: i64,
    /// Never sent: the number opted out after the text was queued.
    pub withheld: i64,
    /// Its batches through the provider's bulk path, by state (queued, running, finished,
    /// failed); `None` when it went a text a call.
    pub batches: Option<[i64; 4]>,
}

/// Broadcast `id`'s status; `None` when there is no such broadcast. Counted from the
/// `messages_broadcast` index, reading rows only for the texts that failed.
pub fn status(conn: &Conn, id: BroadcastId) -> Result<Option<Status>, DbError> {
    let row = conn.query_opt(
        "SELECT body, created_at, queued, queued_at FROM broadcasts WHERE id = ?1",
        &[id],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        },
    )?;
    let Some((body, created_at, numbers, queued_at)) = row else {
        return Ok(None);
    };
    let mut status = Status {
        id,
        body,
        created_at,
        numbers,
        queued_at,
        queuing_failed: None,
        sent: 0,
        waiting: 0,
        failed: 0,
        withheld: 0,
        batches: None,
    };
    let counts = conn.query_map(
        "SELECT state, count(*) FROM messages WHERE broadcast_id = ?1 GROUP BY state",
        &[id],
        |r| Ok((r.get::<_, Text<MessageState>>(0)?.0, r.get::<_, i64>(1)?)),
    )?;
    for (state, n) in counts {
        match state {
            MessageState::Sent | MessageState::Delivered => status.sent += n,
            MessageState::Unconfirmed => status.waiting += n,
            MessageState::Error => status.failed += n,
            MessageState::Received => {}
        }
    }
    status.withheld = conn.query_value(
        "SELECT count(*) FROM messages
         WHERE broadcast_id = ?1 AND state = ?2 AND last_error = ?3",
        params![id, Text(MessageState::Error), messages::WITHHELD_OPTED_OUT],
    )?;
    status.failed -= status.withheld.min(status.failed);
    let batches = batches::counts(conn, id)?;
    if batches.iter().any(|n| *n > 0) {
        status.batches = Some(batches);
    }
    if status.queued_at.is_none() {
        status.queuing_failed = conn
            .query_opt(
                "SELECT last_error FROM jobs
                 WHERE kind = ?1 AND state = 'failed' AND payload = ?2
                 ORDER BY id DESC LIMIT 1",
                params![
                    Text(JobKind::Broadcast),
                    fan_out_job(id).payload.to_string()
                ],
                |r| r.get::<_, Option<String>>(0),
            )?
            .map(|reason| reason.unwrap_or_else(|| "no reason recorded".into()));
    }
    Ok(Some(status))
}
