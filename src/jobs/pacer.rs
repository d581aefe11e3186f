//! The pace texts go out at: at most a set number a second (`MOMENTLINE_SEND_RATE`), and
//! none at all while a provider has asked us to wait.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The longest a provider's 429 pauses every send.
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

pub struct Pacer {
    /// The time between two sends; `None` for no limit.
    interval: Option<Duration>,
    turns: Mutex<Turns>,
}

struct Turns {
    /// The earliest the next turn may be handed out for.
    next: Instant,
    /// No send starts before this: a provider asked us to wait.
    paused_until: Instant,
    /// How many pauses there have been: a send whose turn was given before a pause takes
    /// a new one after it, so the waiting sends do not all go at once when it ends.
    pauses: u64,
}

impl Pacer {
    /// `rate` texts a second at most; `None` for as fast as they come.
    pub fn new(rate: Option<f64>) -> Self {
        let now = Instant::now();
        Self {
            interval: rate
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            turns: Mutex::new(Turns {
                next: now,
                paused_until: now,
                pauses: 0,
            }),
        }
    }

    /// The time between two sends; `None` for no limit.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Turns> {
        self.turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this send's turn. Turns are handed out in order, one interval apart, so a
    /// long queue goes out at exactly the rate; a pause that comes while a send waits holds
    /// it back too.
    pub async fn turn(&self) {
        loop {
            let (at, pauses) = {
                let mut turns = self.lock();
                let at = turns.next.max(turns.paused_until).max(Instant::now());
                turns.next = at + self.interval.unwrap_or_default();
                (at, turns.pauses)
            };
            tokio::time::sleep_until(at).await;
            if self.lock().pauses == pauses {
                return;
            }
        }
    }

    /// A provider asked us to wait `wait` (capped): no send starts before then.
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait.min(LONGEST_PAUSE);
        let mut turns = self.lock();
        turns.paused_until = turns.paused_until.max(until);
        turns.pauses += 1;
        // Turns given out are void: every waiting send takes a new one after the pause.
        turns.next = turns.paused_until;
    }

    /// How many sends could start within `horizon` from now; `None` when there is no limit
    /// and no pause.
    pub fn turns_within(&self, horizon: Duration) -> Option<usize> {
        let turns = self.lock();
        let now = Instant::now();
        let end = now + horizon;
        let start = turns.next.max(turns.paused_until).max(now);
        if start > end {
            return Some(0);
        }
        let interval = match self.interval {
            Some(interval) => interval,
            None if turns.paused_until > now => return Some(0),
            None => return None,
        };
        let spare = (end - start).as_secs_f64() / interval.as_secs_f64();
        // A float of turns, floored, plus the one at `start`; huge rates are unlimited.
        Some(
            usize::try_from(spare as u64)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn turns_are_one_interval_apart() {
        let pacer = Pacer::new(Some(10.0));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.turn().await;
        }
        assert_eq!(Instant::now() - start, Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_turn_back() {
        let pacer = Pacer::new(None);
        let start = Instant::now();
        pacer.pause(Duration::from_secs(3));
        pacer.turn().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
        pacer.pause(Duration::from_secs(3600));
        pacer.turn().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(63));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_that_comes_while_a_send_waits_holds_it_back() {
        let pacer = std::sync::Arc::new(Pacer::new(Some(1.0)));
        let start = Instant::now();
        pacer.turn().await;
        let waiting = {
            let pacer = std::sync::Arc::clone(&pacer);
            tokio::spawn(async move { pacer.turn().await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        pacer.pause(Duration::from_secs(10));
        waiting.await.expect("turn");
        assert_eq!(Instant::now() - start, Duration::from_millis(10_500));
    }

    #[tokio::test(start_paused = true)]
    async fn sends_held_by_a_pause_go_out_at_the_rate_after_it() {
        let pacer = std::sync::Arc::new(Pacer::new(Some(2.0)));
        let start = Instant::now();
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let pacer = std::sync::Arc::clone(&pacer);
            sends.spawn(async move {
                pacer.turn().await;
                Instant::now()
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        pacer.pause(Duration::from_secs(5));
        let mut at: Vec<Duration> = Vec::new();
        while let Some(sent) = sends.join_next().await {
            at.push(sent.expect("send") - start);
        }
        at.sort();
        // The first went before the pause; the other two after it, half a second apart.
        assert_eq!(
            at,
            [
                Duration::ZERO,
                Duration::from_millis(5_100),
                Duration::from_millis(5_600)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn turns_within_a_horizon_follow_the_rate_and_the_pause() {
        assert_eq!(Pacer::new(None).turns_within(Duration::from_secs(2)), None);
        let pacer = Pacer::new(Some(2.0));
        assert_eq!(pacer.turns_within(Duration::from_secs(2)), Some(5));
        pacer.turn().await;
        pacer.turn().await;
        assert_eq!(pacer.turns_within(Duration::from_secs(2)), Some(4));
        pacer.pause(Duration::from_secs(30));
        assert_eq!(pacer.turns_within(Duration::from_secs(2)), Some(0));
        let unpaced = Pacer::new(None);
        unpaced.pause(Duration::from_secs(1));
        assert_eq!(unpaced.turns_within(Duration::from_secs(2)), Some(0));
    }
}
