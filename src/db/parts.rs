//! Parts of multi-part inbound messages, kept until the whole message is in.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::ts;
use crate::providers::Part;

/// What storing one part came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartStored {
    /// This part was received before.
    Duplicate,
    /// More parts are to come.
    Waiting,
    /// Every part is in: the whole text, and the provider id of its first part.
    Complete { text: String, first_id: String },
}

pub struct NewPart<'a> {
    pub provider: &'a str,
    pub provider_message_id: &'a str,
    pub phone: &'a str,
    pub part: &'a Part,
    pub body: &'a str,
}

pub fn store(conn: &Connection, p: &NewPart, now: DateTime<Utc>) -> rusqlite::Result<PartStored> {
    let inserted = conn.execute(
        "INSERT INTO message_parts
           (provider, provider_message_id, phone, reference, part, total, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT DO NOTHING",
        params![
            p.provider,
            p.provider_message_id,
            p.phone,
            p.part.reference,
            p.part.number,
            p.part.total,
            p.body,
            ts(now)
        ],
    )?;
    if inserted == 0 {
        return Ok(PartStored::Duplicate);
    }
    let mut stmt = conn.prepare(
        "SELECT body, provider_message_id FROM message_parts
         WHERE provider = ?1 AND phone = ?2 AND reference = ?3 AND total = ?4
           AND message_id IS NULL
         ORDER BY part",
    )?;
    let parts = stmt
        .query_map(
            params![p.provider, p.phone, p.part.reference, p.part.total],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if parts.len() < usize::try_from(p.part.total).unwrap_or(usize::MAX) {
        return Ok(PartStored::Waiting);
    }
    let first_id = parts.first().map(|(_, id)| id.clone()).unwrap_or_default();
    Ok(PartStored::Complete {
        text: parts.into_iter().map(|(body, _)| body).collect(),
        first_id,
    })
}

/// Marks a complete set of parts as joined into `message_id`.
pub fn mark_joined(conn: &Connection, p: &NewPart, message_id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE message_parts SET message_id = ?5
         WHERE provider = ?1 AND phone = ?2 AND reference = ?3 AND total = ?4
           AND message_id IS NULL",
        params![
            p.provider,
            p.phone,
            p.part.reference,
            p.part.total,
            message_id
        ],
    )?;
    Ok(())
}
