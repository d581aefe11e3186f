//! A database that cannot take writes, said once: the first write refused is a warning with
//! its reason, the rest are counted, and the first write to commit afterwards says how long it
//! lasted and how many were refused. A write that began before the last recovery and is
//! refused after it (it waited out its deadline) belongs to the outage already said. Without
//! it a minute's outage under load is thousands of identical lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub(super) struct Outage {
    /// Whether an outage is under way: the path of every write that commits reads only this.
    down: AtomicBool,
    /// Since when, and how many writes were refused; when the last one ended.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    since: Option<(Instant, u64)>,
    recovered: Option<Instant>,
}

impl Outage {
    /// A write handed over at `began`, refused for `why`; it may pass if tried again.
    pub(super) fn refused(&self, why: &str, began: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let said = state.recovered.is_some_and(|recovered| began < recovered);
        match state.since.as_mut() {
            None if said => {
                tracing::debug!(reason = why, "a write refused by the outage just ended");
            }
            Some((_, refused)) => {
                *refused += 1;
                tracing::debug!(
                    reason = why,
                    "a write refused; the database is still failing"
                );
            }
            None => {
                tracing::warn!(
                    reason = why,
                    "the database cannot take writes now; requests that write are answered \
                     503 with Retry-After until it can (said once; its end is said too)"
                );
                state.since = Some((began, 1));
                self.down.store(true, Ordering::Release);
            }
        }
    }

    /// A write committed.
    pub(super) fn committed(&self) {
        if !self.down.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((began, refused)) = state.since.take() {
            state.recovered = Some(Instant::now());
            self.down.store(false, Ordering::Release);
            tracing::warn!(
                lasted_secs = format!("{:.1}", began.elapsed().as_secs_f64()),
                refused,
                "the database takes writes again"
            );
        }
    }
}
