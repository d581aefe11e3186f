//! SQLite storage: the pool, the schema, and the SQL of each table's module.

pub mod artists;
pub mod messages;
pub mod moments;
pub mod numbers;
pub mod parts;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use crate::domain::TextEnum;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

const SCHEMA: &str = include_str!("../../schema.sql");
/// The schema's version, kept in SQLite's `user_version`: a change to an existing table bumps
/// it and adds the step that brings older databases up to it.
const SCHEMA_VERSION: i64 = 1;
/// How long a writer waits for another's lock before giving up, and how often it looks.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const BUSY_POLL: Duration = Duration::from_millis(1);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("could not open the database pool")]
    Pool(#[from] r2d2::Error),
    #[error("database query failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database has schema version {found}, newer than this momentline's {SCHEMA_VERSION}"
    )]
    NewerSchema { found: i64 },
}

/// Opens (creating when needed) the database at `path` and applies the schema.
pub fn open(path: &Path) -> Result<Pool, DbError> {
    let manager = SqliteConnectionManager::file(path).with_init(configure);
    let pool = r2d2::Pool::builder().max_size(8).build(manager)?;
    let conn = pool.get()?;
    conn.execute_batch("PRAGMA journal_mode = WAL;")?;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(DbError::NewerSchema { found });
    }
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
    Ok(pool)
}

fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    // SQLite's own busy timeout backs off to 100 ms sleeps, which under a burst of webhooks
    // stretches the slowest answers past a second; polling every millisecond keeps the
    // queue for the write lock short.
    conn.busy_handler(Some(wait_for_lock))?;
    // FULL: a text the API says is queued survives a power cut, not only a crash.
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
}

/// SQLite's busy handler: `true` to try the lock again, after a short sleep.
fn wait_for_lock(attempts: i32) -> bool {
    let waited = BUSY_POLL * u32::try_from(attempts).unwrap_or(u32::MAX);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

/// A status enum as a text column: the only bridge between `TextEnum` and SQL.
pub struct Text<T>(pub T);

impl<T: TextEnum> ToSql for Text<T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.as_str()))
    }
}

impl<T: TextEnum> FromSql for Text<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let word = value.as_str()?;
        T::parse(word)
            .map(Text)
            .ok_or_else(|| FromSqlError::Other(format!("'{word}' is not a {}", T::NAME).into()))
    }
}

/// A time as stored: fixed width, so text order is time order.
pub fn ts(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Reads a time written by `ts`.
pub fn parse_ts(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })
}

/// Reads a nullable time column.
pub fn opt_ts(text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_applies_twice_on_one_database() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("twice.db");
        drop(open(&path).expect("first open"));
        let pool = open(&path).expect("second open");
        let conn = pool.get().expect("connection");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(fk, 1);
    }

    #[test]
    fn a_database_from_a_newer_momentline_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("newer.db");
        let pool = open(&path).expect("open");
        pool.get()
            .expect("connection")
            .execute_batch("PRAGMA user_version = 99;")
            .expect("bump");
        drop(pool);
        assert!(matches!(
            open(&path),
            Err(DbError::NewerSchema { found: 99 })
        ));
    }

    #[test]
    fn times_round_trip_and_sort_as_text() {
        let a = DateTime::from_timestamp(1_800_000_000, 5_000_000).expect("time");
        let b = a + chrono::Duration::milliseconds(995);
        assert_eq!(parse_ts(&ts(a)).expect("parses"), a);
        assert!(ts(a) < ts(b));
    }
}
