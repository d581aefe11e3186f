//! What momentline keeps of Moments posted on In Process (`inprocess_moments`), and of each
//! artist's standing there (its address, sealed key, collection, and whether its key was
//! refused).

use chrono::{DateTime, Utc};

use super::{params, ts, Conn, DbError};
use crate::domain::ids::{ArtistId, MomentId};

/// An artist as In Process knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artist {
    pub address: Option<String>,
    /// Its API key, sealed with `MOMENTLINE_SECRET_KEY`.
    pub sealed_key: Option<Vec<u8>>,
    pub collection: Option<String>,
    /// When In Process refused its key; its Moments wait until a new one is registered.
    pub refused_at: Option<String>,
}

pub fn artist(conn: &Conn, id: ArtistId) -> Result<Option<Artist>, DbError> {
    conn.query_opt(
        "SELECT address, inprocess_key, collection, inprocess_refused_at FROM artists
         WHERE id = ?1",
        &[id],
        |r| {
            Ok(Artist {
                address: r.get(0)?,
                sealed_key: r.get(1)?,
                collection: r.get(2)?,
                refused_at: r.get(3)?,
            })
        },
    )
}

/// Keeps the collection the artist's first Moment made; one kept before stays.
pub fn set_collection(conn: &Conn, id: ArtistId, collection: &str) -> Result<(), DbError> {
    conn.execute(
        "UPDATE artists SET collection = ?2 WHERE id = ?1 AND collection IS NULL",
        params![id, collection],
    )?;
    Ok(())
}

/// Marks the artist's key refused: the sealed key that was (none: the artist has no key, or
/// no address to use it with), so a refusal of a key replaced since changes nothing. `true`
/// the first time since a key was last registered.
pub fn refuse_key(
    conn: &Conn,
    id: ArtistId,
    sealed_key: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let changed = match sealed_key {
        Some(key) => conn.execute(
            "UPDATE artists SET inprocess_refused_at = ?2
             WHERE id = ?1 AND inprocess_refused_at IS NULL AND inprocess_key = ?3",
            params![id, ts(now), key],
        )?,
        None => conn.execute(
            "UPDATE artists SET inprocess_refused_at = ?2
             WHERE id = ?1 AND inprocess_refused_at IS NULL
               AND (inprocess_key IS NULL OR address IS NULL)",
            params![id, ts(now)],
        )?,
    };
    Ok(changed > 0)
}

/// A Moment as it stands on In Process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moment {
    pub media_uri: Option<String>,
    pub metadata_uri: Option<String>,
    /// When a create that may have reached In Process was first sent.
    pub sent_at: Option<String>,
    /// When the last create that may have reached In Process was sent (none: none may have
    /// since the last was looked for), and how many were sent.
    pub last_sent_at: Option<String>,
    pub sends: u32,
    /// When the last create was looked for on In Process and not found.
    pub looked_at: Option<String>,
    /// What it became: its collection, its token, its chain.
    pub token: Option<Token>,
    pub hide_sent_at: Option<String>,
    pub hidden_at: Option<String>,
}

/// A Moment on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub contract: String,
    pub token_id: String,
    pub chain_id: Option<u64>,
}

/// What is kept of Moment `id` on In Process (nothing yet: the default).
pub fn moment(conn: &Conn, id: MomentId) -> Result<Moment, DbError> {
    let found = conn.query_opt(
        "SELECT media_uri, metadata_uri, sent_at, contract, token_id, chain_id, hide_sent_at,
           hidden_at, last_sent_at, sends, looked_at
         FROM inprocess_moments WHERE moment_id = ?1",
        &[id],
        |r| {
            let contract: Option<String> = r.get(3)?;
            let token_id: Option<String> = r.get(4)?;
            let chain_id: Option<i64> = r.get(5)?;
            Ok(Moment {
                media_uri: r.get(0)?,
                metadata_uri: r.get(1)?,
                sent_at: r.get(2)?,
                token: contract.zip(token_id).map(|(contract, token_id)| Token {
                    contract,
                    token_id,
                    chain_id: chain_id.and_then(|c| u64::try_from(c).ok()),
                }),
                hide_sent_at: r.get(6)?,
                hidden_at: r.get(7)?,
                last_sent_at: r.get(8)?,
                sends: u32::try_from(r.get::<_, i64>(9)?).unwrap_or(u32::MAX),
                looked_at: r.get(10)?,
            })
        },
    )?;
    Ok(found.unwrap_or_default())
}

/// Sets one of the Moment's columns, making its row if it has none. `column` is one of this
/// file's own names, never outside input.
fn set(
    conn: &Conn,
    id: MomentId,
    column: &'static str,
    value: &str,
    only_once: bool,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let keep = if only_once {
        format!("COALESCE(inprocess_moments.{column}, excluded.{column})")
    } else {
        format!("excluded.{column}")
    };
    conn.execute(
        &format!(
            "INSERT INTO inprocess_moments (moment_id, {column}, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (moment_id) DO UPDATE SET {column} = {keep},
               updated_at = excluded.updated_at"
        ),
        params![id, value, ts(now)],
    )?;
    Ok(())
}

/// Keeps the `ar://` URI of the Moment's uploaded media.
pub fn set_media_uri(
    conn: &Conn,
    id: MomentId,
    uri: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    set(conn, id, "media_uri", uri, true, now)
}

/// Keeps the `ar://` URI of the Moment's uploaded metadata.
pub fn set_metadata_uri(
    conn: &Conn,
    id: MomentId,
    uri: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    set(conn, id, "metadata_uri", uri, true, now)
}

/// Makes the Moment's row, if it has none: its metadata is served from then on.
pub fn open(conn: &Conn, id: MomentId, now: DateTime<Utc>) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO inprocess_moments (moment_id, updated_at) VALUES (?1, ?2)
         ON CONFLICT (moment_id) DO NOTHING",
        params![id, ts(now)],
    )?;
    Ok(())
}

/// Notes that a create of the Moment is about to be sent: it may have happened from now on,
/// until it is looked for.
pub fn mark_sent(conn: &Conn, id: MomentId, now: DateTime<Utc>) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO inprocess_moments (moment_id, sent_at, last_sent_at, sends, updated_at)
         VALUES (?1, ?2, ?2, 1, ?2)
         ON CONFLICT (moment_id) DO UPDATE SET
           sent_at = COALESCE(inprocess_moments.sent_at, excluded.sent_at),
           last_sent_at = excluded.last_sent_at, sends = inprocess_moments.sends + 1,
           looked_at = NULL, updated_at = excluded.updated_at",
        params![id, ts(now)],
    )?;
    Ok(())
}

/// Notes that the last create sent never reached In Process (it was refused before it was
/// read, or not sent at all): nothing needs looking for.
pub fn mark_unsent(conn: &Conn, id: MomentId, now: DateTime<Utc>) -> Result<(), DbError> {
    conn.execute(
        "UPDATE inprocess_moments SET last_sent_at = NULL, looked_at = NULL, updated_at = ?2
         WHERE moment_id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

/// Notes that the last create was looked for on In Process and not found.
pub fn mark_looked(conn: &Conn, id: MomentId, now: DateTime<Utc>) -> Result<(), DbError> {
    set(conn, id, "looked_at", &ts(now), false, now)
}

/// Notes that the Moment's hide was sent (the first time is kept).
pub fn mark_hide_sent(conn: &Conn, id: MomentId, now: DateTime<Utc>) -> Result<(), DbError> {
    set(conn, id, "hide_sent_at", &ts(now), true, now)
}

/// Notes that In Process answered the Moment's hide.
pub fn mark_hidden(conn: &Conn, id: MomentId, now: DateTime<Utc>) -> Result<(), DbError> {
    set(conn, id, "hidden_at", &ts(now), true, now)
}

/// Keeps what the Moment became on In Process.
pub fn set_token(
    conn: &Conn,
    id: MomentId,
    token: &Token,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let chain_id = token.chain_id.and_then(|c| i64::try_from(c).ok());
    conn.execute(
        "INSERT INTO inprocess_moments (moment_id, contract, token_id, chain_id, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (moment_id) DO UPDATE SET contract = excluded.contract,
           token_id = excluded.token_id, chain_id = excluded.chain_id,
           updated_at = excluded.updated_at",
        params![id, token.contract, token.token_id, chain_id, ts(now)],
    )?;
    Ok(())
}

/// The tokens momentline has recorded for the artist's Moments: a Moment found on In Process
/// that is one of these is not a lost one.
pub fn tokens_of(conn: &Conn, artist: ArtistId) -> Result<Vec<(String, String)>, DbError> {
    conn.query_map(
        "SELECT i.contract, i.token_id FROM inprocess_moments i
           JOIN moments m ON m.id = i.moment_id
         WHERE m.artist_id = ?1 AND i.contract IS NOT NULL",
        &[artist],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Notes that the Moment's hide did not reach In Process: it may be sent again.
pub fn clear_hide_sent(conn: &Conn, id: MomentId) -> Result<(), DbError> {
    conn.execute(
        "UPDATE inprocess_moments SET hide_sent_at = NULL WHERE moment_id = ?1",
        &[id],
    )?;
    Ok(())
}

/// What a Moment's metadata JSON says, for In Process to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub title: String,
    pub description: String,
    pub media_uri: Option<String>,
    pub content_type: Option<String>,
    pub link: Option<String>,
    /// A media Moment (which has no metadata until its media is uploaded).
    pub media: bool,
}

/// Moment `id`'s metadata; `None` for a Moment that is not being posted on In Process, failed,
/// or was removed.
pub fn metadata(conn: &Conn, id: MomentId) -> Result<Option<Metadata>, DbError> {
    conn.query_opt(
        "SELECT m.title, m.description, i.media_uri, m.media_content_type, m.link_url,
           m.kind = 'media'
         FROM moments m JOIN inprocess_moments i ON i.moment_id = m.id
         WHERE m.id = ?1 AND m.deleted_at IS NULL AND m.state <> 'failed'",
        &[id],
        |r| {
            Ok(Metadata {
                title: r.get(0)?,
                description: r.get(1)?,
                media_uri: r.get(2)?,
                content_type: r.get(3)?,
                link: r.get(4)?,
                media: r.get(5)?,
            })
        },
    )
}
