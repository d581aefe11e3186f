//! What one text from a number set going, read as `momentline dev text` follows it: the
//! answers to the number, the Moments the text made or joined, and their jobs.

use chrono::{DateTime, Utc};

use super::{params, parse_ts, ts, Conn, DbError, Text};
use crate::domain::ids::{MessageId, MomentId};
use crate::domain::{JobKind, JobState, MediaState, MessageState, MomentState};

/// The inbound text a provider delivered as `provider_message_id`, once it is recorded.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub id: MessageId,
    pub at: DateTime<Utc>,
}

/// The inbound text `provider_message_id` of `provider`, if it is recorded.
pub fn received(
    conn: &Conn,
    provider: &str,
    provider_message_id: &str,
) -> Result<Option<Received>, DbError> {
    let row: Option<(MessageId, String)> = conn.query_opt(
        "SELECT id, created_at FROM messages
         WHERE direction = 'inbound' AND provider = ?1 AND provider_message_id = ?2",
        params![provider, provider_message_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    row.map(|(id, at)| {
        Ok(Received {
            id,
            at: parse_ts(&at)?,
        })
    })
    .transpose()
}

/// Everything a text has set going, as it stands.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// momentline's texts to the number since the text, oldest first.
    pub answers: Vec<Answer>,
    /// The Moments the text made, and those it may have joined (the number's, from texts
    /// recorded at most a merge window before it).
    pub moments: Vec<MomentProgress>,
    /// The jobs still to run that send the number's texts, and every job of those Moments
    /// that keeps their media or dispatches them (given up ones included).
    pub jobs: Vec<JobProgress>,
}

/// An answer to the number.
#[derive(Debug, Clone)]
pub struct Answer {
    pub id: MessageId,
    pub body: String,
    pub state: MessageState,
    pub error: Option<String>,
}

/// A Moment the text made or joined.
#[derive(Debug, Clone)]
pub struct MomentProgress {
    pub id: MomentId,
    /// The text that asked for it.
    pub message: MessageId,
    pub state: MomentState,
    /// Until when it waits for the other half of a split MMS.
    pub merge_until: Option<DateTime<Utc>>,
    pub media: Option<MediaState>,
    pub media_error: Option<String>,
}

/// A job on a text's way.
#[derive(Debug, Clone)]
pub struct JobProgress {
    /// The Moment it is about; none for a text's.
    pub moment: Option<MomentId>,
    pub kind: JobKind,
    pub state: JobState,
    pub run_after: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// What the text `received` from `phone` has set going. `window` is how long before it a
/// Moment it may have joined was recorded.
pub fn of_text(
    conn: &Conn,
    phone: &str,
    received: Received,
    window: chrono::Duration,
) -> Result<Progress, DbError> {
    let mut progress = Progress {
        answers: answers(conn, phone, received.id)?,
        moments: moments(conn, phone, received, window)?,
        jobs: text_jobs(conn, phone)?,
    };
    for moment in &progress.moments {
        progress.jobs.extend(moment_jobs(conn, moment.id)?);
    }
    Ok(progress)
}

fn answers(conn: &Conn, phone: &str, after: MessageId) -> Result<Vec<Answer>, DbError> {
    conn.query_map(
        "SELECT id, body, state, last_error FROM messages
         WHERE direction = 'outbound' AND phone = ?1 AND id > ?2 ORDER BY id",
        params![phone, after],
        |r| {
            Ok(Answer {
                id: r.get(0)?,
                body: r.get(1)?,
                state: r.get::<_, Text<MessageState>>(2)?.0,
                error: r.get(3)?,
            })
        },
    )
}

fn moments(
    conn: &Conn,
    phone: &str,
    received: Received,
    window: chrono::Duration,
) -> Result<Vec<MomentProgress>, DbError> {
    conn.query_map(
        "SELECT m.id, m.message_id, m.state, m.merge_until, m.media_state, m.media_error
         FROM messages g JOIN moments m ON m.message_id = g.id
         WHERE g.phone = ?1 AND g.direction = 'inbound' AND g.created_at >= ?2
           AND g.id <= ?3 AND m.deleted_at IS NULL
         ORDER BY m.id",
        params![phone, ts(received.at - window), received.id],
        |r| {
            Ok(MomentProgress {
                id: r.get(0)?,
                message: r.get(1)?,
                state: r.get::<_, Text<MomentState>>(2)?.0,
                merge_until: super::opt_ts(r.get(3)?)?,
                media: r.get::<_, Option<Text<MediaState>>>(4)?.map(|m| m.0),
                media_error: r.get(5)?,
            })
        },
    )
}

fn job(r: &super::Row) -> Result<JobProgress, DbError> {
    Ok(JobProgress {
        kind: r.get::<_, Text<JobKind>>(0)?.0,
        state: r.get::<_, Text<JobState>>(1)?.0,
        run_after: parse_ts(&r.get::<_, String>(2)?)?,
        last_error: r.get(3)?,
        moment: r.get(4)?,
    })
}

/// The number's texts still to be sent (one queue per number).
fn text_jobs(conn: &Conn, phone: &str) -> Result<Vec<JobProgress>, DbError> {
    conn.query_map(
        "SELECT kind, state, run_after, last_error, moment_id FROM jobs
         WHERE queue = ?1 AND kind = 'send_text' AND state IN ('queued', 'running')
         ORDER BY id",
        &[phone],
        job,
    )
}

/// A Moment's jobs that keep its media or dispatch it.
fn moment_jobs(conn: &Conn, moment: MomentId) -> Result<Vec<JobProgress>, DbError> {
    conn.query_map(
        "SELECT kind, state, run_after, last_error, moment_id FROM jobs
         WHERE moment_id = ?1 AND kind IN ('keep_media', 'dispatch_moment')
         ORDER BY id",
        &[moment],
        job,
    )
}
