//! send_batch: one batch of a broadcast to the provider's bulk path (TextFlow's bulk-sms) in
//! one call, leaving out every number that opted out since the batch was queued.

use std::sync::Arc;

use chrono::Utc;

use super::{payload_id, Attempted, JobContext, Performed, Settled};
use crate::db::batches::{self, BatchText};
use crate::db::jobs::Claimed;
use crate::db::messages;
use crate::domain::ids::{BatchId, MessageId};
use crate::domain::BatchState;
use crate::providers::SendError;

/// How long sending pauses when the provider refuses our credentials, as for one text.
const CREDENTIALS_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

#[tracing::instrument(name = "send_batch", skip_all, fields(batch_id = payload_id::<i64>(job, "batch_id")))]
pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id::<BatchId>(job, "batch_id") else {
        return Performed::failed("the job names no batch");
    };
    let Some(bulk) = ctx.sender.bulk_service() else {
        // Queued while another provider was configured: its texts fail, saying why, rather
        // than wait for ever.
        return Performed {
            attempted: Attempted::Failed {
                reason: format!(
                    "{} has no bulk path: the batch cannot be sent",
                    ctx.sender.name()
                ),
            },
            record: Arc::new(move |tx, settled| match settled {
                Settled::Failed { reason } => {
                    batches::mark_failed(tx, id, job_attempt(tx, id)?, reason, Utc::now())
                }
                _ => Ok(()),
            }),
        };
    };
    let found = ctx.store.read(move |c| batches::outgoing(c, id)).await;
    let batch = match found {
        Ok(Some(batch)) => batch,
        Ok(None) => return Performed::failed(format!("no batch {id}")),
        Err(e) => return Performed::only(Attempted::read_failed("the batch", &e)),
    };
    if batch.state != BatchState::Queued {
        // The provider answered for it already (an attempt whose job outcome was lost): a
        // batch is never sent twice.
        return Performed::only(Attempted::Done);
    }
    let attempt = job.attempt;
    let (withheld, to): (Vec<BatchText>, Vec<BatchText>) =
        batch.texts.into_iter().partition(|t| t.opted_out);
    let withheld: Vec<MessageId> = withheld.into_iter().map(|t| t.id).collect();
    if to.is_empty() {
        tracing::info!(
            batch = id.0,
            withheld = withheld.len(),
            "batch left with no number: every one opted out"
        );
        return Performed {
            attempted: Attempted::Done,
            record: Arc::new(move |tx, _| {
                let now = Utc::now();
                withhold(tx, &withheld, attempt, now)?;
                batches::mark_empty(tx, id, now)
            }),
        };
    }

    ctx.pacer.turn().await;
    let numbers: Vec<&str> = to.iter().map(|t| t.to.as_str()).collect();
    let started = std::time::Instant::now();
    let sent = bulk.send_bulk(&numbers, &batch.body).await;
    ctx.metrics.sent(ctx.sender.name(), started);
    match sent {
        Ok(accepted) => {
            let rejected: Vec<(MessageId, String)> = accepted
                .rejected
                .iter()
                .filter_map(|(number, reason)| {
                    to.iter()
                        .find(|t| t.to.as_str() == number)
                        .map(|t| (t.id, reason.clone()))
                })
                .collect();
            let sent_to = to.len() - rejected.len();
            tracing::info!(
                batch = id.0,
                numbers = sent_to,
                rejected = rejected.len(),
                withheld = withheld.len(),
                "batch taken by the provider's bulk path"
            );
            Performed {
                attempted: Attempted::Done,
                record: Arc::new(move |tx, _| {
                    let now = Utc::now();
                    if batches::mark_running(tx, id, sent_to, attempt, now)? {
                        withhold(tx, &withheld, attempt, now)?;
                        for (text, reason) in &rejected {
                            messages::mark_failed(tx, *text, attempt, reason, now)?;
                        }
                    }
                    Ok(())
                }),
            }
        }
        Err(SendError::Throttled {
            reason,
            retry_after,
        }) => {
            let wait = retry_after.unwrap_or(std::time::Duration::from_secs(1));
            ctx.pacer.pause(wait);
            tracing::warn!(batch = id.0, wait_secs = wait.as_secs(), %reason,
                "the provider asked us to slow down; sends paused");
            held_back(id, attempt, reason, wait)
        }
        Err(SendError::Unauthorized { reason }) => {
            ctx.pacer.pause(CREDENTIALS_PAUSE);
            tracing::error!(batch = id.0, %reason, check = ctx.sender.credentials(),
                "THE PROVIDER REFUSES MOMENTLINE'S CREDENTIALS: sending is paused; the batch waits");
            held_back(id, attempt, reason, CREDENTIALS_PAUSE)
        }
        Err(SendError::Retryable {
            reason,
            retry_after,
        }) => Performed {
            attempted: Attempted::Retry {
                reason,
                at_least: retry_after,
            },
            record: Arc::new(move |tx, settled| match settled {
                Settled::Retrying { reason } => {
                    batches::note_failed_attempt(tx, id, attempt, reason, Utc::now())
                }
                Settled::Failed { reason } => {
                    let now = Utc::now();
                    withhold(tx, &withheld, attempt, now)?;
                    batches::mark_failed(tx, id, attempt, reason, now)
                }
                Settled::Done => Ok(()),
            }),
        },
        // A definite refusal of the whole batch: no attempt will succeed.
        Err(SendError::Permanent { reason } | SendError::RecipientOptedOut { reason }) => {
            Performed {
                attempted: Attempted::Failed { reason },
                record: Arc::new(move |tx, settled| match settled {
                    Settled::Failed { reason } => {
                        let now = Utc::now();
                        withhold(tx, &withheld, attempt, now)?;
                        batches::mark_failed(tx, id, attempt, reason, now)
                    }
                    _ => Ok(()),
                }),
            }
        }
    }
}

/// The attempts batch `id` has had: none is spent by a call never made.
fn job_attempt(tx: &crate::db::Conn, id: BatchId) -> Result<u32, crate::db::DbError> {
    tx.query_value(
        "SELECT attempts FROM broadcast_batches WHERE id = ?1",
        &[id],
    )
}

/// Texts left out because their number opted out before the batch went.
fn withhold(
    tx: &crate::db::Conn,
    texts: &[MessageId],
    attempt: u32,
    now: chrono::DateTime<Utc>,
) -> Result<(), crate::db::DbError> {
    for text in texts {
        messages::mark_failed(tx, *text, attempt, messages::WITHHELD_OPTED_OUT, now)?;
    }
    Ok(())
}

/// Not sent, and not tried: the provider asked us to wait, and no attempt is spent.
fn held_back(id: BatchId, attempt: u32, reason: String, wait: std::time::Duration) -> Performed {
    let shown = reason.clone();
    Performed {
        attempted: Attempted::Throttled { reason, wait },
        record: Arc::new(move |tx, _| {
            batches::note_failed_attempt(tx, id, attempt.saturating_sub(1), &shown, Utc::now())
        }),
    }
}
