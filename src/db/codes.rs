//! Verification codes, one per number and artist: a salted hash (never the code), its
//! expiry and the wrong tries spent on it.

use super::{opt_ts, params, ts, Conn, DbError, Row};
use crate::domain::code::{code_state, CodeState};
use crate::domain::ids::{ArtistId, MessageId};
use crate::domain::phone_number::PhoneNumber;
use chrono::{DateTime, Utc};

/// A code as stored.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub artist: ArtistId,
    /// The text that carries it; a new request makes a new text.
    pub message_id: MessageId,
    /// `None` when the provider holds the code (or it has not been made yet).
    pub salt: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub tries: u32,
    /// Its text failed for good: nobody has the code.
    pub text_failed: bool,
}

impl StoredCode {
    pub fn state(&self, now: DateTime<Utc>) -> CodeState {
        code_state(self.expires_at, self.tries, now)
    }
}

/// Starts a new code for `artist` on `e164`, carried by text `message_id`; any earlier code
/// of theirs for the number is gone.
pub fn replace(
    conn: &Conn,
    e164: &PhoneNumber,
    artist: ArtistId,
    message_id: MessageId,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO verification_codes (e164, artist_id, message_id, created_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (e164, artist_id) DO UPDATE SET message_id = excluded.message_id,
           salt = NULL, code_hash = NULL, expires_at = NULL, tries = 0,
           created_at = excluded.created_at",
        params![e164, artist, message_id, ts(now)],
    )?;
    Ok(())
}

/// The code carried by text `message_id`, if no newer request has replaced it.
pub fn carried_by(conn: &Conn, message_id: MessageId) -> Result<Option<StoredCode>, DbError> {
    conn.query_opt(
        "SELECT c.artist_id, c.message_id, c.salt, c.code_hash, c.expires_at, c.tries,
                m.state = 'error'
         FROM verification_codes c JOIN messages m ON m.id = c.message_id
         WHERE c.message_id = ?1",
        &[message_id],
        read,
    )
}

/// The artist's code for `e164`.
pub fn find(
    conn: &Conn,
    e164: &PhoneNumber,
    artist: ArtistId,
) -> Result<Option<StoredCode>, DbError> {
    conn.query_opt(
        "SELECT c.artist_id, c.message_id, c.salt, c.code_hash, c.expires_at, c.tries,
                m.state = 'error'
         FROM verification_codes c JOIN messages m ON m.id = c.message_id
         WHERE c.e164 = ?1 AND c.artist_id = ?2",
        params![e164, artist],
        read,
    )
}

fn read(r: &Row) -> Result<StoredCode, DbError> {
    Ok(StoredCode {
        artist: r.get(0)?,
        message_id: r.get(1)?,
        salt: r.get(2)?,
        hash: r.get(3)?,
        expires_at: opt_ts(r.get(4)?)?,
        tries: r.get(5)?,
        text_failed: r.get(6)?,
    })
}

/// Records the code text `message_id` is about to carry (its hash, or none when the
/// provider makes the code) and when it expires. False when a newer request replaced it.
pub fn arm(
    conn: &Conn,
    message_id: MessageId,
    salted_hash: Option<(&[u8], &[u8])>,
    expires_at: DateTime<Utc>,
) -> Result<bool, DbError> {
    let (salt, hash) = salted_hash.unzip();
    let armed = conn.execute(
        "UPDATE verification_codes SET salt = ?2, code_hash = ?3, expires_at = ?4
         WHERE message_id = ?1",
        params![message_id, salt, hash, ts(expires_at)],
    )?;
    Ok(armed == 1)
}

/// Spends one try on the code text `message_id` carries (`by` −1 gives one back).
pub fn spend_try(conn: &Conn, message_id: MessageId, by: i64) -> Result<(), DbError> {
    // A CASE rather than SQLite's two-argument max(), which PostgreSQL spells greatest().
    conn.execute(
        "UPDATE verification_codes SET tries = CASE WHEN tries + ?2 < 0 THEN 0 ELSE tries + ?2 END
         WHERE message_id = ?1",
        params![message_id, by],
    )?;
    Ok(())
}

/// Forgets the artist's code for `e164` (used, or the artist let the number go).
pub fn forget(conn: &Conn, e164: &PhoneNumber, artist: ArtistId) -> Result<(), DbError> {
    conn.execute(
        "DELETE FROM verification_codes WHERE e164 = ?1 AND artist_id = ?2",
        params![e164, artist],
    )?;
    Ok(())
}
