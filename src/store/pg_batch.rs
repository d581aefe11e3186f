//! PostgreSQL's group commit: a few writer threads, each taking the writes waiting and
//! committing them together in one transaction, so a batch costs one WAL flush and one
//! BEGIN/COMMIT instead of one per write.
//!
//! As on SQLite, each write runs inside a savepoint of its own: one that fails is rolled back
//! alone, and nobody is answered before the batch's COMMIT returns. Two things differ:
//! - Batches run at once, on other threads and other instances, and each holds every lock its
//!   writes took until it commits; a write that waited for another batch's lock could
//!   deadlock with it. So in a batch `Conn::lock` never waits (`sql::Batched`), row locks wait
//!   at most `LOCK_TIMEOUT`, and a write refused either way, or rolled back by the server to
//!   break a deadlock, is set aside and run again alone once its batch has committed, in a
//!   transaction of its own that may wait (and is run again should it deadlock there).
//! - A batch takes at most `MAX_BATCH` writes: each savepoint that writes is a
//!   subtransaction, and past 64 in one transaction PostgreSQL's snapshots overflow their
//!   cache and every session's visibility checks slow down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::writer::{begin_noting, forget_noted_from, noted_len, take_noted};
use super::{Conn, DbError, WriteError, WriterStats};
use crate::db::sql::{Batched, PgConn, PgPool};

/// Writes committed together at most (see the module's note on subtransactions).
pub const MAX_BATCH: usize = 48;
/// Writer threads, each with a connection of the pool while it runs a batch.
pub const WRITERS: usize = 4;
/// How many times a write run alone that deadlocked is run in all.
const ATTEMPTS: u32 = 12;
/// How long a write in a batch waits for a row another transaction locked before it is set
/// aside.
const LOCK_TIMEOUT: &str = "200ms";

/// A write waiting for its batch: run (perhaps more than once), then answered once.
pub(super) trait Pending: Send {
    /// Runs the write on `conn`, keeping what it answers.
    fn run(&mut self, conn: &Conn) -> Result<(), DbError>;
    /// Answers the write: with what it kept, once its transaction committed, or the error.
    fn answer(self: Box<Self>, outcome: Result<(), WriteError>);
}

/// `work` and where its answer goes.
pub(super) struct Write<T, F> {
    work: F,
    value: Option<T>,
    tell: oneshot::Sender<Result<T, WriteError>>,
}

impl<T, F> Write<T, F> {
    pub(super) fn new(work: F) -> (Self, oneshot::Receiver<Result<T, WriteError>>) {
        let (tell, answer) = oneshot::channel();
        let write = Self {
            work,
            value: None,
            tell,
        };
        (write, answer)
    }
}

impl<T, F> Pending for Write<T, F>
where
    T: Send,
    F: FnMut(&Conn) -> Result<T, DbError> + Send,
{
    fn run(&mut self, conn: &Conn) -> Result<(), DbError> {
        self.value = None;
        self.value = Some((self.work)(conn)?);
        Ok(())
    }

    fn answer(self: Box<Self>, outcome: Result<(), WriteError>) {
        let Self { value, tell, .. } = *self;
        let answer = outcome.and_then(|()| value.ok_or(WriteError::Panicked));
        let _ = tell.send(answer);
    }
}

pub(super) type Queued = Box<dyn Pending>;

/// Starts `WRITERS` threads taking writes from `queue`, on connections of `pool`.
pub(super) fn start(
    pool: &PgPool,
    queue: mpsc::Receiver<Queued>,
    stats: &Arc<WriterStats>,
) -> std::io::Result<()> {
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..WRITERS {
        let (pool, queue, stats) = (pool.clone(), Arc::clone(&queue), Arc::clone(stats));
        std::thread::Builder::new()
            .name(format!("momentline-pg-writer-{n}"))
            .spawn(move || run(&pool, &queue, &stats))?;
    }
    Ok(())
}

fn run(pool: &PgPool, queue: &Mutex<mpsc::Receiver<Queued>>, stats: &WriterStats) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while take(queue, &mut batch) {
        let size = batch.len() as u64;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(size, Ordering::Relaxed);
        stats.largest_batch.fetch_max(size, Ordering::Relaxed);
        stats.batch_sizes.observe(size as f64);
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(e) => {
                // The server unreachable, or every connection busy: the store says an
                // outage once.
                tracing::debug!(error = %e, writes = size, "no PostgreSQL connection for a write batch");
                let e = Arc::new(DbError::PgPool(e));
                for write in batch.drain(..) {
                    write.answer(Err(WriteError::Commit(Arc::clone(&e))));
                }
                continue;
            }
        };
        let aside = commit(&mut conn, batch.drain(..), stats);
        for mut write in aside {
            let ran = alone(&mut conn, write.as_mut(), stats);
            write.answer(ran);
        }
    }
    tracing::debug!("PostgreSQL writer stopped: every handle is gone");
}

/// Fills `batch` with the writes waiting, at least one; `false` once the queue is closed.
fn take(queue: &Mutex<mpsc::Receiver<Queued>>, batch: &mut Vec<Queued>) -> bool {
    let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(first) = queue.blocking_recv() else {
        return false;
    };
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(write) => batch.push(write),
            Err(_) => break,
        }
    }
    true
}

/// Runs `batch` in one transaction and answers what it committed or refused; answers the
/// writes set aside to run alone.
fn commit(
    conn: &mut PgConn,
    batch: impl ExactSizeIterator<Item = Queued>,
    stats: &WriterStats,
) -> Vec<Queued> {
    let (client, mut cache) = conn.split();
    let batched = Batched::default();
    let mut kept = Vec::with_capacity(batch.len());
    let mut refused = Vec::new();
    let mut aside = Vec::new();
    let mut broken = None;
    // Each write's savepoint is set in the round trip that ends the one before it.
    let mut next = format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; \
         SAVEPOINT write"
    );
    let mut statements = 0;
    begin_noting();
    for mut write in batch {
        if broken.is_some() {
            aside.push(write);
            continue;
        }
        if let Err(e) = postgres::GenericClient::batch_execute(client, &next) {
            broken = Some(DbError::from(e));
            aside.push(write);
            continue;
        }
        statements += 1;
        let mark = noted_len();
        let ran = {
            let conn = Conn::postgres_batched(client, cache.reborrow(), &batched);
            let ran = catch_unwind(AssertUnwindSafe(|| write.run(&conn)));
            statements += conn.statements();
            ran
        };
        next = match ran {
            Ok(Ok(())) => {
                kept.push(write);
                "RELEASE write; SAVEPOINT write".into()
            }
            Ok(Err(e)) => {
                forget_noted_from(mark);
                match crate::db::set_aside(&e) {
                    true => aside.push(write),
                    false => refused.push((write, WriteError::Failed(e))),
                }
                // Rolled back, the savepoint stays for the next write.
                "ROLLBACK TO write".into()
            }
            Err(_) => {
                forget_noted_from(mark);
                tracing::error!("a write panicked; it was rolled back alone");
                refused.push((write, WriteError::Panicked));
                "ROLLBACK TO write".into()
            }
        };
    }
    let outcome = match broken {
        Some(e) => Err(e),
        None => {
            statements += 1;
            postgres::GenericClient::batch_execute(client, &format!("{next}; COMMIT"))
                .map_err(DbError::from)
        }
    };
    stats.statements.fetch_add(statements, Ordering::Relaxed);
    let noted = take_noted();
    for (write, e) in refused {
        write.answer(Err(e));
    }
    match outcome {
        Ok(()) => {
            for labels in noted {
                stats.transitions.with_label_values(&labels).inc();
            }
            for write in kept {
                write.answer(Ok(()));
            }
            aside
        }
        Err(e) => {
            if e.is_transient() {
                tracing::debug!(error = %e, writes = kept.len(), "a write batch failed; rolled back");
            } else {
                tracing::error!(error = %crate::telemetry::error_chain(&e), writes = kept.len(), "a write batch failed; rolled back");
            }
            let _ = postgres::GenericClient::batch_execute(client, "ROLLBACK");
            let e = Arc::new(e);
            for write in kept.into_iter().chain(aside) {
                write.answer(Err(WriteError::Commit(Arc::clone(&e))));
            }
            Vec::new()
        }
    }
}

/// Runs `write` alone, in a transaction of its own that may wait for locks; one that
/// deadlocks is rolled back and run again, a few times, after a short random wait.
fn alone(
    conn: &mut PgConn,
    write: &mut dyn Pending,
    stats: &WriterStats,
) -> Result<(), WriteError> {
    let mut attempt = 1;
    loop {
        match once(conn, write, stats) {
            Err(WriteError::Failed(e)) if crate::db::lost_race(&e) && attempt < ATTEMPTS => {
                tracing::debug!(attempt, "a write deadlocked with another; running it again");
                std::thread::sleep(backoff(attempt));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A random wait that grows with the attempt: 1–2 ms, then up to about 0.5 s.
fn backoff(attempt: u32) -> Duration {
    let mut byte = [0_u8; 2];
    let jitter = getrandom::fill(&mut byte).map_or(0, |()| u64::from(u16::from_le_bytes(byte)));
    let base = 1_u64 << attempt.min(8);
    Duration::from_micros(base * 1000 + jitter % (base * 1000))
}

fn once(conn: &mut PgConn, write: &mut dyn Pending, stats: &WriterStats) -> Result<(), WriteError> {
    let (client, cache) = conn.split();
    // Named, not left to the server's default: the locks are what keep writes apart.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::ReadCommitted)
        .start()
        .map_err(|e| WriteError::Failed(e.into()))?;
    begin_noting();
    let ran = {
        let conn = Conn::postgres(&mut tx, cache);
        let ran = catch_unwind(AssertUnwindSafe(|| write.run(&conn)));
        // BEGIN and COMMIT besides the write's own.
        stats
            .statements
            .fetch_add(2 + conn.statements(), Ordering::Relaxed);
        ran
    };
    let noted = take_noted();
    match ran {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = tx.rollback();
            return Err(WriteError::Failed(e));
        }
        Err(_) => {
            tracing::error!("a write panicked; it was rolled back");
            let _ = tx.rollback();
            return Err(WriteError::Panicked);
        }
    }
    tx.commit().map_err(|e| WriteError::Failed(e.into()))?;
    for labels in noted {
        stats.transitions.with_label_values(&labels).inc();
    }
    Ok(())
}
