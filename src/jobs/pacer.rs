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
    /// The earliest the next send may go.
    next: Mutex<Instant>,
}

impl Pacer {
    /// `rate` texts a second at most; `None` for as fast as they come.
    pub fn new(rate: Option<f64>) -> Self {
        Self {
            interval: rate
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this send's turn. Turns are handed out in order, one interval apart, so a
    /// long queue goes out at exactly the rate.
    pub async fn turn(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval.unwrap_or_default();
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// A provider asked us to wait `wait` (capped): no send starts before then.
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait.min(LONGEST_PAUSE);
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        *next = (*next).max(until);
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
}
