//! One row of a result, read by column position or name on either engine.

use super::value::{FromValue, Owned, ValueRef};
use crate::db::DbError;

/// A column, by position (from 0) or by name: what both engines' rows are indexed by.
pub trait Column: rusqlite::RowIndex + postgres::row::RowIndex + Copy + std::fmt::Display {}

impl<C: rusqlite::RowIndex + postgres::row::RowIndex + Copy + std::fmt::Display> Column for C {}

/// One row of a result.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Reads a column as `T`.
    pub fn get<C: Column, T: FromValue>(&self, column: C) -> Result<T, DbError> {
        let decode = |e: String| DbError::Decode(format!("column {column}: {e}"));
        match self {
            Row::Sqlite(row) => {
                let value = row.get_ref(column)?;
                use rusqlite::types::ValueRef as V;
                let value = match value {
                    V::Null => ValueRef::Null,
                    V::Integer(i) => ValueRef::Int(i),
                    V::Real(f) => ValueRef::Real(f),
                    V::Text(t) => {
                        ValueRef::Text(std::str::from_utf8(t).map_err(|e| decode(e.to_string()))?)
                    }
                    V::Blob(b) => ValueRef::Blob(b),
                };
                T::from_value(value).map_err(decode)
            }
            Row::Postgres(row) => {
                let value: Owned = row.try_get(column)?;
                T::from_value(value.as_ref()).map_err(decode)
            }
        }
    }
}
