//! PostgreSQL's side of the seam: connections with their prepared statements, the pool's
//! manager, a transaction as `Conn` drives it, and SQLite's placeholders rewritten.

use std::collections::HashMap;

use postgres::types::ToSql;

use super::value::Param;
use crate::db::DbError;

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
pub struct PgCache<'c>(pub(super) &'c mut HashMap<String, postgres::Statement>);

impl PgCache<'_> {
    /// The same cache, for a shorter while (one write of several in a transaction).
    pub fn reborrow(&mut self) -> PgCache<'_> {
        PgCache(self.0)
    }
}

/// An r2d2 manager for `PgConn`: `r2d2_postgres`'s connections with their statement cache,
/// reached as `PgTarget` says.
pub struct PgManager(
    pub r2d2_postgres::PostgresConnectionManager<tokio_postgres_rustls::MakeRustlsConnect>,
);

impl PgManager {
    pub fn new(target: &super::PgTarget) -> Self {
        Self(r2d2_postgres::PostgresConnectionManager::new(
            target.config().clone(),
            target.tls(),
        ))
    }
}

impl std::fmt::Debug for PgManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgManager")
    }
}

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

pub(super) struct PgTx<'c> {
    pub(super) tx: &'c mut (dyn PgExec + 'c),
    pub(super) statements: &'c mut HashMap<String, postgres::Statement>,
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
    pub(super) fn query(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<postgres::Row>, DbError> {
        let statement = self.statement(sql)?;
        Ok(self.tx.query(&statement, &pg_params(params))?)
    }

    pub(super) fn statement(&mut self, sql: &str) -> Result<postgres::Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(&to_postgres(sql))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

pub(super) fn pg_params<'p>(params: &'p [Param<'p>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}
