//! The one writer: a thread that owns the only writing SQLite connection and commits the
//! writes of everyone waiting together (group commit), so one fsync covers a whole batch.
//!
//! Each write runs inside its own SAVEPOINT: one that fails is rolled back alone and answered
//! with its own error, while the rest of its batch commits. Nobody is answered before the
//! batch's COMMIT returns and the log holding it is synced (`log_sync`), so an answer means
//! the write is on disk.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::log_sync::{Answer, Durable};
use super::{Conn, DbError};
use crate::metrics::WriterStats;

/// Why a write did not happen. Nothing of a write that failed is kept.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The queue is full: the caller should ask its client to come back shortly.
    #[error("the write queue is full")]
    Busy,
    /// The writer has stopped (the process is shutting down).
    #[error("the writer has stopped")]
    Stopped,
    /// The write itself failed, and was rolled back alone.
    #[error("the write failed")]
    Failed(#[source] DbError),
    /// The write ran (or was to run), but its batch could not be committed.
    #[error("the batch could not be committed")]
    Commit(#[source] Arc<DbError>),
    /// The write panicked, and was rolled back alone.
    #[error("the write panicked")]
    Panicked,
    /// The write did not commit in time for the request waiting on it; it may still commit.
    #[error("the write did not commit within {} s", super::REQUEST_WRITE_DEADLINE.as_secs())]
    Late,
}

impl WriteError {
    /// Whether the same write may pass if asked again shortly: the database or its queue was
    /// unavailable, not the write wrong.
    pub fn may_pass(&self) -> bool {
        match self {
            Self::Failed(db) => db.is_transient(),
            Self::Commit(e) => e.is_transient(),
            Self::Busy | Self::Late => true,
            Self::Stopped | Self::Panicked => false,
        }
    }
}

/// What a write leaves for after the commit: whether to keep it, and how to answer.
struct Ran {
    keep: bool,
    /// Statements the write ran.
    statements: u64,
    answer: Answer,
}

/// A queued write: given the connection it runs; given `None` (its batch could not begin) it
/// only prepares its answer.
type Work = Box<dyn FnOnce(Option<&Connection>) -> Ran + Send>;

/// Commits between two nudges to the checkpointer.
const NUDGE_EVERY: u64 = 100;

thread_local! {
    /// On a writer's thread, the number state changes of the batch being written: counted
    /// once it commits, forgotten with a write rolled back. Elsewhere `None`.
    static NOTED: RefCell<Option<Vec<[&'static str; 3]>>> = const { RefCell::new(None) };
}

/// Notes that the write running changed a number's state from `from` to `to` because of
/// `cause`; it is counted in `WriterStats::transitions` when (and only if) it commits.
pub fn note_transition(from: &'static str, to: &'static str, cause: &'static str) {
    NOTED.with(|noted| {
        if let Some(noted) = noted.borrow_mut().as_mut() {
            noted.push([from, to, cause]);
        }
    });
}

/// Starts keeping the state changes noted on this thread (a PostgreSQL write's).
pub(crate) fn begin_noting() {
    NOTED.with(|noted| *noted.borrow_mut() = Some(Vec::new()));
}

/// The state changes noted on this thread since `begin_noting`; stops keeping them.
pub(crate) fn take_noted() -> Vec<[&'static str; 3]> {
    NOTED.with(|noted| noted.borrow_mut().take().unwrap_or_default())
}

pub(super) fn noted_len() -> usize {
    NOTED.with(|noted| noted.borrow().as_ref().map_or(0, Vec::len))
}

pub(super) fn forget_noted_from(mark: usize) {
    NOTED.with(|noted| {
        if let Some(noted) = noted.borrow_mut().as_mut() {
            noted.truncate(mark);
        }
    });
}

/// A handle to the writer; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Work>,
    stats: Arc<WriterStats>,
}

impl Writer {
    /// Starts the writer thread on `conn`. At most `queue` writes wait; each batch takes at
    /// most `batch` of them. The thread ends once every handle is dropped and the queue is
    /// empty.
    /// Every `NUDGE_EVERY` commits it nudges `committed` (without waiting), so a busy log
    /// gets copied into the database sooner than the checkpointer's own pace. A committed
    /// batch is answered as `durable` says.
    pub(super) fn start(
        conn: Connection,
        queue: usize,
        batch: usize,
        committed: std::sync::mpsc::SyncSender<()>,
        durable: Durable,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(queue.max(1));
        let stats = Arc::new(WriterStats::default());
        let thread_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("momentline-writer".into())
            .spawn(move || {
                run(
                    conn,
                    receiver,
                    batch.max(1),
                    &thread_stats,
                    &committed,
                    &durable,
                );
            })?;
        Ok(Self {
            queue: sender,
            stats,
        })
    }

    /// Runs `work` in the next batch and answers once that batch is committed. With `wait`
    /// false a full queue is `WriteError::Busy` at once; with `wait` it waits for room: for
    /// work that has nobody to send back (a job's outcome), where a refusal would only mean
    /// doing it again later.
    pub async fn write<T, F>(&self, work: F, wait: bool) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T, DbError> + Send + 'static,
    {
        let (tell, answer) = oneshot::channel();
        let job: Work = Box::new(move |conn: Option<&Connection>| {
            let Some(conn) = conn else {
                return Ran {
                    keep: false,
                    statements: 0,
                    answer: Box::new(move |refused| {
                        let _ = tell.send(refused.and(Err(WriteError::Stopped)));
                    }),
                };
            };
            let conn = Conn::sqlite(conn);
            let ran = work(&conn);
            let statements = conn.statements();
            match ran {
                Ok(value) => Ran {
                    keep: true,
                    statements,
                    answer: Box::new(move |committed| {
                        let _ = tell.send(committed.map(|()| value));
                    }),
                },
                Err(e) => Ran {
                    keep: false,
                    statements,
                    answer: Box::new(move |_| {
                        let _ = tell.send(Err(WriteError::Failed(e)));
                    }),
                },
            }
        });
        enqueue(&self.queue, job, wait).await?;
        // The job is dropped unanswered only when it panicked.
        answer.await.unwrap_or(Err(WriteError::Panicked))
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Writes waiting for the writer, not counting the batch it is running.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Puts `job` in a writer's `queue`: with `wait`, once there is room; without, at once or
/// `WriteError::Busy`.
pub(super) async fn enqueue<J>(
    queue: &mpsc::Sender<J>,
    job: J,
    wait: bool,
) -> Result<(), WriteError> {
    if wait {
        return queue.send(job).await.map_err(|_| WriteError::Stopped);
    }
    queue.try_send(job).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => WriteError::Busy,
        mpsc::error::TrySendError::Closed(_) => WriteError::Stopped,
    })
}

fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Work>,
    cap: usize,
    stats: &WriterStats,
    committed: &std::sync::mpsc::SyncSender<()>,
    durable: &Durable,
) {
    let mut batch = Vec::with_capacity(cap);
    NOTED.with(|noted| *noted.borrow_mut() = Some(Vec::new()));
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < cap {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len() as u64;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(size, Ordering::Relaxed);
        stats.largest_batch.fetch_max(size, Ordering::Relaxed);
        stats.batch_sizes.observe(size as f64);
        let committed_ok = commit_batch(&mut conn, batch.drain(..), stats, durable);
        let noted = NOTED.with(|noted| noted.borrow_mut().as_mut().map(std::mem::take));
        if committed_ok {
            for labels in noted.unwrap_or_default() {
                stats.transitions.with_label_values(&labels).inc();
            }
        }
        if stats
            .batches
            .load(Ordering::Relaxed)
            .is_multiple_of(NUDGE_EVERY)
        {
            let _ = committed.try_send(());
        }
    }
    tracing::debug!("writer stopped: every handle is gone");
}

/// Whether the batch committed.
fn commit_batch(
    conn: &mut Connection,
    batch: impl Iterator<Item = Work>,
    stats: &WriterStats,
    durable: &Durable,
) -> bool {
    // BEGIN and COMMIT, and a SAVEPOINT and a RELEASE a write.
    let mut statements = 2;
    if !conn.is_autocommit() {
        // A ROLLBACK that failed left a transaction open: end it before anything else.
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Err(e) = run_cached(conn, "BEGIN IMMEDIATE") {
        said_once_or_error(&e, "could not begin a write batch", 0);
        let e = Arc::new(DbError::Sqlite(e));
        for job in batch {
            (job(None).answer)(Err(WriteError::Commit(Arc::clone(&e))));
        }
        return false;
    }
    let mut answers = Vec::new();
    let mut broken = None;
    for job in batch {
        if broken.is_some() {
            answers.push(job(None));
            continue;
        }
        if let Err(e) = run_cached(conn, "SAVEPOINT write") {
            broken = Some(e);
            answers.push(job(None));
            continue;
        }
        let mark = noted_len();
        let ran = catch_unwind(AssertUnwindSafe(|| job(Some(conn))));
        statements += 2 + ran.as_ref().map_or(0, |r| r.statements);
        let keep = matches!(&ran, Ok(r) if r.keep);
        if !keep {
            forget_noted_from(mark);
        }
        let closed = if keep {
            run_cached(conn, "RELEASE write")
        } else {
            run_cached(conn, "ROLLBACK TO write").and_then(|()| run_cached(conn, "RELEASE write"))
        };
        match ran {
            Ok(ran) => answers.push(ran),
            Err(_) => tracing::error!("a write panicked; it was rolled back alone"),
        }
        if let Err(e) = closed {
            broken = Some(e);
        } else if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a full disk): what the
            // batch did so far is gone, and nothing after it may commit on its own.
            broken = Some(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("the batch's transaction was rolled back by the database".into()),
            ));
        }
    }
    stats.statements.fetch_add(statements, Ordering::Relaxed);
    let outcome = match broken {
        Some(e) => Err(e),
        None => run_cached(conn, "COMMIT"),
    };
    // Answers go out only now (once the log is synced): a write answered is on disk, one
    // refused left nothing.
    match outcome {
        Ok(()) => {
            durable.answer(answers.into_iter().map(|ran| ran.answer).collect());
            true
        }
        Err(e) => {
            said_once_or_error(&e, "a write batch failed; rolled back", answers.len());
            let _ = conn.execute_batch("ROLLBACK");
            let e = Arc::new(DbError::Sqlite(e));
            for ran in answers {
                (ran.answer)(Err(WriteError::Commit(Arc::clone(&e))));
            }
            false
        }
    }
}

/// A batch that failed: when the database cannot take writes now (full, read-only, locked),
/// at debug, as the store says the outage once; anything else is an error.
fn said_once_or_error(e: &rusqlite::Error, what: &str, writes: usize) {
    if crate::db::sqlite_transient(e) {
        tracing::debug!(error = %e, writes, "{what}");
    } else {
        tracing::error!(error = %e, writes, "{what}");
    }
}

/// Runs one statement the writer runs for every batch or write, prepared once.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(stats: &WriterStats, labels: [&str; 3]) -> u64 {
        stats.transitions.with_label_values(&labels).get()
    }

    #[tokio::test]
    async fn a_state_change_is_counted_only_when_its_write_commits() {
        let (nudge, _nudges) = std::sync::mpsc::sync_channel(1);
        let conn = Connection::open_in_memory().expect("database");
        let durable = Durable::start(|| Ok(())).expect("sync thread");
        let writer = Writer::start(conn, 8, 8, nudge, durable).expect("writer");
        let kept = ["pending", "verified", "inbound"];
        let rolled_back = ["verified", "opted_out", "inbound"];
        writer
            .write(
                move |_| {
                    note_transition(kept[0], kept[1], kept[2]);
                    Ok(())
                },
                false,
            )
            .await
            .expect("committed");
        let failed = writer
            .write(
                move |c| {
                    note_transition(rolled_back[0], rolled_back[1], rolled_back[2]);
                    c.execute_batch("NOT SQL")?;
                    Ok(())
                },
                false,
            )
            .await;
        assert!(matches!(failed, Err(WriteError::Failed(_))));
        assert_eq!(counted(writer.stats(), kept), 1);
        assert_eq!(counted(writer.stats(), rolled_back), 0);
        assert_eq!(writer.stats().batch_sizes.get_sample_count(), 2);
        // Off the writer's thread nothing is kept (and nothing grows).
        note_transition(kept[0], kept[1], kept[2]);
        assert_eq!(noted_len(), 0);
    }
}
