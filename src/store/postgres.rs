//! The PostgreSQL engine: several momentline instances on one database.
//!
//! Writes are committed together (`pg_batch`), at READ COMMITTED. What
//! SQLite's one writer gives by running every write alone is given here by locks, taken where
//! the write decides something others could change meanwhile:
//! - a number (`db::numbers::lock`, taken by every read of its standing, and by the settling
//!   of its Moments): its state changes, its caps and its queue of texts, one write at a time;
//! - an artist (`connect`): its connects counted across instances;
//! - a provider message id (`db::messages`): a send recorded and a report about it;
//! - each job's row (`FOR UPDATE SKIP LOCKED` in the claim): one instance claims it;
//! - a provider message id's unique index (`ON CONFLICT DO NOTHING`): one effect per message.
//!
//! They are PostgreSQL's transaction advisory locks, keyed by a hash of the key, so two
//! instances (or two writes of one) take turns. Writes are committed in batches, a
//! transaction each, by a few writer threads (`pg_batch`, which says how batches keep out of
//! each other's way); a write that deadlocks is rolled back and run again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use super::pg_batch::WRITERS;
use super::pg_batch::{self, Queued};
use super::{Conn, DbError, WriteError, WriterSettings, WriterStats};
use crate::db::sql::{PgManager, PgPool, PgTarget, SslMode};

/// Connections in the pool: the writer threads and reads share it.
const CONNECTIONS: u32 = 16;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Whether the connection is encrypted and what was checked, for the start-up summary,
    /// and whether that is worth a warning (not encrypted, over a network).
    security: (Arc<str>, bool),
    stats: Arc<WriterStats>,
    /// Writes waiting for a writer thread; past its capacity, `write` answers `Busy`.
    queue: mpsc::Sender<Queued>,
}

/// A connection the pool could not open: at debug, once per try. The outage it belongs to
/// is said once by the store, and start-up says a refusal in full.
#[derive(Debug)]
struct ConnectFailed;

impl<E: std::fmt::Display> r2d2::HandleError<E> for ConnectFailed {
    fn handle_error(&self, error: E) {
        tracing::debug!(error = %error, "could not open a PostgreSQL connection");
    }
}

impl PgStore {
    /// Connects to `url`, brings the schema up to date and keeps a pool. Blocks; on an async
    /// thread it connects from a thread of its own (see `read`).
    pub fn open(url: &str, settings: WriterSettings) -> Result<Self, DbError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| Self::open(url, settings))
                    .join()
                    .unwrap_or_else(|_| Err(DbError::Task("opening PostgreSQL panicked".into())))
            });
        }
        let target = PgTarget::parse(url).map_err(DbError::Connect)?;
        let pool = r2d2::Pool::builder()
            .max_size(CONNECTIONS)
            // Connections are opened as the load asks for them, not all at start-up.
            .min_idle(Some(2))
            .connection_timeout(Duration::from_secs(5))
            .error_handler(Box::new(ConnectFailed))
            .build_unchecked(PgManager::new(&target));
        // The first connection is opened here, so that a refusal (TLS, a password) is said
        // as itself rather than as a pool that timed out.
        let mut first = target
            .connect()
            .map_err(|e| DbError::Connect(target.explain(&e)))?;
        let security = security(&mut first, &target)?;
        super::migrations::apply_postgres(&mut first)?;
        drop(first);
        let stats = Arc::new(WriterStats::default());
        let (queue, queued) = mpsc::channel(settings.queue.max(1));
        pg_batch::start(&pool, queued, &stats).map_err(DbError::Thread)?;
        Ok(Self {
            pool,
            security,
            stats,
            queue,
        })
    }

    /// "encrypted (TLSv1.3; sslmode=verify-full: certificate and host name checked against
    /// ca.pem)", or why not.
    pub fn security(&self) -> (&str, bool) {
        (&self.security.0, self.security.1)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Writes waiting for a writer thread, not counting the batches running.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Runs `work` in the next batch (see `pg_batch`) and answers once it is committed;
    /// `wait` false answers `Busy` at once when too many writes are waiting already.
    pub async fn write<T, F>(&self, work: F, wait: bool) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnMut(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        let (write, answer) = pg_batch::Write::new(work);
        let write: Queued = Box::new(write);
        super::writer::enqueue(&self.queue, write, wait).await?;
        // A write is dropped unanswered only when its thread panicked.
        answer.await.unwrap_or(Err(WriteError::Panicked))
    }
}

/// Whether `client`'s connection is encrypted, as the server sees it.
fn security(client: &mut postgres::Client, target: &PgTarget) -> Result<(Arc<str>, bool), DbError> {
    let row = client.query_opt(
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )?;
    let tls: Option<(bool, Option<String>)> = row.map(|row| (row.get(0), row.get(1)));
    let encrypted = matches!(tls, Some((true, _)));
    let text = match tls {
        Some((true, version)) => format!(
            "encrypted ({}; {})",
            version.unwrap_or_else(|| "TLS".into()),
            target.checked()
        ),
        _ if target.mode() == SslMode::Prefer => format!(
            "not encrypted: the server offered no TLS ({}; require it with sslmode=verify-full)",
            target.checked()
        ),
        _ => format!("not encrypted ({})", target.checked()),
    };
    Ok((text.into(), !encrypted && !target.is_local()))
}

/// Runs `read` on a pooled connection, outside any transaction; blocks. Not on an async
/// thread: the synchronous client runs a runtime of its own, which cannot start there (call
/// it through `Store::read` or `spawn_blocking`).
pub fn read<T: Send>(
    pool: &PgPool,
    read: impl FnOnce(&Conn) -> Result<T, DbError> + Send,
) -> Result<T, DbError> {
    let mut conn = pool.get().map_err(DbError::PgPool)?;
    let (client, cache) = conn.split();
    read(&Conn::postgres(client, cache))
}
