//! Following a text `dev text` played: its answers printed as they are sent, what is still
//! on their way said while it lasts, and why following stopped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{awaited, DevError};
use crate::config::Settings;
use crate::db::progress::{self, Answer, MomentProgress, Received};
use crate::db::sql::{PgConn, PgTarget};
use crate::db::Conn;
use crate::domain::ids::MomentId;
use crate::domain::MessageState;
use crate::store::{Database, DbError};

/// A text `dev text` played, as it follows it.
pub(super) struct Followed {
    /// The provider's name and its id of the text.
    pub(super) provider: &'static str,
    pub(super) id: String,
    pub(super) phone: String,
    /// How long to follow it at most.
    pub(super) wait: Duration,
    /// How long before the text a Moment it joined may have been recorded.
    pub(super) merge_window: chrono::Duration,
    /// Whether the server has fetched the attached file, if there is one.
    pub(super) fetched: Option<Arc<AtomicBool>>,
}

/// Prints momentline's answers to the text as they are sent, and what is still on their way
/// while it lasts, until nothing is (or only a retry after the wait), or the wait is over.
pub(super) async fn follow(settings: &Settings, followed: Followed) -> Result<(), DevError> {
    if followed.wait.is_zero() {
        return Ok(());
    }
    // Polled with a blocking client (PostgreSQL's cannot run on an async thread), off the
    // async threads, which meanwhile serve the media file.
    let database = settings.database();
    tokio::task::spawn_blocking(move || match database {
        Database::Sqlite(path) => {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(DbError::from)?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(DbError::from)?;
            Follower::new(followed).run(&Conn::sqlite(&conn))
        }
        Database::Postgres(url) => {
            let target = PgTarget::parse(&url).map_err(DbError::Connect)?;
            let client = target
                .connect()
                .map_err(|e| DbError::Connect(target.explain(&e)))?;
            let mut conn = PgConn::new(client);
            let (client, cache) = conn.split();
            Follower::new(followed).run(&Conn::postgres(client, cache))
        }
    })
    .await
    .map_err(|e| DbError::Task(e.to_string()))?
}

/// How often the database is looked at.
const POLL: Duration = Duration::from_millis(200);
/// How long a short wait lasts before it is said.
const SAY_AFTER: Duration = Duration::from_secs(1);
/// How long a text that seems to have set nothing going is still looked at: it may have
/// joined a Moment further back than this command's merge window (the server's may be
/// longer), whose link is about to be queued.
const QUIET_FOR: Duration = Duration::from_secs(2);

/// How following a text ended.
enum Ended {
    /// Nothing more is on its way.
    Done,
    /// Only retries after the wait are left: what the first is.
    Later(String),
    /// The wait is over with this still on its way.
    GaveUp(String),
}

/// `follow`'s polling, on a connection to either engine; blocks.
struct Follower {
    followed: Followed,
    started: Instant,
    /// Answers printed so far.
    printed: usize,
    /// Failures said so far.
    failures: Vec<awaited::Failure>,
    /// The wait last said.
    said: Option<awaited::Wait>,
    /// The wait the last look saw, and since when it has been seen.
    seen: Option<(awaited::Wait, Instant)>,
    /// The Moments of earlier texts seen on their way: one the text joined. Others, long
    /// settled, are not the text's.
    joined: HashSet<MomentId>,
}

impl Follower {
    fn new(followed: Followed) -> Self {
        Self {
            followed,
            started: Instant::now(),
            printed: 0,
            failures: Vec::new(),
            said: None,
            seen: None,
            joined: HashSet::new(),
        }
    }

    fn run(mut self, conn: &Conn) -> Result<(), DevError> {
        let received = self.received(conn)?;
        let ended = match received {
            Some(received) => self.poll(conn, received)?,
            None => Ended::GaveUp("the server has not recorded the text".into()),
        };
        self.say_end(&ended);
        Ok(())
    }

    /// The text as the server recorded it, once it has (its 200 says it has: looked for
    /// until the wait is over all the same).
    fn received(&self, conn: &Conn) -> Result<Option<Received>, DevError> {
        loop {
            let found = progress::received(conn, self.followed.provider, &self.followed.id)?;
            if found.is_some() || self.started.elapsed() >= self.followed.wait {
                return Ok(found);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Looks at the text's progress until the outcome is known or the wait is over.
    fn poll(&mut self, conn: &Conn, received: Received) -> Result<Ended, DevError> {
        let deadline = chrono::Utc::now()
            + chrono::Duration::from_std(self.followed.wait.saturating_sub(self.started.elapsed()))
                .unwrap_or_default();
        loop {
            let now = chrono::Utc::now();
            let mut progress = progress::of_text(
                conn,
                &self.followed.phone,
                received,
                self.followed.merge_window,
            )?;
            self.keep_its_moments(&mut progress.moments, received);
            self.print_sent(&progress.answers);
            let look = awaited::look(&progress, now);
            self.say_failures(&look.failures);
            let Some(first) = look.waits.first() else {
                if self.quiet() && self.started.elapsed() < QUIET_FOR {
                    std::thread::sleep(POLL);
                    continue;
                }
                self.print_queued(&progress.answers);
                return Ok(Ended::Done);
            };
            if look.only_later_than(deadline) {
                self.print_queued(&progress.answers);
                return Ok(Ended::Later(first.words(now)));
            }
            if self.started.elapsed() >= self.followed.wait {
                self.print_queued(&progress.answers);
                return Ok(Ended::GaveUp(first.words(now)));
            }
            self.say_wait(first, now);
            std::thread::sleep(POLL);
        }
    }

    /// Keeps the text's own Moments, and those of earlier texts that are (or were, at an
    /// earlier look) on their way.
    fn keep_its_moments(&mut self, moments: &mut Vec<MomentProgress>, received: Received) {
        for moment in moments.iter().filter(|m| awaited::in_progress(m)) {
            self.joined.insert(moment.id);
        }
        moments.retain(|m| m.message == received.id || self.joined.contains(&m.id));
    }

    /// Prints the answers sent (or given up on) since the last look, in order: a queued one
    /// holds back those after it.
    fn print_sent(&mut self, answers: &[Answer]) {
        for answer in answers.iter().skip(self.printed) {
            if answer.state == MessageState::Unconfirmed {
                break;
            }
            self.print(answer);
        }
    }

    /// Prints the answers still queued when following ends.
    fn print_queued(&mut self, answers: &[Answer]) {
        for answer in answers.iter().skip(self.printed) {
            self.print(answer);
        }
    }

    fn print(&mut self, answer: &Answer) {
        let state = match (&answer.state, &answer.error) {
            (MessageState::Error, Some(error)) => format!("not sent: {error}"),
            (state, _) => state.in_words().to_owned(),
        };
        println!(
            "momentline -> {} ({state}): {}",
            self.followed.phone, answer.body
        );
        self.printed += 1;
    }

    /// Says each failure once, and what playing a photo from this machine needs when the
    /// server never fetched the file.
    fn say_failures(&mut self, failures: &[awaited::Failure]) {
        for failure in failures {
            if self.failures.contains(failure) {
                continue;
            }
            eprintln!("{}", failure.words);
            let fetched = self
                .followed
                .fetched
                .as_ref()
                .map(|f| f.load(Ordering::SeqCst));
            if failure.media && fetched == Some(false) {
                eprintln!(
                    "The server has not fetched the attached file. It fetches media only from \
                     public addresses unless started with MOMENTLINE_MEDIA_ALLOW_PRIVATE=1, which \
                     playing a photo from this machine needs."
                );
            }
            self.failures.push(failure.clone());
        }
    }

    /// Says what is awaited when it changes: a long wait at once, a short one once it has
    /// lasted `SAY_AFTER`.
    fn say_wait(&mut self, wait: &awaited::Wait, now: chrono::DateTime<chrono::Utc>) {
        let since = match &self.seen {
            Some((seen, since)) if seen.same_as(wait) => *since,
            _ => Instant::now(),
        };
        self.seen = Some((wait.clone(), since));
        let said = self.said.as_ref().is_some_and(|s| s.same_as(wait));
        if !said && (wait.is_long() || since.elapsed() >= SAY_AFTER) {
            eprintln!("… {}", wait.words(now));
            self.said = Some(wait.clone());
        }
    }

    /// Whether nothing has been printed or said of the text yet.
    fn quiet(&self) -> bool {
        self.printed == 0 && self.failures.is_empty()
    }

    /// Says why following the text stopped, unless its answers or failures said it.
    fn say_end(&self, ended: &Ended) {
        match ended {
            Ended::Done if self.quiet() => {
                eprintln!("(momentline sent no answer to this text, and none is on its way)");
            }
            Ended::Done => {}
            Ended::Later(wait) => eprintln!(
                "Stopped waiting: {wait}. `GET /api/messages` shows the conversation as it goes."
            ),
            Ended::GaveUp(wait) => eprintln!(
                "Stopped waiting after {} s (--wait): {wait}. `GET /api/messages` shows the \
                 conversation as it goes.",
                self.followed.wait.as_secs()
            ),
        }
    }
}
