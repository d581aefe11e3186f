//! The retry policy: when a failed attempt is tried again, with jitter, never sooner than a
//! provider's `Retry-After`, and when the schedule is spent.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::outcome::Outcome;
use super::Attempted;
use crate::db::jobs::Claimed;

/// The longest a provider's `Retry-After` holds a job back.
pub const LONGEST_WAIT: Duration = Duration::from_secs(3600);
/// How long the outcome write is retried when the database cannot take it.
pub(super) const RECORD_RETRIES: &[Duration] = &[
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// How long a job waits when the database could not be read for it.
const UNAVAILABLE_WAIT: Duration = Duration::from_secs(1);

/// How an attempt ends, after the retry schedule.
pub(super) fn settle(
    schedule: &[Duration],
    job: &Claimed,
    attempted: Attempted,
    now: DateTime<Utc>,
) -> Outcome {
    match attempted {
        Attempted::Done => Outcome::done(),
        Attempted::Retry { reason, at_least } => {
            match retry_at(schedule, job.attempt, at_least, now) {
                Some(at) => Outcome::retry(reason, at, true),
                None => Outcome::failed(reason),
            }
        }
        Attempted::Throttled { reason, wait } => {
            let wait = chrono::Duration::from_std(wait.min(LONGEST_WAIT))
                .unwrap_or(chrono::TimeDelta::MAX);
            Outcome::retry(reason, now + wait, false)
        }
        Attempted::Failed { reason } => Outcome::failed(reason),
        Attempted::Unavailable { reason } => {
            let wait = chrono::Duration::from_std(with_jitter(UNAVAILABLE_WAIT))
                .unwrap_or(chrono::TimeDelta::MAX);
            Outcome::retry(reason, now + wait, false)
        }
    }
}

/// When to try again after failed attempt number `attempt` (from 1), or `None` when that was
/// the last the schedule allows. Each wait gets up to a tenth more at random, so retries of
/// many jobs do not arrive together, and is never shorter than `at_least` (itself capped at
/// `LONGEST_WAIT`).
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
    fn a_providers_wait_is_honoured_when_longer_up_to_an_hour() {
        let now = Utc::now();
        let at = retry_at(&[Duration::ZERO], 1, Some(Duration::from_secs(120)), now);
        assert_eq!(at.map(|t| (t - now).num_seconds()), Some(120));
        let huge = retry_at(
            &[Duration::ZERO],
            1,
            Some(Duration::from_secs(u64::MAX)),
            now,
        );
        assert_eq!(huge.map(|t| (t - now).num_minutes()), Some(60));
    }
}
