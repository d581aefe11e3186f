//! Artists and their API keys.

use super::{params, ts, Conn, DbError};
use crate::domain::api_key::{ApiKey, KeyHash};
use crate::domain::number_state::ArtistId;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artist {
    pub id: ArtistId,
    pub name: String,
}

/// Creates an artist with its first key, or returns `None` when the name is taken.
pub fn create(
    tx: &Conn,
    name: &str,
    address: Option<&str>,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> Result<Option<Artist>, DbError> {
    let id: Option<ArtistId> = tx.query_opt(
        "INSERT INTO artists (name, address, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO NOTHING RETURNING id",
        params![name, address, ts(now)],
        |r| r.get(0),
    )?;
    let Some(id) = id else {
        return Ok(None);
    };
    let artist = Artist {
        id,
        name: name.to_owned(),
    };
    insert_key(tx, artist.id, key, now)?;
    Ok(Some(artist))
}

/// Adds a key to the named artist; `None` when there is no such artist.
pub fn add_key(
    conn: &Conn,
    artist_name: &str,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> Result<Option<Artist>, DbError> {
    let Some(artist) = find_by_name(conn, artist_name)? else {
        return Ok(None);
    };
    insert_key(conn, artist.id, key, now)?;
    Ok(Some(artist))
}

fn insert_key(
    conn: &Conn,
    artist: ArtistId,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO api_keys (artist_id, prefix, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![artist, key.display_prefix(), key.hash().to_hex(), ts(now)],
    )?;
    Ok(())
}

pub fn find_by_name(conn: &Conn, name: &str) -> Result<Option<Artist>, DbError> {
    conn.query_opt(
        "SELECT id, name FROM artists WHERE name = ?1",
        &[name],
        |r| {
            Ok(Artist {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        },
    )
}

/// Keeps an artist's sealed In Process key (a refusal of the one before is forgotten), and
/// its address and the collection its Moments go to when they are given (those kept before
/// stay otherwise).
pub fn set_inprocess(
    conn: &Conn,
    artist: ArtistId,
    sealed_key: &[u8],
    address: Option<&str>,
    collection: Option<&str>,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE artists SET inprocess_key = ?2, address = COALESCE(?3, address),
           collection = COALESCE(?4, collection), inprocess_refused_at = NULL
         WHERE id = ?1",
        params![artist, sealed_key, address, collection],
    )?;
    Ok(())
}

/// An artist as `momentline artists list` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: ArtistId,
    pub name: String,
    pub address: Option<String>,
    pub created_at: String,
    pub live_keys: i64,
    pub verified_numbers: i64,
    /// Whether an In Process key is kept (never the key).
    pub inprocess_key: bool,
    pub collection: Option<String>,
}

/// Every artist, oldest first.
pub fn list(conn: &Conn) -> Result<Vec<Listed>, DbError> {
    conn.query_map(
        "SELECT a.id, a.name, a.address, a.created_at,
           (SELECT count(*) FROM api_keys k WHERE k.artist_id = a.id AND k.revoked_at IS NULL),
           (SELECT count(*) FROM phone_numbers p WHERE p.owner_id = a.id AND p.state = 'verified'),
           a.inprocess_key IS NOT NULL, a.collection
         FROM artists a ORDER BY a.id",
        params![],
        |r| {
            Ok(Listed {
                id: r.get(0)?,
                name: r.get(1)?,
                address: r.get(2)?,
                created_at: r.get(3)?,
                live_keys: r.get(4)?,
                verified_numbers: r.get(5)?,
                inprocess_key: r.get(6)?,
                collection: r.get(7)?,
            })
        },
    )
}

/// A key as `momentline keys list` shows it: never the key, only its shown prefix.
#[derive(Debug, Clone)]
pub struct ListedKey {
    pub prefix: String,
    pub artist: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Every key (of one artist, when named), oldest first.
pub fn list_keys(conn: &Conn, artist: Option<&str>) -> Result<Vec<ListedKey>, DbError> {
    conn.query_map(
        "SELECT k.prefix, a.name, k.created_at, k.revoked_at
         FROM api_keys k JOIN artists a ON a.id = k.artist_id
         WHERE CAST(?1 AS TEXT) IS NULL OR a.name = ?1 ORDER BY k.id",
        &[artist],
        |r| {
            Ok(ListedKey {
                prefix: r.get(0)?,
                artist: r.get(1)?,
                created_at: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        },
    )
}

pub fn name_of(conn: &Conn, id: ArtistId) -> Result<Option<String>, DbError> {
    conn.query_opt("SELECT name FROM artists WHERE id = ?1", &[id], |r| {
        r.get(0)
    })
}

/// The live keys whose shown prefix is `prefix`.
pub fn live_keys_matching(conn: &Conn, prefix: &str) -> Result<Vec<String>, DbError> {
    conn.query_map(
        "SELECT prefix FROM api_keys WHERE revoked_at IS NULL AND prefix = ?1",
        &[prefix],
        |r| r.get(0),
    )
}

/// When the newest revoked key whose shown prefix is `prefix` was revoked, if one was.
pub fn revoked_at(conn: &Conn, prefix: &str) -> Result<Option<String>, DbError> {
    let at: Option<Option<String>> = conn.query_opt(
        "SELECT max(revoked_at) FROM api_keys WHERE prefix = ?1 AND revoked_at IS NOT NULL",
        &[prefix],
        |r| r.get(0),
    )?;
    Ok(at.flatten())
}

/// Revokes the live keys whose shown prefix is `prefix`.
pub fn revoke(conn: &Conn, prefix: &str, now: DateTime<Utc>) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE revoked_at IS NULL AND prefix = ?1",
        params![prefix, ts(now)],
    )
}

/// Revokes one key, named in full. Returns whether a live key was revoked.
pub fn revoke_key(conn: &Conn, key: &ApiKey, now: DateTime<Utc>) -> Result<bool, DbError> {
    let revoked = conn.execute(
        "UPDATE api_keys SET revoked_at = ?2 WHERE revoked_at IS NULL AND hash = ?1",
        params![key.hash().to_hex(), ts(now)],
    )?;
    Ok(revoked == 1)
}

/// What a presented key is: an artist's live key, a key revoked since, or no key at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    Live(Artist),
    Revoked,
    Unknown,
}

/// The artist a key belongs to, and whether it is still live. Revoked keys are found too, so
/// a client can be told its key was revoked rather than that it never existed.
pub fn authenticate(conn: &Conn, key: &ApiKey) -> Result<KeyCheck, DbError> {
    let presented = key.hash();
    let found = conn.query_opt(
        "SELECT a.id, a.name, k.hash, k.revoked_at IS NOT NULL
         FROM api_keys k JOIN artists a ON a.id = k.artist_id
         WHERE k.hash = ?1",
        &[presented.to_hex()],
        |r| {
            Ok((
                Artist {
                    id: r.get(0)?,
                    name: r.get(1)?,
                },
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        },
    )?;
    // The lookup is by hash; the final word is a constant-time comparison of the hashes.
    Ok(match found {
        Some((artist, stored, revoked))
            if KeyHash::from_hex(&stored).is_some_and(|stored| stored.matches(&presented)) =>
        {
            if revoked {
                KeyCheck::Revoked
            } else {
                KeyCheck::Live(artist)
            }
        }
        _ => KeyCheck::Unknown,
    })
}
