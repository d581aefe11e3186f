//! What the background workers share: the round loop and the retry schedule.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// The longest a provider's `Retry-After` can hold a text back.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// How often a worker looks for due retries when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);

/// Runs `round` for ever: again at once while it finds work, else after a wake-up or `POLL`.
/// A round answers how many items it took, or an error, which is logged.
pub async fn run_rounds<F, Fut, E>(name: &'static str, wake: Arc<Notify>, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, E>>,
    E: std::error::Error,
{
    loop {
        let busy = match round().await {
            Ok(taken) => taken > 0,
            Err(e) => {
                tracing::error!(worker = name, error = %crate::telemetry::error_chain(&e), "round failed");
                false
            }
        };
        if !busy {
            let _ = tokio::time::timeout(POLL, wake.notified()).await;
        }
    }
}

/// When to try again after failed attempt number `attempt` (from 1), or `None` when that was
/// the last the schedule allows. Each wait gets up to a tenth more at random, so retries of
/// many items do not arrive together, and is never shorter than `at_least`.
pub fn retry_at(
    schedule: &[Duration],
    attempt: u32,
    at_least: Option<Duration>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    let asked = at_least.unwrap_or_default().min(LONGEST_WAIT);
    let wait = with_jitter(*schedule.get(index)?).max(asked);
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::TimeDelta::MAX);
    Some(
        now.checked_add_signed(wait)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

fn with_jitter(wait: Duration) -> Duration {
    let mut byte = [0u8; 1];
    if getrandom::fill(&mut byte).is_err() {
        return wait;
    }
    wait + wait.mul_f64(f64::from(byte[0]) / 2550.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let now = Utc::now();
        let schedule = [Duration::from_secs(10), Duration::from_secs(100)];
        let first = retry_at(&schedule, 1, None, now).expect("a retry");
        assert!((10_000..=11_000).contains(&(first - now).num_milliseconds()));
        let second = retry_at(&schedule, 2, None, now).expect("a retry");
        assert!((100_000..=110_000).contains(&(second - now).num_milliseconds()));
        assert_eq!(retry_at(&schedule, 3, None, now), None);
        assert_eq!(retry_at(&schedule, 0, None, now), None);
    }

    #[test]
    fn a_providers_wait_is_honoured_when_longer_up_to_a_day() {
        let now = Utc::now();
        let at = retry_at(&[Duration::ZERO], 1, Some(Duration::from_secs(120)), now);
        assert_eq!(at.map(|t| (t - now).num_seconds()), Some(120));
        let huge = retry_at(
            &[Duration::ZERO],
            1,
            Some(Duration::from_secs(u64::MAX)),
            now,
        );
        assert_eq!(huge.map(|t| (t - now).num_hours()), Some(24));
    }
}
