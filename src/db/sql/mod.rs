//! The storage seam: one way to run SQL on either engine, SQLite (the default, one file) or
//! PostgreSQL (several instances on one database).
//!
//! Everything above this module writes its SQL once, with SQLite's numbered placeholders
//! (`?1`, `?2`); on PostgreSQL they are rewritten to `$1`, `$2`. The few statements the two
//! engines spell differently are chosen with `Conn::engine`. Values cross the seam as
//! `Param` (bound) and `ValueRef` (read), so one Rust type reads the same from both.
//!
//! `value.rs` holds what is bound and read, `row.rs` a result's rows, `pg.rs` PostgreSQL's
//! connections, statement cache and placeholders, `pg_tls.rs` how a URL says to reach the
//! server (TLS); this file `Conn`, which runs a statement on either.

mod pg;
mod pg_tls;
mod row;
mod value;

use std::cell::{Cell, RefCell};

use super::DbError;
pub use crate::params;
use pg::{pg_params, PgTx};
pub use pg::{to_postgres, PgCache, PgConn, PgExec, PgManager, PgPool};
pub use pg_tls::{PgTarget, SslMode};
pub use row::{Column, Row};
pub use value::{FromValue, Param, Params, ToParam, ValueRef};

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

/// A connection (in a transaction when writing) on either engine.
pub struct Conn<'c> {
    inner: Inner<'c>,
    /// Statements run through this connection, counted for the writer's figures (and the
    /// test that keeps a text's statements few).
    statements: Cell<u64>,
    /// The keys this write holds (`lock`), so taking one again costs no round trip.
    held: RefCell<Vec<String>>,
    /// In a batch of writes committed together (PostgreSQL), the keys another transaction
    /// held when a write of the batch asked: `lock` never waits there (see `Batched`).
    batch: Option<&'c Batched>,
}

/// The keys a batch of writes found held by another transaction. A batch holds every lock
/// its writes took until it commits, so a write that waited for another batch's lock could
/// deadlock with it: instead `lock` answers `DbError::WouldWait`, and the write runs again
/// alone after the batch. A key refused once stays refused for the rest of the batch, so a
/// later write on the same number cannot overtake the one set aside.
#[derive(Default)]
pub struct Batched {
    refused: RefCell<Vec<String>>,
}

enum Inner<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(RefCell<PgTx<'c>>),
}
impl<'c> Conn<'c> {
    pub fn sqlite(conn: &'c rusqlite::Connection) -> Self {
        Self {
            inner: Inner::Sqlite(conn),
            statements: Cell::new(0),
            held: RefCell::new(Vec::new()),
            batch: None,
        }
    }

    /// A connection on PostgreSQL: `tx` is a transaction (to write) or a client (to read).
    pub fn postgres(tx: &'c mut (dyn PgExec + 'c), cache: PgCache<'c>) -> Self {
        Self {
            inner: Inner::Postgres(RefCell::new(PgTx {
                tx,
                statements: cache.0,
            })),
            statements: Cell::new(0),
            held: RefCell::new(Vec::new()),
            batch: None,
        }
    }

    /// As `postgres`, for one write of a batch committed together: `lock` never waits.
    pub fn postgres_batched(
        tx: &'c mut (dyn PgExec + 'c),
        cache: PgCache<'c>,
        batch: &'c Batched,
    ) -> Self {
        Self {
            batch: Some(batch),
            ..Self::postgres(tx, cache)
        }
    }

    /// Statements run through this connection so far.
    pub fn statements(&self) -> u64 {
        self.statements.get()
    }

    fn count(&self) {
        self.statements.set(self.statements.get() + 1);
    }

    /// Before a statement runs: a rollback to a savepoint may give back locks taken after it,
    /// so none is taken for held any more (taking a held one again is only a round trip).
    fn forget_locks_on_rollback(&self, sql: &str) {
        if sql.trim_start().starts_with("ROLLBACK") {
            self.held.borrow_mut().clear();
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
        self.count();
        self.forget_locks_on_rollback(sql);
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
        self.count();
        self.forget_locks_on_rollback(sql);
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
        self.count();
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
        self.count();
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
    /// one writer runs every write alone, it does nothing. In a batch (`Batched`) it never
    /// waits: a key another transaction holds is `DbError::WouldWait`.
    pub fn lock(&self, key: &str) -> Result<(), DbError> {
        if self.engine() == Engine::Sqlite || self.holds(key) {
            return Ok(());
        }
        if self.batch.is_some() {
            return match self.try_lock(key)? {
                true => Ok(()),
                false => Err(DbError::WouldWait),
            };
        }
        self.query_map(
            "SELECT pg_advisory_xact_lock(hashtextextended(CAST(?1 AS TEXT), 0))",
            &[key],
            |_| Ok(()),
        )?;
        self.held.borrow_mut().push(key.to_owned());
        Ok(())
    }

    /// Whether this write took `key` already.
    fn holds(&self, key: &str) -> bool {
        self.held.borrow().iter().any(|held| held == key)
    }

    /// As `lock`, but never waits: `false` when another write holds `key` (SQLite: always
    /// `true`). In a batch, a key refused once is refused to every later write of it.
    pub fn try_lock(&self, key: &str) -> Result<bool, DbError> {
        match self.engine() {
            Engine::Sqlite => Ok(true),
            Engine::Postgres if self.holds(key) => Ok(true),
            Engine::Postgres => {
                let refused = |batch: &Batched| batch.refused.borrow().iter().any(|k| k == key);
                if self.batch.is_some_and(refused) {
                    return Ok(false);
                }
                let taken = self.query_value(
                    "SELECT pg_try_advisory_xact_lock(hashtextextended(CAST(?1 AS TEXT), 0))",
                    &[key],
                )?;
                match (taken, self.batch) {
                    (true, _) => self.held.borrow_mut().push(key.to_owned()),
                    (false, Some(batch)) => batch.refused.borrow_mut().push(key.to_owned()),
                    (false, None) => {}
                }
                Ok(taken)
            }
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
