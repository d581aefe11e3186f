//! Inbound and outbound messages; each queued outbound text has a send_text job.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::jobs::{self, NewJob};
use super::sql::ToParam;
use super::{params, parse_ts, ts, Conn, DbError, Row, Text};
use crate::domain::ids::{ArtistId, BroadcastId, MessageId};
use crate::domain::moment::MediaItem;
use crate::domain::number_state::{RecentReplies, ReplyKind};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::segments::{Encoding, Segments};
use crate::domain::{Direction, JobKind, MessageState, TextEnum};
use crate::providers::StatusReport;

/// An inbound message about to be recorded.
pub struct NewInbound<'a> {
    /// The artist whose conversation it is in, if any.
    pub artist: Option<ArtistId>,
    pub from: &'a str,
    pub to: &'a str,
    pub body: &'a str,
    pub subject: Option<&'a str>,
    pub media: &'a [MediaItem],
    pub provider: &'a str,
    pub provider_message_id: &'a str,
}

/// Records an inbound message; `None` when this provider message id was seen before.
pub fn insert_inbound(
    conn: &Conn,
    m: &NewInbound,
    now: DateTime<Utc>,
) -> Result<Option<MessageId>, DbError> {
    let media =
        serde_json::to_string(m.media).map_err(|e| DbError::Encode(format!("media: {e}")))?;
    conn.query_opt(
        "INSERT INTO messages (direction, artist_id, phone, service_number, body, subject,
           media, provider, provider_message_id, state, created_at, updated_at)
         VALUES (?10, ?11, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?1, ?9, ?9)
         ON CONFLICT DO NOTHING
         RETURNING id",
        params![
            Text(MessageState::Received),
            m.from,
            m.to,
            m.body,
            m.subject,
            media,
            m.provider,
            m.provider_message_id,
            ts(now),
            Text(Direction::Inbound),
            m.artist
        ],
        |r| r.get(0),
    )
}

/// Notes why a message could not be acted on.
pub fn note_failure(
    conn: &Conn,
    id: MessageId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE messages SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, reason, ts(now)],
    )?;
    Ok(())
}

/// An automatic text about to be queued.
pub struct NewOutbound<'a> {
    pub artist: Option<ArtistId>,
    pub to: &'a str,
    /// Our number to send from; `None` for the provider's configured sender.
    pub from: Option<&'a str>,
    pub body: &'a str,
    pub provider: &'a str,
    pub purpose: ReplyKind,
}

/// Queues an outbound text with the job that sends it, due now. Texts to one number go out
/// in the order they were queued (broadcast texts aside: they are in no queue, so one not due
/// yet never holds back a number's replies).
pub fn queue_outbound(
    conn: &Conn,
    m: &NewOutbound,
    now: DateTime<Utc>,
) -> Result<MessageId, DbError> {
    insert_outbound(conn, m, None, now, now)
}

/// Queues one text of broadcast `broadcast` (its purpose `Broadcast`), its job due at `due`.
pub fn queue_broadcast_text(
    conn: &Conn,
    m: &NewOutbound,
    broadcast: BroadcastId,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<MessageId, DbError> {
    insert_outbound(conn, m, Some(broadcast), due, now)
}

/// Records one text of broadcast `broadcast` (its purpose `Broadcast`) with no send job of
/// its own: the batch it is one of is sent in one call by the batch's job.
pub fn record_batched_text(
    conn: &Conn,
    m: &NewOutbound,
    broadcast: BroadcastId,
    now: DateTime<Utc>,
) -> Result<MessageId, DbError> {
    insert_outbound_row(conn, m, Some(broadcast), now)
}

fn insert_outbound(
    conn: &Conn,
    m: &NewOutbound,
    broadcast: Option<BroadcastId>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<MessageId, DbError> {
    let id = insert_outbound_row(conn, m, broadcast, now)?;
    jobs::enqueue_due(
        conn,
        &NewJob {
            kind: JobKind::SendText,
            payload: serde_json::json!({ "message_id": id }),
            // A broadcast text may be due minutes ahead (spread at the send rate): it must
            // not hold back the number's replies, codes and opt-out confirmation, so it is in
            // no queue. The opt-out check at send time still withholds it.
            queue: broadcast.is_none().then_some(m.to),
        },
        due,
        now,
    )?;
    Ok(id)
}

fn insert_outbound_row(
    conn: &Conn,
    m: &NewOutbound,
    broadcast: Option<BroadcastId>,
    now: DateTime<Utc>,
) -> Result<MessageId, DbError> {
    let segments = Segments::of(m.body);
    let id: MessageId = conn.query_value(
        "INSERT INTO messages (direction, artist_id, phone, service_number, body, provider,
           state, purpose, broadcast_id, encoding, segments, created_at, updated_at)
         VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?9, ?6, ?12, ?10, ?11, ?7, ?7)
         RETURNING id",
        params![
            m.artist,
            m.to,
            m.from,
            m.body,
            m.provider,
            Text(m.purpose),
            ts(now),
            Text(Direction::Outbound),
            Text(MessageState::Unconfirmed),
            Text(segments.encoding),
            segments.count,
            broadcast
        ],
    )?;
    Ok(id)
}

/// Why a text was never sent to a number that opted out after it was queued: its
/// `last_error`, by which a broadcast's status tells these apart from failures.
pub const WITHHELD_OPTED_OUT: &str = "recipient opted out";

/// The reply-cap count: one pass over a number's outbound texts of the last day. The
/// uncapped purposes are written into the SQL (from their enum) so it is prepared once. A
/// broadcast is the operator's, not a reply: it never holds back the number's own replies.
/// The earlier of the two times is a CASE, not SQLite's two-argument min() (PostgreSQL's
/// least()).
static RECENT_REPLIES: LazyLock<String> = LazyLock::new(|| {
    let uncapped = [
        ReplyKind::Prompt,
        ReplyKind::Code,
        ReplyKind::OptedOut,
        ReplyKind::OptedIn,
        ReplyKind::Broadcast,
    ]
    .map(|k| format!("'{}'", k.as_str()))
    .join(", ");
    format!(
        "SELECT count(*) FILTER (WHERE purpose = ?4 AND created_at > ?2),
                count(*) FILTER (WHERE purpose = ?5 AND created_at > ?3),
                count(*) FILTER (WHERE created_at > ?3 AND purpose NOT IN ({uncapped}))
         FROM messages
         WHERE phone = ?1 AND direction = 'outbound'
           AND created_at > CASE WHEN ?2 < ?3 THEN ?2 ELSE ?3 END"
    )
});

/// How many automatic texts went to a number lately, for the reply caps.
pub fn recent_replies(
    conn: &Conn,
    phone: &PhoneNumber,
    now: DateTime<Utc>,
    welcome_interval: Duration,
) -> Result<RecentReplies, DbError> {
    conn.query_row(
        &RECENT_REPLIES,
        params![
            phone,
            ts(now - welcome_interval),
            ts(now - Duration::hours(1)),
            Text(ReplyKind::Welcome),
            Text(ReplyKind::Reminder)
        ],
        |r| {
            Ok(RecentReplies {
                recent_welcomes: r.get(0)?,
                reminders_last_hour: r.get(1)?,
                replies_last_hour: r.get(2)?,
            })
        },
    )
}

/// The purposes here are written as `messages_prompts` is, so the artist's count uses it.
fn prompt_times_sql(column: &str) -> String {
    format!(
        "SELECT created_at FROM messages
         WHERE {column} = ?1 AND direction = 'outbound' AND purpose IN ('prompt', 'code')
           AND created_at > ?2
         ORDER BY created_at"
    )
}

fn prompt_times(
    conn: &Conn,
    column: &str,
    value: &dyn ToParam,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, DbError> {
    conn.query_map(&prompt_times_sql(column), params![value, ts(since)], |r| {
        parse_ts(&r.get::<_, String>(0)?)
    })
}

/// When prompts or codes (both ask a number to verify) went to this number in the last
/// day, oldest first.
pub fn number_prompt_times(
    conn: &Conn,
    phone: &PhoneNumber,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, DbError> {
    prompt_times(conn, "phone", &phone, now - Duration::days(1))
}

/// When this artist's connects sent prompts or codes in the last hour, oldest first.
pub fn artist_prompt_times(
    conn: &Conn,
    artist: ArtistId,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, DbError> {
    prompt_times(conn, "artist_id", &artist, now - Duration::hours(1))
}

/// A message as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    #[schema(value_type = i64)]
    pub id: MessageId,
    pub direction: Direction,
    pub from: Option<String>,
    pub to: Option<String>,
    pub body: String,
    pub subject: Option<String>,
    pub media: Vec<MediaItem>,
    pub provider: String,
    pub provider_message_id: Option<String>,
    pub state: MessageState,
    pub attempts: u32,
    pub error: Option<String>,
    /// Outbound: `GSM-7` or `UCS-2`, and how many SMS segments the text takes.
    pub encoding: Option<Encoding>,
    pub segments: Option<u32>,
    pub created_at: String,
}

const VIEW_COLUMNS: &str = "id, direction, phone, service_number, body, subject, media, provider,
    provider_message_id, state, attempts, last_error, created_at, encoding, segments";

fn read_view(r: &Row) -> Result<MessageView, DbError> {
    let direction = r.get::<_, Text<Direction>>(1)?.0;
    let phone: String = r.get(2)?;
    let service: Option<String> = r.get(3)?;
    let (from, to) = match direction {
        Direction::Inbound => (Some(phone), service),
        Direction::Outbound => (service, Some(phone)),
    };
    let media: String = r.get(6)?;
    Ok(MessageView {
        id: r.get(0)?,
        direction,
        from,
        to,
        body: r.get(4)?,
        subject: r.get(5)?,
        media: serde_json::from_str(&media)
            .map_err(|e| DbError::Decode(format!("message media: {e}")))?,
        provider: r.get(7)?,
        provider_message_id: r.get(8)?,
        state: r.get::<_, Text<MessageState>>(9)?.0,
        attempts: r.get(10)?,
        error: r.get(11)?,
        created_at: r.get(12)?,
        encoding: r.get::<_, Option<Text<Encoding>>>(13)?.map(|t| t.0),
        segments: r.get(14)?,
    })
}

/// An artist's conversation, newest first.
pub fn for_artist(
    conn: &Conn,
    artist: ArtistId,
    offset: u32,
    limit: u32,
) -> Result<Vec<MessageView>, DbError> {
    conn.query_map(
        &format!(
            "SELECT {VIEW_COLUMNS} FROM messages WHERE artist_id = ?1
             ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ),
        params![artist, limit, offset],
        read_view,
    )
}

/// The last `limit` messages to and from one number, whoever's conversation they are in,
/// oldest first (the dev phone shows them).
pub fn for_phone(
    conn: &Conn,
    phone: &PhoneNumber,
    limit: u32,
) -> Result<Vec<MessageView>, DbError> {
    // PostgreSQL (before 16) wants the subquery named.
    conn.query_map(
        &format!(
            "SELECT * FROM (SELECT {VIEW_COLUMNS} FROM messages WHERE phone = ?1
             ORDER BY id DESC LIMIT ?2) AS latest ORDER BY id"
        ),
        params![phone, limit],
        read_view,
    )
}

pub fn one_for_artist(
    conn: &Conn,
    artist: ArtistId,
    id: MessageId,
) -> Result<Option<MessageView>, DbError> {
    conn.query_opt(
        &format!("SELECT {VIEW_COLUMNS} FROM messages WHERE artist_id = ?1 AND id = ?2"),
        params![artist, id],
        read_view,
    )
}

/// An outbound text, as its send_text job needs it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: MessageId,
    pub to: PhoneNumber,
    pub from: Option<String>,
    pub body: String,
    pub purpose: Option<ReplyKind>,
    pub state: MessageState,
}

/// The outbound text `id`.
pub fn outgoing(conn: &Conn, id: MessageId) -> Result<Option<Outgoing>, DbError> {
    conn.query_opt(
        "SELECT id, phone, service_number, body, purpose, state FROM messages
         WHERE id = ?1 AND direction = ?2",
        params![id, Text(Direction::Outbound)],
        |r| {
            Ok(Outgoing {
                id: r.get(0)?,
                to: r.get(1)?,
                from: r.get(2)?,
                body: r.get(3)?,
                purpose: r.get::<_, Option<Text<ReplyKind>>>(4)?.map(|t| t.0),
                state: r.get::<_, Text<MessageState>>(5)?.0,
            })
        },
    )
}

/// A provider's word that the recipient of outbound text `message_id` has opted out with the
/// carrier: the flow that applied the report opts the number out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierOptOut {
    pub phone: PhoneNumber,
    pub message_id: MessageId,
}

/// The provider accepted the text. A status report that came before this is applied now
/// (and answered when it says the recipient opted out).
pub fn mark_sent(
    tx: &Conn,
    id: MessageId,
    attempts: u32,
    provider: &str,
    provider_message_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<CarrierOptOut>, DbError> {
    let mut opted_out = None;
    if let Some(provider_id) = provider_message_id {
        lock_report(tx, provider, provider_id)?;
    }
    tx.execute(
        "UPDATE messages SET state = ?5, provider = ?2, provider_message_id = ?3,
           last_error = NULL, attempts = ?7, updated_at = ?4
         WHERE id = ?1 AND state = ?6",
        params![
            id,
            provider,
            provider_message_id,
            ts(now),
            Text(MessageState::Sent),
            Text(MessageState::Unconfirmed),
            attempts
        ],
    )?;
    if let Some(provider_id) = provider_message_id {
        let parked = tx.query_map(
            "DELETE FROM early_status_reports WHERE provider = ?1 AND provider_message_id = ?2
             RETURNING state, error, recipient_opted_out",
            params![provider, provider_id],
            |r| {
                Ok((
                    r.get::<_, Text<MessageState>>(0)?.0,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            },
        )?;
        if parked.iter().any(|(_, _, opted_out)| *opted_out) {
            let phone: PhoneNumber =
                tx.query_value("SELECT phone FROM messages WHERE id = ?1", &[id])?;
            opted_out = Some(CarrierOptOut {
                phone,
                message_id: id,
            });
        }
        if let Some((state, error, _)) = parked.into_iter().max_by_key(|(s, _, _)| s.progress()) {
            advance(tx, id, MessageState::Sent, state, error.as_deref(), now)?;
        }
    }
    Ok(opted_out)
}

/// An attempt failed and another will follow: the attempt and its reason are shown.
pub fn note_failed_attempt(
    conn: &Conn,
    id: MessageId,
    attempts: u32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    record_failure(conn, id, attempts, error, now, MessageState::Unconfirmed)
}

/// The text will never be sent.
pub fn mark_failed(
    conn: &Conn,
    id: MessageId,
    attempts: u32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    record_failure(conn, id, attempts, error, now, MessageState::Error)
}

/// Shows a failed attempt on a text not yet sent, and leaves it `left_in`.
fn record_failure(
    conn: &Conn,
    id: MessageId,
    attempts: u32,
    error: &str,
    now: DateTime<Utc>,
    left_in: MessageState,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE messages SET state = ?5, attempts = ?2, last_error = ?3, updated_at = ?4
         WHERE id = ?1 AND state = ?6",
        params![
            id,
            attempts,
            error,
            ts(now),
            Text(left_in),
            Text(MessageState::Unconfirmed)
        ],
    )?;
    Ok(())
}

/// What became of a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusApplied {
    /// The text moved forward.
    Advanced,
    /// The text was already as far along, or further.
    Stale,
    /// No sent text has this id yet: the report is kept for when the send is recorded.
    Parked,
}

/// Holds a provider message id until the write ends: recording a send under it and applying
/// a report about it run one at a time, so a report parked because its send was not yet
/// recorded is always seen by the write that records it.
fn lock_report(tx: &Conn, provider: &str, provider_message_id: &str) -> Result<(), DbError> {
    tx.lock(&format!("report:{provider}:{provider_message_id}"))
}

/// Applies a provider's status report to the outbound text it names, only ever forwards;
/// answers what became of it, and the carrier's opt-out when the report moved the text on
/// and says the recipient opted out.
pub fn apply_status(
    tx: &Conn,
    report: &StatusReport,
    now: DateTime<Utc>,
) -> Result<(StatusApplied, Option<CarrierOptOut>), DbError> {
    let mut opted_out = None;
    let (provider, provider_message_id) = (report.provider, report.provider_message_id.as_str());
    lock_report(tx, provider, provider_message_id)?;
    let (state, error) = (report.state, report.error.as_deref());
    let current = tx.query_opt(
        "SELECT id, state, phone FROM messages
         WHERE direction = ?3 AND provider = ?1 AND provider_message_id = ?2",
        params![provider, provider_message_id, Text(Direction::Outbound)],
        |r| {
            Ok((
                r.get::<_, MessageId>(0)?,
                r.get::<_, Text<MessageState>>(1)?.0,
                r.get::<_, PhoneNumber>(2)?,
            ))
        },
    )?;
    let applied = match current {
        None => {
            // Reports that never find their text (it was sent before a restore, or by
            // another system on the same account) are dropped after a week.
            tx.execute(
                "DELETE FROM early_status_reports WHERE created_at < ?1",
                &[ts(now - Duration::days(7))],
            )?;
            tx.execute(
                "INSERT INTO early_status_reports
                   (provider, provider_message_id, state, error, recipient_opted_out, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    provider,
                    provider_message_id,
                    Text(state),
                    error,
                    report.recipient_opted_out,
                    ts(now)
                ],
            )?;
            StatusApplied::Parked
        }
        Some((id, current, phone)) => {
            if advance(tx, id, current, state, error, now)? {
                // Only a report that moves the text on acts: a redelivered one must not opt
                // the number out again after it has texted START.
                if report.recipient_opted_out {
                    opted_out = Some(CarrierOptOut {
                        phone,
                        message_id: id,
                    });
                }
                StatusApplied::Advanced
            } else {
                StatusApplied::Stale
            }
        }
    };
    Ok((applied, opted_out))
}

fn advance(
    conn: &Conn,
    id: MessageId,
    current: MessageState,
    state: MessageState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    if state.progress() <= current.progress() {
        return Ok(false);
    }
    conn.execute(
        "UPDATE messages SET state = ?2, last_error = coalesce(?3, last_error),
           updated_at = ?4 WHERE id = ?1",
        params![id, Text(state), error, ts(now)],
    )?;
    Ok(true)
}

/// Whose conversation a message is in, and its two numbers.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub artist: Option<ArtistId>,
    pub phone: String,
    pub service_number: Option<String>,
}

pub fn conversation_of(conn: &Conn, id: MessageId) -> Result<Option<Conversation>, DbError> {
    conn.query_opt(
        "SELECT artist_id, phone, service_number FROM messages WHERE id = ?1",
        &[id],
        |r| {
            Ok(Conversation {
                artist: r.get(0)?,
                phone: r.get(1)?,
                service_number: r.get(2)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artists_prompts_and_codes_are_counted_by_their_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            crate::store::Store::open(&dir.path().join("t.db"), Default::default()).expect("open");
        let plan: Vec<String> = store
            .reads()
            .with(|c| {
                c.query_map(
                    &format!("EXPLAIN QUERY PLAN {}", prompt_times_sql("artist_id")),
                    params![1, "t"],
                    |r| r.get::<_, String>(3),
                )
            })
            .expect("plan");
        let plan = plan.join("\n");
        assert!(plan.contains("USING INDEX messages_prompts"), "{plan}");
    }
}
