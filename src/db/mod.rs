//! SQLite's SQL, a module per table. Writes run inside the writer's batches (`crate::store`).

pub mod artists;
pub mod broadcasts;
pub mod codes;
pub mod jobs;
pub mod messages;
pub mod moments;
pub mod numbers;
pub mod parts;

use chrono::{DateTime, Utc};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::ToSql;

use crate::domain::TextEnum;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("could not open the database pool")]
    Pool(#[from] r2d2::Error),
    #[error("database query failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error("could not bring the database schema up to date")]
    Migration(#[from] rusqlite_migration::Error),
    #[error(
        "the database has schema version {found}, newer than this momentline's {}",
        crate::store::migrations::VERSION
    )]
    NewerSchema { found: i64 },
    #[error("could not create the database file")]
    Create(#[source] std::io::Error),
    #[error("could not start the database writer")]
    Thread(#[source] std::io::Error),
    #[error("a database task did not finish: {0}")]
    Task(String),
}

impl DbError {
    /// Whether trying the same thing again may succeed: the database was busy, locked, full
    /// or could not be read or written. Anything else (a value refused, a constraint broken)
    /// comes from what was asked, and fails again however often it is asked.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode as Code;
        match self {
            Self::Pool(_) | Self::Thread(_) | Self::Task(_) | Self::Create(_) => true,
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
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
            ),
            Self::Sqlite(_) | Self::Migration(_) | Self::NewerSchema { .. } => false,
        }
    }
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
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
    fn times_round_trip_and_sort_as_text() {
        let a = DateTime::from_timestamp(1_800_000_000, 5_000_000).expect("time");
        let b = a + chrono::Duration::milliseconds(995);
        assert_eq!(parse_ts(&ts(a)).expect("parses"), a);
        assert!(ts(a) < ts(b));
    }
}
