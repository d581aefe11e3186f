//! One server per SQLite file: `serve` holds an exclusive lock on `{database}.lock` for as
//! long as it runs, and writes its process id and address into it, so a second one is
//! refused at once with who holds the file. The lock is the operating system's (`flock`):
//! it goes with the process, however the process ends. PostgreSQL takes several instances
//! and needs none.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock a running server holds on its database file.
#[derive(Debug)]
pub struct ServerLock {
    file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another momentline serves {database} ({holder}): stop it first, or give this one \
         another MOMENTLINE_DB (one server per SQLite file; several instances share \
         PostgreSQL instead)"
    )]
    Held { database: String, holder: String },
    #[error("could not lock {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ServerLock {
    /// Takes the lock beside `database`, or answers who holds it.
    pub fn take(database: &Path) -> Result<Self, LockError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Never truncated on open: the holder's words stay readable.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut said = String::new();
                let _ = file.read_to_string(&mut said);
                let holder = said.split_whitespace().collect::<Vec<_>>().join(" ");
                return Err(LockError::Held {
                    database: database.display().to_string(),
                    holder: if holder.is_empty() {
                        "a process that has not said which yet".into()
                    } else {
                        holder
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let lock = Self { file, path };
        lock.say(&format!("pid {}", std::process::id()))?;
        Ok(lock)
    }

    /// Writes who holds the lock, once the server listens: its process id and address.
    pub fn say_address(&self, address: &str) -> Result<(), LockError> {
        self.say(&format!(
            "pid {}, listening on {address}",
            std::process::id()
        ))
    }

    fn say(&self, words: &str) -> Result<(), LockError> {
        let io = |source| LockError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut file = &self.file;
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(words.as_bytes()).map_err(io)?;
        file.flush().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_file_is_refused_naming_the_holder_until_the_first_goes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("m.db");
        let first = ServerLock::take(&db).expect("the first takes it");
        first.say_address("127.0.0.1:8080").expect("says");
        match ServerLock::take(&db) {
            Err(LockError::Held { holder, .. }) => assert_eq!(
                holder,
                format!("pid {}, listening on 127.0.0.1:8080", std::process::id())
            ),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(ServerLock::take(&db).is_ok(), "free once the first is gone");
    }
}
