//! A broadcast's batches sent through a provider's bulk path (TextFlow's bulk-sms): each batch
//! is one call and one job at the provider, and each of its texts is still an outbound
//! message of its own, in its artist's conversation.

use super::jobs::{self, NewJob};
use super::messages;
use super::{params, ts, Conn, DbError, Text};
use crate::domain::ids::{BatchId, BroadcastId, MessageId};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::{BatchState, JobKind, MessageState};
use chrono::{DateTime, Utc};

/// Records a batch of broadcast `broadcast` carrying `texts` (queued already, with no send
/// job of their own) and the `send_batch` job that sends it in one call.
pub fn queue(
    tx: &Conn,
    broadcast: BroadcastId,
    texts: &[MessageId],
    now: DateTime<Utc>,
) -> Result<Option<BatchId>, DbError> {
    if texts.is_empty() {
        return Ok(None);
    }
    let id: BatchId = tx.query_value(
        "INSERT INTO broadcast_batches (broadcast_id, state, texts, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
        params![
            broadcast,
            Text(BatchState::Queued),
            i64::try_from(texts.len()).unwrap_or(i64::MAX),
            ts(now)
        ],
    )?;
    for text in texts {
        tx.execute(
            "INSERT INTO broadcast_batch_texts (message_id, batch_id) VALUES (?1, ?2)",
            params![text, id],
        )?;
    }
    jobs::enqueue(
        tx,
        &NewJob {
            kind: JobKind::SendBatch,
            payload: serde_json::json!({ "batch_id": id }),
            queue: None,
        },
        now,
    )?;
    Ok(Some(id))
}

/// One text of a batch not yet sent, and whether its number has opted out since it was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchText {
    pub id: MessageId,
    pub to: PhoneNumber,
    pub opted_out: bool,
}

/// A batch as its job finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub state: BatchState,
    pub body: String,
    /// Its texts still `unconfirmed`, in order of message.
    pub texts: Vec<BatchText>,
}

/// Batch `id` with its texts still to send; `None` when there is no such batch.
pub fn outgoing(conn: &Conn, id: BatchId) -> Result<Option<Outgoing>, DbError> {
    let head = conn.query_opt(
        "SELECT b.state, r.body FROM broadcast_batches b
         JOIN broadcasts r ON r.id = b.broadcast_id WHERE b.id = ?1",
        &[id],
        |r| Ok((r.get::<_, Text<BatchState>>(0)?.0, r.get::<_, String>(1)?)),
    )?;
    let Some((state, body)) = head else {
        return Ok(None);
    };
    let texts = conn.query_map(
        "SELECT m.id, m.phone, p.state = 'opted_out' FROM broadcast_batch_texts t
         JOIN messages m ON m.id = t.message_id
         LEFT JOIN phone_numbers p ON p.e164 = m.phone
         WHERE t.batch_id = ?1 AND m.state = ?2 ORDER BY m.id",
        params![id, Text(MessageState::Unconfirmed)],
        |r| {
            Ok(BatchText {
                id: r.get(0)?,
                to: r.get(1)?,
                opted_out: r.get::<_, Option<bool>>(2)?.unwrap_or(false),
            })
        },
    )?;
    Ok(Some(Outgoing { state, body, texts }))
}

/// The provider took batch `id` for `sent_to` numbers: it now sends them at its own pace.
/// Only a queued batch moves, so a record written twice changes nothing the second time.
pub fn mark_running(
    tx: &Conn,
    id: BatchId,
    sent_to: usize,
    attempts: u32,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let moved = tx.execute(
        "UPDATE broadcast_batches SET state = ?2, sent_to = ?3, attempts = ?4, last_error = NULL,
           sent_at = ?5, updated_at = ?5
         WHERE id = ?1 AND state = ?6",
        params![
            id,
            Text(BatchState::Running),
            i64::try_from(sent_to).unwrap_or(i64::MAX),
            attempts,
            ts(now),
            Text(BatchState::Queued)
        ],
    )?;
    Ok(moved == 1)
}

/// Every number was left out (each opted out before the batch went): nothing to send.
pub fn mark_empty(tx: &Conn, id: BatchId, now: DateTime<Utc>) -> Result<(), DbError> {
    tx.execute(
        "UPDATE broadcast_batches SET state = ?2, sent_to = 0, finished_at = ?3, updated_at = ?3
         WHERE id = ?1 AND state = ?4",
        params![
            id,
            Text(BatchState::Finished),
            ts(now),
            Text(BatchState::Queued)
        ],
    )?;
    Ok(())
}

/// A call failed and another will follow: the attempt and its reason are shown on the batch
/// and on each of its texts.
pub fn note_failed_attempt(
    tx: &Conn,
    id: BatchId,
    attempts: u32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE broadcast_batches SET attempts = ?2, last_error = ?3, updated_at = ?4
         WHERE id = ?1 AND state = ?5",
        params![id, attempts, error, ts(now), Text(BatchState::Queued)],
    )?;
    for text in unsent(tx, id)? {
        messages::note_failed_attempt(tx, text, attempts, error, now)?;
    }
    Ok(())
}

/// The batch will never be sent: it and every text of it not yet sent fail with `error`.
pub fn mark_failed(
    tx: &Conn,
    id: BatchId,
    attempts: u32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE broadcast_batches SET state = ?2, attempts = ?3, last_error = ?4, updated_at = ?5
         WHERE id = ?1 AND state = ?6",
        params![
            id,
            Text(BatchState::Failed),
            attempts,
            error,
            ts(now),
            Text(BatchState::Queued)
        ],
    )?;
    for text in unsent(tx, id)? {
        messages::mark_failed(tx, text, attempts, error, now)?;
    }
    Ok(())
}

fn unsent(conn: &Conn, id: BatchId) -> Result<Vec<MessageId>, DbError> {
    conn.query_map(
        "SELECT m.id FROM broadcast_batch_texts t JOIN messages m ON m.id = t.message_id
         WHERE t.batch_id = ?1 AND m.state = ?2 ORDER BY m.id",
        params![id, Text(MessageState::Unconfirmed)],
        |r| r.get(0),
    )
}

/// Whether any batch is with the provider, on any broadcast.
pub fn any_running(conn: &Conn) -> Result<bool, DbError> {
    conn.query_value(
        "SELECT count(*) > 0 FROM broadcast_batches WHERE state = ?1",
        params![Text(BatchState::Running)],
    )
}

/// The provider says nothing of its bulk jobs waits any more: every running batch is
/// finished, and its texts still unconfirmed are sent (as `provider`). Answers the batches
/// finished.
pub fn finish_running(tx: &Conn, provider: &str, now: DateTime<Utc>) -> Result<usize, DbError> {
    let running: Vec<(BatchId, u32)> = tx.query_map(
        "SELECT id, attempts FROM broadcast_batches WHERE state = ?1 ORDER BY id",
        params![Text(BatchState::Running)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (id, attempts) in &running {
        for text in unsent(tx, *id)? {
            messages::mark_sent(tx, text, *attempts, provider, None, now)?;
        }
        tx.execute(
            "UPDATE broadcast_batches SET state = ?2, finished_at = ?3, updated_at = ?3
             WHERE id = ?1 AND state = ?4",
            params![
                id,
                Text(BatchState::Finished),
                ts(now),
                Text(BatchState::Running)
            ],
        )?;
    }
    Ok(running.len())
}

/// How many of broadcast `id`'s batches are in each state: queued, running, finished, failed.
pub fn counts(conn: &Conn, id: BroadcastId) -> Result<[i64; 4], DbError> {
    let rows = conn.query_map(
        "SELECT state, count(*) FROM broadcast_batches WHERE broadcast_id = ?1 GROUP BY state",
        &[id],
        |r| Ok((r.get::<_, Text<BatchState>>(0)?.0, r.get::<_, i64>(1)?)),
    )?;
    let mut counts = [0; 4];
    for (state, n) in rows {
        let at = match state {
            BatchState::Queued => 0,
            BatchState::Running => 1,
            BatchState::Finished => 2,
            BatchState::Failed => 3,
        };
        counts[at] += n;
    }
    Ok(counts)
}
