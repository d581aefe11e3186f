//! momentline's SQL, a module per table, run on SQLite or PostgreSQL through one seam
//! (`sql`). Writes run inside `crate::store`'s writes (SQLite's writer batches, or a
//! PostgreSQL transaction each).

pub mod artists;
pub mod batches;
pub mod broadcasts;
pub mod codes;
pub mod inprocess;
pub mod jobs;
pub mod messages;
pub mod moments;
pub mod numbers;
pub mod parts;
pub mod progress;
pub mod sql;

pub use sql::{params, Conn, Engine, Row};

use chrono::{DateTime, Utc};
use r2d2_sqlite::SqliteConnectionManager;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("could not open the database pool")]
    Pool(#[from] r2d2::Error),
    #[error("database query failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL query failed")]
    Postgres(#[from] postgres::Error),
    #[error("could not connect to PostgreSQL: {0}")]
    Connect(String),
    #[error("could not open the PostgreSQL pool")]
    PgPool(#[source] r2d2::Error),
    #[error("a stored value could not be read: {0}")]
    Decode(String),
    #[error("a value could not be stored: {0}")]
    Encode(String),
    #[error("the query returned no row")]
    NoRow,
    #[error("could not bring the database schema up to date")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("the database has schema version {found}, newer than this momentline's {known}")]
    NewerSchema { found: i64, known: i64 },
    #[error("could not create the database file")]
    Create(#[source] std::io::Error),
    #[error("could not start the database writer")]
    Thread(#[source] std::io::Error),
    #[error("could not sync the write-ahead log to disk")]
    Sync(#[source] std::io::Error),
    #[error("a database task did not finish: {0}")]
    Task(String),
    /// In a batch of writes committed together, a lock another transaction holds: the write
    /// is set aside and run alone once the batch commits (see `sql::Batched`).
    #[error("another write holds a lock this one needs")]
    WouldWait,
}

/// Whether SQLite failed for a cause a retry may cure: busy, locked, full, unable to read or
/// write its file.
pub fn sqlite_transient(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as Code;
    let rusqlite::Error::SqliteFailure(e, _) = e else {
        return false;
    };
    matches!(
        e.code,
        Code::DatabaseBusy
            | Code::DatabaseLocked
            | Code::SystemIoFailure
            | Code::DiskFull
            | Code::CannotOpen
            | Code::OutOfMemory
            | Code::ReadOnly
            | Code::OperationInterrupted
            | Code::FileLockingProtocolFailed
    )
}

impl DbError {
    /// Whether trying the same thing again may succeed: the database was busy, locked, full
    /// or could not be read or written. Anything else (a value refused, a constraint broken)
    /// comes from what was asked, and fails again however often it is asked.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pool(_) | Self::Thread(_) | Self::Task(_) | Self::Create(_) | Self::Sync(_) => {
                true
            }
            Self::Sqlite(e) if sqlite_transient(e) => true,
            Self::PgPool(_) | Self::Connect(_) | Self::WouldWait => true,
            Self::Postgres(e) => postgres_transient(e),
            Self::Sqlite(_)
            | Self::Migration(_)
            | Self::NewerSchema { .. }
            | Self::Decode(_)
            | Self::Encode(_)
            | Self::NoRow => false,
        }
    }
}

/// Whether a PostgreSQL error may pass if tried again: the connection was lost, the server
/// is starting, stopping or out of room, or the transaction lost a race with another
/// (serialization failure, deadlock).
pub fn postgres_transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Connection exceptions (08), insufficient resources (53), operator intervention
        // (57), system errors (58), and a transaction rolled back to let another go (40).
        Some(code) => ["08", "53", "57", "58", "40"]
            .iter()
            .any(|class| code.code().starts_with(class)),
        // No SQLSTATE: the failure was in the connection, not the statement.
        None => e.as_db_error().is_none(),
    }
}

/// Whether PostgreSQL rolled the transaction back to let a concurrent one go (it must be run
/// again from the start).
pub fn lost_race(e: &DbError) -> bool {
    use postgres::error::SqlState;
    match e {
        DbError::Postgres(e) => {
            e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
        }
        _ => false,
    }
}

/// Whether a write of a batch committed together should run again alone, after the batch:
/// it lost a race with another transaction, would have waited for another's lock, or waited
/// longer than a batch lets it (`lock_timeout`).
pub fn set_aside(e: &DbError) -> bool {
    use postgres::error::SqlState;
    match e {
        DbError::WouldWait => true,
        DbError::Postgres(pg) => lost_race(e) || pg.code() == Some(&SqlState::LOCK_NOT_AVAILABLE),
        _ => false,
    }
}

/// A status enum as a text column: the only bridge between `TextEnum` and SQL (bound and read
/// through `sql::ToParam` and `sql::FromValue`).
pub struct Text<T>(pub T);

/// A time as stored: fixed width, so text order is time order.
pub fn ts(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads a time written by `ts`.
pub fn parse_ts(text: &str) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| DbError::Decode(format!("'{text}' is not a time: {e}")))
}

/// Reads a nullable time column.
pub fn opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>, DbError> {
    text.as_deref().map(parse_ts).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_sort_as_text() {
        let a = DateTime::from_timestamp(1_800_000_000, 5_000_000).expect("time");
        let b = a + chrono::Duration::milliseconds(995);
        assert_eq!(parse_ts(&ts(a)).expect("parses"), a);
        assert!(ts(a) < ts(b));
    }
}
