//! The storage seam: one way to run SQL on either engine, SQLite (the default, one file) or
//! PostgreSQL (several instances on one database).
//!
//! Everything above this module writes its SQL once, with SQLite's numbered placeholders
//! (`?1`, `?2`); on PostgreSQL they are rewritten to `$1`, `$2`. The few statements the two
//! engines spell differently are chosen with `Conn::engine`. Values cross the seam as
//! `Param` (bound) and `ValueRef` (read), so one Rust type reads the same from both.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{FromSql, IsNull, ToSql, Type};

use super::{DbError, Text};
use crate::domain::TextEnum;

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A statement that locks the rows it reads on PostgreSQL, where several instances write at
/// once: its row locks (`FOR UPDATE`, `FOR UPDATE SKIP LOCKED`) are written in it once.
/// SQLite, whose one writer holds the whole database, has no row locks and runs it without
/// them (the text made once, on first use).
pub struct Locking {
    sql: &'static str,
    unlocked: std::sync::OnceLock<String>,
}

impl Locking {
    pub const fn new(sql: &'static str) -> Self {
        Self {
            sql,
            unlocked: std::sync::OnceLock::new(),
        }
    }

    /// The statement as `engine` runs it.
    pub fn on(&self, engine: Engine) -> &str {
        match engine {
            Engine::Postgres => self.sql,
            Engine::Sqlite => self.unlocked.get_or_init(|| {
                self.sql
                    .replace(" FOR UPDATE SKIP LOCKED", "")
                    .replace(" FOR UPDATE", "")
            }),
        }
    }
}

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Blob(&'a [u8]),
}

/// What can be bound to a statement.
pub trait ToParam {
    fn to_param(&self) -> Param<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> Param<'_> {
                Param::Int(i64::from(*self))
            }
        }
    )*};
}
int_param!(i64, i32, u32, i16, u16, u8, bool);

impl ToParam for usize {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToParam for u64 {
    fn to_param(&self) -> Param<'_> {
        Param::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToParam for f64 {
    fn to_param(&self) -> Param<'_> {
        Param::Real(*self)
    }
}

impl ToParam for str {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for String {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self))
    }
}

impl ToParam for [u8] {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl<const N: usize> ToParam for [u8; N] {
    fn to_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Param<'_> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Param<'_> {
        match self {
            Some(v) => v.to_param(),
            None => Param::Null,
        }
    }
}

impl<T: TextEnum> ToParam for Text<T> {
    fn to_param(&self) -> Param<'_> {
        Param::Text(Cow::Borrowed(self.0.as_str()))
    }
}

impl ToParam for Param<'_> {
    fn to_param(&self) -> Param<'_> {
        self.clone()
    }
}

/// A statement's parameters: `params![a, b]`, `[a]` (one type), `[]` (none), or a slice.
pub trait Params {
    fn params(&self) -> Vec<Param<'_>>;
}

impl Params for [&dyn ToParam] {
    fn params(&self) -> Vec<Param<'_>> {
        self.iter().map(|p| p.to_param()).collect()
    }
}

impl Params for &[&dyn ToParam] {
    fn params(&self) -> Vec<Param<'_>> {
        self.iter().map(|p| p.to_param()).collect()
    }
}

impl<T: ToParam, const N: usize> Params for [T; N] {
    fn params(&self) -> Vec<Param<'_>> {
        self.iter().map(ToParam::to_param).collect()
    }
}

impl<T: ToParam> Params for Vec<T> {
    fn params(&self) -> Vec<Param<'_>> {
        self.iter().map(ToParam::to_param).collect()
    }
}

/// A statement's parameters of several types: `params![id, "text", Text(state)]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::db::sql::ToParam] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::db::sql::ToParam),+] as &[&dyn $crate::db::sql::ToParam] };
}
pub use crate::params;

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as V};
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Null => V::Null,
            Param::Int(i) => V::Integer(*i),
            Param::Real(f) => V::Real(*f),
            Param::Text(s) => V::Text(s.as_bytes()),
            Param::Blob(b) => V::Blob(b),
        }))
    }
}

/// Text types PostgreSQL may infer for a placeholder bound with text.
fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
    ]
    .contains(ty)
}

/// Binds by the type PostgreSQL infers for the placeholder, as SQLite's loose typing would:
/// an integer to any integer or boolean column, text to text, a number written as text where
/// text is wanted. Anything else is refused, never sent as bytes the server would misread.
impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ if is_text(ty) => i.to_string().as_str().to_sql(&Type::TEXT, out),
                _ => Err(format!("cannot bind the integer {i} as {ty}: CAST it in the SQL").into()),
            },
            Param::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::FLOAT8 => f.to_sql(ty, out),
                _ if is_text(ty) => f.to_string().as_str().to_sql(&Type::TEXT, out),
                _ => Err(format!("cannot bind the number {f} as {ty}: CAST it in the SQL").into()),
            },
            Param::Text(s) => match *ty {
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ if is_text(ty) => s.as_ref().to_sql(&Type::TEXT, out),
                _ => Err(format!("cannot bind text as {ty}: CAST it in the SQL").into()),
            },
            Param::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(format!("cannot bind bytes as {ty}: CAST it in the SQL").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// A column's value as read, borrowed from its row.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A value read from PostgreSQL whatever its column's type.
enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Owned {
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Owned::Null => ValueRef::Null,
            Owned::Int(i) => ValueRef::Int(*i),
            Owned::Real(f) => ValueRef::Real(*f),
            Owned::Text(s) => ValueRef::Text(s),
            Owned::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl<'a> FromSql<'a> for Owned {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Owned::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Owned::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Owned::Int(i16::from_sql(ty, raw)?.into()),
            Type::BOOL => Owned::Int(bool::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Owned::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Owned::Real(f32::from_sql(ty, raw)?.into()),
            Type::BYTEA => Owned::Blob(raw.to_vec()),
            _ if is_text(ty) => Owned::Text(String::from_sql(&Type::TEXT, raw)?),
            _ => return Err(format!("cannot read a {ty} column: CAST it in the SQL").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Owned::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String>;
}

fn wrong(value: ValueRef<'_>, wanted: &str) -> String {
    format!("{value:?} is not {wanted}")
}

impl FromValue for i64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Int(i) => Ok(i),
            other => Err(wrong(other, "an integer")),
        }
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
                let i = i64::from_value(value)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_value!(i32, u32, u64, usize, i16, u16, u8);

impl FromValue for bool {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Int(i) => Ok(i as f64),
            other => Err(wrong(other, "a number")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Text(s) => Ok(s.to_owned()),
            other => Err(wrong(other, "text")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            ValueRef::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(wrong(other, "bytes")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: TextEnum> FromValue for Text<T> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Text(word) => T::parse(word)
                .map(Text)
                .ok_or_else(|| format!("'{word}' is not a {}", T::NAME)),
            other => Err(wrong(other, T::NAME)),
        }
    }
}

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

/// A PostgreSQL connection with the statements it has prepared, so a statement run often is
/// parsed and planned once per connection, as SQLite's `prepare_cached` does.
pub struct PgConn {
    /// Always there but while being dropped.
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

impl PgConn {
    pub fn new(client: postgres::Client) -> Self {
        Self {
            client: Some(client),
            statements: HashMap::new(),
        }
    }

    /// The client and its statement cache, apart.
    pub fn split(&mut self) -> (&mut postgres::Client, PgCache<'_>) {
        let client = self
            .client
            .as_mut()
            .expect("a connection has its client until dropped");
        (client, PgCache(&mut self.statements))
    }
}

/// The synchronous client closes its connection on a runtime of its own, which cannot run on
/// an async thread: a connection dropped there (the last `Store` going away in a task) is
/// closed from a thread of its own.
impl Drop for PgConn {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("momentline-pg-close".into())
                    .spawn(move || drop(client));
            }
        }
    }
}

/// The statement cache of a connection in a transaction.
pub struct PgCache<'c>(&'c mut HashMap<String, postgres::Statement>);

/// An r2d2 manager for `PgConn`: `r2d2_postgres`'s connections with their statement cache.
#[derive(Debug)]
pub struct PgManager(pub r2d2_postgres::PostgresConnectionManager<postgres::NoTls>);

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        self.0.connect().map(PgConn::new)
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.0.is_valid(conn.split().0)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.0.has_broken(conn.split().0)
    }
}

pub type PgPool = r2d2::Pool<PgManager>;

/// Rewrites SQLite's `?N` placeholders to PostgreSQL's `$N`, outside quoted text.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// A connection (in a transaction when writing) on either engine.
pub struct Conn<'c> {
    inner: Inner<'c>,
}

enum Inner<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(RefCell<PgTx<'c>>),
}

struct PgTx<'c> {
    tx: &'c mut (dyn PgExec + 'c),
    statements: &'c mut HashMap<String, postgres::Statement>,
}

/// What a PostgreSQL transaction or client does for `Conn`.
pub trait PgExec {
    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error>;
    fn query(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error>;
    fn execute(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error>;
    fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error>;
}

macro_rules! pg_exec {
    ($t:ty) => {
        impl PgExec for $t {
            fn prepare(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
                postgres::GenericClient::prepare(self, sql)
            }
            fn query(
                &mut self,
                statement: &postgres::Statement,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<Vec<postgres::Row>, postgres::Error> {
                postgres::GenericClient::query(self, statement, params)
            }
            fn execute(
                &mut self,
                statement: &postgres::Statement,
                params: &[&(dyn ToSql + Sync)],
            ) -> Result<u64, postgres::Error> {
                postgres::GenericClient::execute(self, statement, params)
            }
            fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
                postgres::GenericClient::batch_execute(self, sql)
            }
        }
    };
}
pg_exec!(postgres::Client);
pg_exec!(postgres::Transaction<'_>);

impl PgTx<'_> {
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<postgres::Row>, DbError> {
        let statement = self.statement(sql)?;
        Ok(self.tx.query(&statement, &pg_params(params))?)
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(&to_postgres(sql))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

fn pg_params<'p>(params: &'p [Param<'p>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl<'c> Conn<'c> {
    pub fn sqlite(conn: &'c rusqlite::Connection) -> Self {
        Self {
            inner: Inner::Sqlite(conn),
        }
    }

    /// A connection on PostgreSQL: `tx` is a transaction (to write) or a client (to read).
    pub fn postgres(tx: &'c mut (dyn PgExec + 'c), cache: PgCache<'c>) -> Self {
        Self {
            inner: Inner::Postgres(RefCell::new(PgTx {
                tx,
                statements: cache.0,
            })),
        }
    }

    /// A `Locking` statement's text for this connection's engine.
    pub fn locking<'s>(&self, statement: &'s Locking) -> &'s str {
        statement.on(self.engine())
    }

    pub fn engine(&self) -> Engine {
        match self.inner {
            Inner::Sqlite(_) => Engine::Sqlite,
            Inner::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite connection underneath, for what only SQLite has (its backup, its PRAGMAs).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match self.inner {
            Inner::Sqlite(conn) => Some(conn),
            Inner::Postgres(_) => None,
        }
    }

    /// Runs a statement; answers the rows it changed.
    pub fn execute<P: Params + ?Sized>(&self, sql: &str, params: &P) -> Result<usize, DbError> {
        let params = params.params();
        match &self.inner {
            Inner::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter()))?),
            Inner::Postgres(tx) => {
                let mut tx = tx.borrow_mut();
                let statement = tx.statement(sql)?;
                let changed = tx.tx.execute(&statement, &pg_params(&params))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// Runs statements with no parameters and no rows, one after another.
    pub fn execute_batch(&self, sql: &str) -> Result<(), DbError> {
        match &self.inner {
            Inner::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Inner::Postgres(tx) => Ok(tx.borrow_mut().tx.batch_execute(sql)?),
        }
    }

    /// Every row of a query, each read by `read`.
    pub fn query_map<P, T, F>(&self, sql: &str, params: &P, mut read: F) -> Result<Vec<T>, DbError>
    where
        P: Params + ?Sized,
        F: FnMut(&Row) -> Result<T, DbError>,
    {
        let params = params.params();
        match &self.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(read(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Inner::Postgres(tx) => {
                let rows = tx.borrow_mut().query(sql, &params)?;
                rows.iter().map(|row| read(&Row::Postgres(row))).collect()
            }
        }
    }

    /// The first row of a query, `None` when there is none.
    pub fn query_opt<P, T, F>(&self, sql: &str, params: &P, read: F) -> Result<Option<T>, DbError>
    where
        P: Params + ?Sized,
        F: FnOnce(&Row) -> Result<T, DbError>,
    {
        let params = params.params();
        match &self.inner {
            Inner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                match rows.next()? {
                    Some(row) => read(&Row::Sqlite(row)).map(Some),
                    None => Ok(None),
                }
            }
            Inner::Postgres(tx) => {
                let rows = tx.borrow_mut().query(sql, &params)?;
                rows.first()
                    .map(|row| read(&Row::Postgres(row)))
                    .transpose()
            }
        }
    }

    /// The first row of a query; `DbError::NoRow` when there is none.
    pub fn query_row<P, T, F>(&self, sql: &str, params: &P, read: F) -> Result<T, DbError>
    where
        P: Params + ?Sized,
        F: FnOnce(&Row) -> Result<T, DbError>,
    {
        self.query_opt(sql, params, read)?.ok_or(DbError::NoRow)
    }

    /// Holds `key` until this write commits or rolls back: writes that take the same key run
    /// one after another, across every instance on the database (PostgreSQL's transaction
    /// advisory locks; taken again by the same write, it is already held). On SQLite, where
    /// one writer runs every write alone, it does nothing.
    pub fn lock(&self, key: &str) -> Result<(), DbError> {
        if self.engine() == Engine::Postgres {
            self.query_map(
                "SELECT pg_advisory_xact_lock(hashtextextended(CAST(?1 AS TEXT), 0))",
                &[key],
                |_| Ok(()),
            )?;
        }
        Ok(())
    }

    /// As `lock`, but never waits: `false` when another write holds `key` (SQLite: always
    /// `true`).
    pub fn try_lock(&self, key: &str) -> Result<bool, DbError> {
        match self.engine() {
            Engine::Sqlite => Ok(true),
            Engine::Postgres => self.query_value(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(CAST(?1 AS TEXT), 0))",
                &[key],
            ),
        }
    }

    /// One value: the first column of the first row.
    pub fn query_value<P, T>(&self, sql: &str, params: &P) -> Result<T, DbError>
    where
        P: Params + ?Sized,
        T: FromValue,
    {
        self.query_row(sql, params, |r| r.get(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_quoted_text() {
        assert_eq!(
            to_postgres("SELECT ?1, '?2', ?10 WHERE a = '' AND b = ?2"),
            "SELECT $1, '?2', $10 WHERE a = '' AND b = $2"
        );
    }

    #[test]
    fn sqlite_reads_and_binds_through_the_seam() {
        let raw = rusqlite::Connection::open_in_memory().expect("database");
        let conn = Conn::sqlite(&raw);
        conn.execute_batch("CREATE TABLE t (i INTEGER, s TEXT, b BLOB)")
            .expect("table");
        let none: Option<&str> = None;
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3), (?4, ?5, NULL)",
            params![7_i64, "seven", vec![7_u8], true, none],
        )
        .expect("insert");
        let rows = conn
            .query_map(
                "SELECT i, s, b FROM t ORDER BY i",
                &[] as &[&dyn ToParam],
                |r| {
                    Ok((
                        r.get::<_, i64>("i")?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                    ))
                },
            )
            .expect("rows");
        assert_eq!(
            rows,
            vec![(1, None, None), (7, Some("seven".into()), Some(vec![7]))]
        );
        let missing = conn.query_row("SELECT i FROM t WHERE i = ?1", &[9_i64], |r| {
            r.get::<_, i64>(0)
        });
        assert!(matches!(missing, Err(DbError::NoRow)));
    }
}
