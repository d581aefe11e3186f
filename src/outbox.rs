//! The outbox worker: sends queued texts through the provider, retrying on a schedule.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::db::messages::{self, OutboxItem};
use crate::db::{numbers, DbError, Pool};
use crate::domain::number_state::{ReplyKind, Standing};
use crate::domain::phone_number::mask;
use crate::providers::{OutboundText, SendError, Sender};
use crate::telemetry::error_chain;

/// How many texts one round claims.
const BATCH: u32 = 32;
/// How long a claimed text is hidden from other rounds while it is being sent.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Clone)]
pub struct Outbox {
    pool: Pool,
    sender: Arc<Sender>,
    schedule: Arc<Vec<Duration>>,
    wake: Arc<Notify>,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl Round {
    pub fn claimed(&self) -> usize {
        self.sent + self.retrying + self.failed
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a database task did not finish")]
    Join(#[from] tokio::task::JoinError),
}

impl From<rusqlite::Error> for OutboxError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e.into())
    }
}

/// The outcome of one attempt at one text.
enum Attempt {
    Sent(Option<String>),
    Failed(SendError),
    /// Not sent: the number opted out after the text was queued.
    Withheld,
}

impl Outbox {
    pub fn new(
        pool: Pool,
        sender: Arc<Sender>,
        schedule: Vec<Duration>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            sender,
            schedule: Arc::new(schedule),
            wake,
        }
    }

    /// Runs rounds for ever: right after something is queued, or every second for retries.
    pub async fn run(self) {
        let wake = Arc::clone(&self.wake);
        crate::worker::run_rounds("outbox", wake, || async {
            self.run_once().await.map(|round| round.claimed())
        })
        .await;
    }

    /// One round: claim what is due, send it all at once, record each outcome.
    pub async fn run_once(&self) -> Result<Round, OutboxError> {
        let pool = self.pool.clone();
        let claimed = tokio::task::spawn_blocking(move || -> Result<_, OutboxError> {
            let mut conn = pool.get().map_err(DbError::from)?;
            let items = messages::claim_due(&mut conn, Utc::now(), LEASE, BATCH)?;
            let mut withheld = Vec::with_capacity(items.len());
            for item in &items {
                let standing = numbers::standing(&conn, &item.to)?;
                let opted_out = matches!(standing, Standing::OptedOut(_));
                withheld.push(opted_out && item.purpose != Some(ReplyKind::OptedOut));
            }
            Ok(items.into_iter().zip(withheld).collect::<Vec<_>>())
        })
        .await??;

        // Different numbers are texted at once; one number's texts go out one after another,
        // in the order they were queued, so a confirmation never overtakes its prompt.
        let mut by_recipient: BTreeMap<String, Vec<(OutboxItem, bool)>> = BTreeMap::new();
        for (item, withheld) in claimed {
            by_recipient
                .entry(item.to.clone())
                .or_default()
                .push((item, withheld));
        }
        let mut sends = JoinSet::new();
        for (_, items) in by_recipient {
            let outbox = self.clone();
            sends.spawn(async move {
                let mut outcomes = Vec::with_capacity(items.len());
                for (item, withheld) in items {
                    outcomes.push(outbox.attempt(item, withheld).await);
                }
                outcomes
            });
        }
        let mut round = Round::default();
        while let Some(done) = sends.join_next().await {
            // A task that panicked left its texts claimed: their lease runs out and a later
            // round takes them again. Other outcomes were logged where they happened.
            for outcome in done.into_iter().flatten().flatten() {
                match outcome {
                    Outcome::Sent => round.sent += 1,
                    Outcome::Retrying => round.retrying += 1,
                    Outcome::Failed => round.failed += 1,
                }
            }
        }
        Ok(round)
    }

    /// Sends one claimed text and records the outcome at once, so a provider's status report
    /// finds the provider's id as soon as possible and one text's trouble touches no other.
    async fn attempt(&self, item: OutboxItem, withheld: bool) -> Option<Outcome> {
        let attempt = if withheld {
            Attempt::Withheld
        } else {
            let text = OutboundText {
                id: item.id,
                to: &item.to,
                from: item.from.as_deref(),
                body: &item.body,
            };
            match self.sender.send(&text).await {
                Ok(accepted) => Attempt::Sent(accepted.provider_message_id),
                Err(e) => Attempt::Failed(e),
            }
        };
        let pool = self.pool.clone();
        let provider = self.sender.name();
        let schedule = Arc::clone(&self.schedule);
        let id = item.id;
        let recorded = tokio::task::spawn_blocking(move || -> Result<Outcome, OutboxError> {
            let mut conn = pool.get().map_err(DbError::from)?;
            Ok(record(&mut conn, provider, &schedule, &item, attempt)?)
        })
        .await;
        match recorded {
            Ok(Ok(outcome)) => Some(outcome),
            Ok(Err(e)) => {
                tracing::error!(message_id = id, error = %error_chain(&e),
                    "could not record a send attempt; the text will be tried again");
                None
            }
            Err(e) => {
                tracing::error!(message_id = id, error = %e, "recording a send attempt failed");
                None
            }
        }
    }
}

/// Where one attempt left its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Retrying,
    Failed,
}

fn record(
    conn: &mut rusqlite::Connection,
    provider: &str,
    schedule: &[Duration],
    item: &OutboxItem,
    attempt: Attempt,
) -> rusqlite::Result<Outcome> {
    let now = Utc::now();
    let to = mask(&item.to);
    Ok(match attempt {
        Attempt::Sent(provider_id) => {
            messages::mark_sent(conn, item.id, provider, provider_id.as_deref(), now)?;
            tracing::info!(message_id = item.id, %to, provider, "text sent");
            Outcome::Sent
        }
        Attempt::Withheld => {
            messages::mark_failed(conn, item.id, "recipient opted out", now)?;
            tracing::info!(message_id = item.id, %to, "text withheld: recipient opted out");
            Outcome::Failed
        }
        Attempt::Failed(SendError::Retryable {
            reason,
            retry_after,
        }) => match crate::worker::retry_at(schedule, item.attempt, retry_after, now) {
            Some(at) => {
                messages::schedule_retry(conn, item.id, at, &reason, now)?;
                tracing::warn!(message_id = item.id, %to, attempt = item.attempt,
                    retry_in_secs = (at - now).num_seconds(), %reason, "send failed; will retry");
                Outcome::Retrying
            }
            None => {
                messages::mark_failed(conn, item.id, &reason, now)?;
                tracing::error!(message_id = item.id, %to, attempt = item.attempt, %reason,
                    "send failed on the last attempt; giving up");
                Outcome::Failed
            }
        },
        Attempt::Failed(SendError::Permanent { reason }) => {
            messages::mark_failed(conn, item.id, &reason, now)?;
            tracing::error!(message_id = item.id, %to, %reason, "send refused; not retrying");
            Outcome::Failed
        }
        Attempt::Failed(SendError::RecipientOptedOut { reason }) => {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            messages::mark_failed(&tx, item.id, &reason, now)?;
            numbers::provider_opt_out(&tx, &item.to, item.id, now)?;
            tx.commit()?;
            Outcome::Failed
        }
    })
}
