//! Storage: the database behind one seam (`crate::db::Conn`). On SQLite: the one writer
//! (group commit), the read pool and the schema's migrations. On PostgreSQL: a pool, and a
//! few writer threads committing writes in batches (`postgres`, `pg_batch`). Every write goes through
//! `Store::write`; reads through `Store::read` or `Reads::with`.

mod log_sync;
pub mod migrations;
mod outage;
mod pg_batch;
pub mod postgres;
pub mod writer;

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

pub use crate::db::{Conn, DbError, Pool};
pub use crate::metrics::WriterStats;
use crate::telemetry::RequestId;
pub use writer::{note_transition, WriteError, Writer};

/// How long a connection waits for another's lock before giving up, and how often it looks.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const BUSY_POLL: Duration = Duration::from_millis(1);
/// Read connections in the pool.
const READERS: u32 = 8;

/// How the writer is sized.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Writes that may wait for the writer; past this, `WriteError::Busy`.
    pub queue: usize,
    /// Writes committed together at most.
    pub batch: usize,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            queue: 1024,
            batch: 256,
        }
    }
}

/// Where the database is: a SQLite file (the default) or a PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(std::path::PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

/// `work` as it runs on the writer's thread (or a pool's): in the span it was asked for in,
/// and for the request it was asked for, so its log lines and the jobs it queues carry the
/// request's id.
fn traced<T, F>(mut work: F) -> impl FnMut(&Conn) -> Result<T, DbError> + Send + 'static
where
    F: FnMut(&Conn) -> Result<T, DbError> + Send + 'static,
{
    let span = tracing::Span::current();
    let request = RequestId::current();
    move |conn| span.in_scope(|| RequestId::on_thread(request.clone(), || work(conn)))
}

/// Runs a unit test's `test` on a read connection to a new database of its own.
#[cfg(test)]
pub fn with_database(test: impl FnOnce(&Conn) -> Result<(), DbError> + Send) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("test.db"), Default::default()).expect("open");
    store.reads().with(test).expect("test");
}

/// The database: one writer and many readers on SQLite, a pool on PostgreSQL.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// An outage of the database, said once (shared by the clones).
    outage: std::sync::Arc<outage::Outage>,
}

/// How long a request waits for its write to commit before it is answered `503`.
pub const REQUEST_WRITE_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Clone)]
enum Backend {
    Sqlite { writer: Writer, reads: Pool },
    Postgres(postgres::PgStore),
}

/// Read connections, for code already off the async threads.
#[derive(Clone)]
pub enum Reads {
    Sqlite(Pool),
    Postgres(crate::db::sql::PgPool),
}

impl Reads {
    /// Runs `read` on a pooled connection; blocks. Not on an async thread (PostgreSQL's
    /// synchronous client cannot run there): use `Store::read`, or a blocking task.
    pub fn with<T: Send>(
        &self,
        read: impl FnOnce(&Conn) -> Result<T, DbError> + Send,
    ) -> Result<T, DbError> {
        match self {
            Reads::Sqlite(pool) => read(&Conn::sqlite(&*pool.get()?)),
            Reads::Postgres(pool) => postgres::read(pool, read),
        }
    }
}

impl Store {
    /// Opens the database wherever it is.
    pub fn open_database(database: &Database, settings: WriterSettings) -> Result<Self, DbError> {
        match database {
            Database::Sqlite(path) => Self::open(path, settings),
            Database::Postgres(url) => Ok(Self {
                backend: Backend::Postgres(postgres::PgStore::open(url, settings)?),
                outage: Default::default(),
            }),
        }
    }

    /// For PostgreSQL, whether its connection is encrypted and what was checked of the server,
    /// and whether that deserves a warning.
    pub fn connection_security(&self) -> Option<(&str, bool)> {
        match &self.backend {
            Backend::Sqlite { .. } => None,
            Backend::Postgres(pg) => Some(pg.security()),
        }
    }

    /// Which engine this is.
    pub fn engine(&self) -> crate::db::Engine {
        match self.backend {
            Backend::Sqlite { .. } => crate::db::Engine::Sqlite,
            Backend::Postgres(_) => crate::db::Engine::Postgres,
        }
    }

    /// Opens (creating when needed) the database at `path`, brings its schema up to date and
    /// starts the writer.
    pub fn open(path: &Path, settings: WriterSettings) -> Result<Self, DbError> {
        // A new database (and so its -wal and -shm files, which SQLite makes alike) is
        // readable by its owner only: it holds phone numbers and conversations.
        if !path.exists() {
            match crate::files::owner_only_file().open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(DbError::Create(e)),
            }
        }
        let mut conn = Connection::open(path)?;
        configure(&mut conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrations::apply(&mut conn)?;
        // The writer never stops to copy the log into the database: a thread of its own
        // does (see `checkpoint`), so a commit costs one append to the log.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // The writer's commits only append to the log; a thread of its own syncs it before
        // their writes are answered (see `log_sync`), while the writer runs its next batch.
        let durable = log_sync::Durable::log(path).map_err(DbError::Sync)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let checkpoints = Connection::open(path)?;
        checkpoints.busy_handler(Some(wait_for_lock))?;
        let manager = SqliteConnectionManager::file(path).with_init(configure);
        let reads = r2d2::Pool::builder()
            .max_size(READERS)
            .connection_timeout(Duration::from_secs(5))
            .build(manager)?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("momentline-checkpoint".into())
            .spawn(move || checkpoint(&checkpoints, &nudged))
            .map_err(DbError::Thread)?;
        let writer = Writer::start(conn, settings.queue, settings.batch, nudge, durable)
            .map_err(DbError::Thread)?;
        Ok(Self {
            backend: Backend::Sqlite { writer, reads },
            outage: Default::default(),
        })
    }

    /// Runs `work` as one write and answers once it is committed, in the writer's next batch
    /// (on PostgreSQL, one writer thread's: see `pg_batch`). `work` may run more than once
    /// (PostgreSQL runs it again alone when it would wait for another's lock, or after a
    /// deadlock), so it must not act outside the database.
    pub async fn write<T, F>(&self, work: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnMut(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        self.submit(work, false).await
    }

    /// As `write`, but waits for room in the queue instead of answering `Busy`.
    pub async fn write_waiting<T, F>(&self, work: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnMut(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        self.submit(work, true).await
    }

    /// As `write`, for a check that writes nothing (readiness): that it commits says nothing
    /// of whether the database takes writes, so it neither begins nor ends an outage.
    pub async fn probe<T, F>(&self, work: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnMut(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        self.hand_over(work, false).await
    }

    async fn hand_over<T, F>(&self, work: F, wait: bool) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnMut(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        let work = traced(work);
        match &self.backend {
            Backend::Sqlite { writer, .. } => writer.write(work, wait).await,
            Backend::Postgres(pg) => pg.write(work, wait).await,
        }
    }

    /// Hands `work` to the writer (SQLite) or the pool (PostgreSQL); with `wait`, waits for
    /// room rather than answering `Busy`. Without `wait` (a request is waiting on it), a write
    /// not committed within `REQUEST_WRITE_DEADLINE` answers `Late`: it may still commit, and
    /// the request's redelivery then finds it done.
    async fn submit<T, F>(&self, work: F, wait: bool) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnMut(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        let began = std::time::Instant::now();
        let written = self.hand_over(work, wait);
        let written = if wait {
            written.await
        } else {
            tokio::time::timeout(REQUEST_WRITE_DEADLINE, written)
                .await
                .unwrap_or(Err(WriteError::Late))
        };
        match &written {
            Ok(_) => self.outage.committed(),
            Err(e) if e.may_pass() => self
                .outage
                .refused(&crate::telemetry::error_chain(e), began),
            Err(_) => {}
        }
        written
    }

    /// Runs `read` on a pooled connection, off the async threads.
    pub async fn read<T, F>(&self, read: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        let reads = self.reads();
        tokio::task::spawn_blocking(move || reads.with(read))
            .await
            .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// The read connections, for code that is already off the async threads.
    pub fn reads(&self) -> Reads {
        match &self.backend {
            Backend::Sqlite { reads, .. } => Reads::Sqlite(reads.clone()),
            Backend::Postgres(pg) => Reads::Postgres(pg.pool().clone()),
        }
    }

    pub fn writer_stats(&self) -> &WriterStats {
        match &self.backend {
            Backend::Sqlite { writer, .. } => writer.stats(),
            Backend::Postgres(pg) => pg.stats(),
        }
    }

    /// Writers committing batches at once: SQLite's one, PostgreSQL's threads.
    pub fn writers(&self) -> usize {
        match &self.backend {
            Backend::Sqlite { .. } => 1,
            Backend::Postgres(_) => postgres::WRITERS,
        }
    }

    /// Writes waiting for a writer, not counting the batches running.
    pub fn queued_writes(&self) -> usize {
        match &self.backend {
            Backend::Sqlite { writer, .. } => writer.queued(),
            Backend::Postgres(pg) => pg.queued(),
        }
    }
}

/// How often the log is copied into the database when nothing nudges it.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies committed pages from the write-ahead log into the database file, beside the
/// writer rather than in its way (PASSIVE never waits for it). The writer nudges it when
/// the log grows fast; it stops, after a last copy, once the writer is gone.
fn checkpoint(conn: &Connection, nudged: &std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    loop {
        let stop = match nudged.recv_timeout(CHECKPOINT_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "could not copy the write-ahead log into the database");
        }
        if stop {
            return;
        }
    }
}

fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    // Every statement the hot paths run stays prepared.
    conn.set_prepared_statement_cache_capacity(128);
    // SQLite's own busy timeout backs off to 100 ms sleeps; polling every millisecond keeps
    // a reader or a second process waiting for the writer's lock only as long as needed.
    conn.busy_handler(Some(wait_for_lock))?;
    // FULL: a write the API says is done survives a power cut, not only a crash.
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;
         PRAGMA journal_size_limit = 67108864;",
    )
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
