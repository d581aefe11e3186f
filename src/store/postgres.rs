//! The PostgreSQL engine: several momentline instances on one database.
//!
//! Each write is a transaction of its own on a pooled connection, at READ COMMITTED. What
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
//! instances (or two writes of one) take turns. A write that deadlocks is rolled back and run
//! again from the start, a few times, after a short random wait. Group commit is the server's
//! own business.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::writer::{begin_noting, take_noted};
use super::{Conn, DbError, WriteError, WriterSettings, WriterStats};
use crate::db::sql::{PgConn, PgManager, PgPool, PgTarget, SslMode};

/// Connections in the pool: writes and reads share it.
const CONNECTIONS: u32 = 16;
/// How many times a write that deadlocked is run in all.
const ATTEMPTS: u32 = 12;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Whether the connection is encrypted and what was checked, for the start-up summary,
    /// and whether that is worth a warning (not encrypted, over a network).
    security: (Arc<str>, bool),
    stats: Arc<WriterStats>,
    /// Writes waiting for a connection or running.
    waiting: Arc<AtomicUsize>,
    /// Past this many waiting, `write` answers `Busy`.
    queue: usize,
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
        Ok(Self {
            pool,
            security,
            stats: Arc::new(WriterStats::default()),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue: settings.queue,
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

    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `work` in a transaction of its own; `wait` false answers `Busy` at once when too
    /// many writes are waiting already.
    pub async fn write<T, F>(&self, mut work: F, wait: bool) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnMut(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        let before = self.waiting.fetch_add(1, Ordering::Relaxed);
        let _left = Left(Arc::clone(&self.waiting));
        if !wait && before >= self.queue {
            return Err(WriteError::Busy);
        }
        let pool = self.pool.clone();
        let stats = Arc::clone(&self.stats);
        tokio::task::spawn_blocking(move || {
            let mut conn = connection(&pool, wait)?;
            let mut attempt = 1;
            loop {
                match run_once(&mut conn, &mut work, &stats) {
                    Err(WriteError::Failed(e))
                        if crate::db::lost_race(&e) && attempt < ATTEMPTS =>
                    {
                        tracing::debug!(
                            attempt,
                            "a write deadlocked with another; running it again"
                        );
                        std::thread::sleep(backoff(attempt));
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
        .unwrap_or(Err(WriteError::Panicked))
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

/// Times a waiting write asks the pool for a connection (5 s each) before it fails.
const CONNECTION_TRIES: u32 = 6;

/// A pooled connection. A write that waits (a job's outcome, a renewal) asks again while
/// every connection is busy (writes waiting for a number hold theirs), up to 30 s.
fn connection(pool: &PgPool, wait: bool) -> Result<r2d2::PooledConnection<PgManager>, WriteError> {
    let mut tries = 1;
    loop {
        match pool.get() {
            Ok(conn) => return Ok(conn),
            Err(e) if wait && tries < CONNECTION_TRIES => {
                // Every connection busy, or the server unreachable: an outage is said once
                // by the store.
                tracing::debug!(error = %e, tries, "no PostgreSQL connection free yet; waiting");
                tries += 1;
            }
            Err(e) => return Err(WriteError::Failed(DbError::PgPool(e))),
        }
    }
}

/// Counts a write out of `waiting` however it ends.
struct Left(Arc<AtomicUsize>);

impl Drop for Left {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A random wait that grows with the attempt: 1–2 ms, then up to about 0.5 s.
fn backoff(attempt: u32) -> Duration {
    let mut byte = [0_u8; 2];
    let jitter = getrandom::fill(&mut byte).map_or(0, |()| u64::from(u16::from_le_bytes(byte)));
    let base = 1_u64 << attempt.min(8);
    Duration::from_micros(base * 1000 + jitter % (base * 1000))
}

fn run_once<T, F>(conn: &mut PgConn, work: &mut F, stats: &WriterStats) -> Result<T, WriteError>
where
    F: FnMut(&Conn) -> Result<T, DbError>,
{
    let (client, cache) = conn.split();
    // Named, not left to the server's default: the locks above are what keep writes apart.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::ReadCommitted)
        .start()
        .map_err(|e| WriteError::Failed(e.into()))?;
    begin_noting();
    let ran = {
        let conn = Conn::postgres(&mut tx, cache);
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&conn)));
        // BEGIN and COMMIT besides the write's own.
        stats
            .statements
            .fetch_add(2 + conn.statements(), Ordering::Relaxed);
        ran
    };
    let noted = take_noted();
    let value = match ran {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => {
            let _ = tx.rollback();
            return Err(WriteError::Failed(e));
        }
        Err(_) => {
            tracing::error!("a write panicked; it was rolled back");
            let _ = tx.rollback();
            return Err(WriteError::Panicked);
        }
    };
    tx.commit().map_err(|e| WriteError::Failed(e.into()))?;
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.writes.fetch_add(1, Ordering::Relaxed);
    stats.largest_batch.fetch_max(1, Ordering::Relaxed);
    stats.batch_sizes.observe(1.0);
    for labels in noted {
        stats.transitions.with_label_values(&labels).inc();
    }
    Ok(value)
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
