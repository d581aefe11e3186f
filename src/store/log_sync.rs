//! A committed batch made durable before its writes are answered, off the writer's path.
//!
//! The writer's connection commits at `synchronous = NORMAL`: a COMMIT appends the batch to
//! the write-ahead log (the operating system holds it, so a crash of the process loses
//! nothing) without waiting for the disk. A thread of its own then syncs the log file, once
//! for every batch committed since its last sync, and only then answers those batches'
//! writes, in the order they committed. So the writer runs its next batch while the disk
//! takes the last one, and an answer still means the write survives a power cut.
//!
//! Until its sync returns, a batch can be read (a `GET` may show it) though it is not yet on
//! disk. Nothing leaves the process because of it: a job is claimed in a later batch, whose
//! answer waits for a sync that covers this one too.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use super::{DbError, WriteError};

/// How a write is answered, once its batch is durable or could not be made so.
pub(super) type Answer = Box<dyn FnOnce(Result<(), WriteError>) + Send>;

/// Batches committed and waiting for their sync, at most: past this the writer waits.
const WAITING: usize = 64;

/// The sync thread: given a committed batch's answers, it syncs the log, then answers.
pub(super) struct Durable(SyncSender<Vec<Answer>>);

impl Durable {
    /// Syncs the write-ahead log of the database at `database` (its `-wal` file, which must
    /// exist), after syncing the directory once so that the log's own name is on disk.
    pub(super) fn log(database: &Path) -> std::io::Result<Self> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let wal = File::options().read(true).write(true).open(&wal)?;
        // A bare file name is in the working directory.
        let dir = match database.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
        Self::start(move || wal.sync_data())
    }

    /// Starts the sync thread with `sync`, which makes everything committed so far durable.
    pub(super) fn start(
        sync: impl FnMut() -> std::io::Result<()> + Send + 'static,
    ) -> std::io::Result<Self> {
        let (committed, waiting) = std::sync::mpsc::sync_channel(WAITING);
        std::thread::Builder::new()
            .name("momentline-log-sync".into())
            .spawn(move || run(sync, &waiting))?;
        Ok(Self(committed))
    }

    /// Answers a committed batch's writes once it is durable.
    pub(super) fn answer(&self, answers: Vec<Answer>) {
        if let Err(std::sync::mpsc::SendError(answers)) = self.0.send(answers) {
            // The sync thread is gone (it panicked): whether the batch is on disk is unknown.
            let e = std::io::Error::other("the write-ahead log's sync thread stopped");
            answer_all(answers, &Err(Arc::new(DbError::Sync(e))));
        }
    }
}

fn run(mut sync: impl FnMut() -> std::io::Result<()>, waiting: &Receiver<Vec<Answer>>) {
    while let Ok(first) = waiting.recv() {
        let mut answers = first;
        while let Ok(more) = waiting.try_recv() {
            answers.extend(more);
        }
        match sync() {
            Ok(()) => answer_all(answers, &Ok(())),
            Err(e) => {
                // Committed, and readable, but perhaps not on disk: nobody is told it is
                // done. A request asked again finds what did commit.
                tracing::error!(error = %e, writes = answers.len(),
                    "could not sync the write-ahead log; its writes are answered as failed");
                answer_all(answers, &Err(Arc::new(DbError::Sync(e))));
            }
        }
    }
}

fn answer_all(answers: Vec<Answer>, outcome: &Result<(), Arc<DbError>>) {
    for answer in answers {
        answer(outcome.clone().map_err(WriteError::Commit));
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::Writer;
    use super::*;
    use std::time::Duration;

    /// A writer on an in-memory database whose syncs each wait for a word on the returned
    /// channel, and fail when it is `false`.
    fn gated() -> (Writer, std::sync::mpsc::Sender<bool>) {
        let (open, gate) = std::sync::mpsc::channel::<bool>();
        let durable = Durable::start(move || match gate.recv() {
            Ok(true) => Ok(()),
            _ => Err(std::io::Error::other("the disk went away")),
        })
        .expect("sync thread");
        let (nudge, _nudges) = std::sync::mpsc::sync_channel(1);
        let conn = rusqlite::Connection::open_in_memory().expect("database");
        let writer = Writer::start(conn, 8, 8, nudge, durable).expect("writer");
        (writer, open)
    }

    #[tokio::test]
    async fn a_write_is_answered_only_once_the_log_is_synced() {
        let (writer, open) = gated();
        let write = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(|c| c.execute_batch("CREATE TABLE t (x)"), false)
                    .await
            }
        });
        // Committed, but the sync has not returned: no answer yet.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!write.is_finished(), "answered before the log was synced");
        open.send(true).expect("gate");
        let answered = write.await.expect("task");
        assert!(answered.is_ok(), "{answered:?}");
    }

    #[tokio::test]
    async fn a_failed_sync_answers_its_writes_with_the_failure() {
        let (writer, open) = gated();
        open.send(false).expect("gate");
        let answered = writer
            .write(|c| c.execute_batch("CREATE TABLE t (x)"), false)
            .await;
        match answered {
            Err(e @ WriteError::Commit(_)) => assert!(e.may_pass(), "{e:?}"),
            other => panic!("expected the sync's failure, got {other:?}"),
        }
    }
}
