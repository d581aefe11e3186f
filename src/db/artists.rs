//! Artists and their API keys.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::ts;
use crate::domain::api_key::{ApiKey, KeyHash};
use crate::domain::number_state::ArtistId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artist {
    pub id: ArtistId,
    pub name: String,
}

/// Creates an artist with its first key, or returns `None` when the name is taken.
pub fn create(
    tx: &Connection,
    name: &str,
    address: Option<&str>,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Artist>> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO artists (name, address, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![name, address, ts(now)])?;
    if inserted == 0 {
        return Ok(None);
    }
    let artist = Artist {
        id: tx.last_insert_rowid(),
        name: name.to_owned(),
    };
    insert_key(tx, artist.id, key, now)?;
    Ok(Some(artist))
}

/// Adds a key to the named artist; `None` when there is no such artist.
pub fn add_key(
    conn: &Connection,
    artist_name: &str,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Artist>> {
    let Some(artist) = find_by_name(conn, artist_name)? else {
        return Ok(None);
    };
    insert_key(conn, artist.id, key, now)?;
    Ok(Some(artist))
}

fn insert_key(
    conn: &Connection,
    artist: ArtistId,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (artist_id, prefix, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        artist,
        key.display_prefix(),
        key.hash().to_hex(),
        ts(now)
    ])?;
    Ok(())
}

pub fn find_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<Artist>> {
    conn.prepare_cached("SELECT id, name FROM artists WHERE name = ?1")?
        .query_row([name], |r| {
            Ok(Artist {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })
        .optional()
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
}

/// Every artist, oldest first.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Listed>> {
    let mut stmt = conn.prepare(
        "SELECT a.id, a.name, a.address, a.created_at,
           (SELECT count(*) FROM api_keys k WHERE k.artist_id = a.id AND k.revoked_at IS NULL),
           (SELECT count(*) FROM phone_numbers p WHERE p.owner_id = a.id AND p.state = 'verified')
         FROM artists a ORDER BY a.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Listed {
            id: r.get(0)?,
            name: r.get(1)?,
            address: r.get(2)?,
            created_at: r.get(3)?,
            live_keys: r.get(4)?,
            verified_numbers: r.get(5)?,
        })
    })?;
    rows.collect()
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
pub fn list_keys(conn: &Connection, artist: Option<&str>) -> rusqlite::Result<Vec<ListedKey>> {
    let mut stmt = conn.prepare(
        "SELECT k.prefix, a.name, k.created_at, k.revoked_at
         FROM api_keys k JOIN artists a ON a.id = k.artist_id
         WHERE ?1 IS NULL OR a.name = ?1 ORDER BY k.id",
    )?;
    let rows = stmt.query_map([artist], |r| {
        Ok(ListedKey {
            prefix: r.get(0)?,
            artist: r.get(1)?,
            created_at: r.get(2)?,
            revoked_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

pub fn name_of(conn: &Connection, id: ArtistId) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT name FROM artists WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

/// The live keys whose shown prefix is `prefix`.
pub fn live_keys_matching(conn: &Connection, prefix: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT prefix FROM api_keys WHERE revoked_at IS NULL AND prefix = ?1")?;
    let rows = stmt.query_map([prefix], |r| r.get(0))?;
    rows.collect()
}

/// Revokes the live keys whose shown prefix is `prefix`.
pub fn revoke(conn: &Connection, prefix: &str, now: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE api_keys SET revoked_at = ?2 WHERE revoked_at IS NULL AND prefix = ?1",
    )?
    .execute(params![prefix, ts(now)])
}

/// Revokes one key, named in full. Returns whether a live key was revoked.
pub fn revoke_key(conn: &Connection, key: &ApiKey, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let revoked = conn
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = ?2 WHERE revoked_at IS NULL AND hash = ?1",
        )?
        .execute(params![key.hash().to_hex(), ts(now)])?;
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
pub fn authenticate(conn: &Connection, key: &ApiKey) -> rusqlite::Result<KeyCheck> {
    let presented = key.hash();
    let found = conn
        .query_row(
            "SELECT a.id, a.name, k.hash, k.revoked_at IS NOT NULL
             FROM api_keys k JOIN artists a ON a.id = k.artist_id
             WHERE k.hash = ?1",
            [presented.to_hex()],
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
        )
        .optional()?;
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
