//! send_text: one queued text to the provider, at the provider's pace.

use std::sync::Arc;

use chrono::Utc;

use super::{payload_id, Attempted, JobContext, Performed, Settled};
use crate::db::jobs::Claimed;
use crate::db::{codes, messages, numbers};
use crate::domain::code::{self, Code};
use crate::domain::ids::MessageId;
use crate::domain::number_state::{ReplyKind, Standing};
use crate::domain::replies;
use crate::domain::MessageState;
use crate::flows::{number_change, status};
use crate::providers::{OutboundText, SendError};

/// How long sending pauses when the provider refuses our credentials: an operator has to
/// fix them, and each try in between would only be refused again.
const CREDENTIALS_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

#[tracing::instrument(name = "send_text", skip_all, fields(message_id = payload_id::<i64>(job, "message_id")))]
pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id::<MessageId>(job, "message_id") else {
        return Performed::failed("the job names no message");
    };
    let read = ctx
        .store
        .read(move |c| {
            let Some(text) = messages::outgoing(c, id)? else {
                return Ok(None);
            };
            let standing = numbers::standing(c, &text.to)?;
            Ok(Some((text, standing)))
        })
        .await;
    let (text, standing) = match read {
        Ok(Some(found)) => found,
        Ok(None) => return Performed::failed(format!("no outbound text {id}")),
        Err(e) => return Performed::only(Attempted::read_failed("the text", &e)),
    };
    if text.state != MessageState::Unconfirmed {
        // Recorded as sent already (by an attempt whose job outcome was lost): never twice.
        return Performed::only(Attempted::Done);
    }
    let (attempt, to) = (job.attempt, text.to.masked());
    // Only the opt-out confirmation goes to a number that has opted out since it was queued.
    if matches!(standing, Standing::OptedOut(_)) && text.purpose != Some(ReplyKind::OptedOut) {
        tracing::info!(message_id = id.0, %to, "text withheld: recipient opted out");
        return Performed {
            attempted: Attempted::Failed {
                reason: messages::WITHHELD_OPTED_OUT.into(),
            },
            record: Arc::new(move |tx, _| {
                messages::mark_failed(tx, id, attempt, messages::WITHHELD_OPTED_OUT, Utc::now())
            }),
        };
    }

    ctx.pacer.turn().await;
    let provider = ctx.sender.name();
    let events = ctx.events();
    let started = std::time::Instant::now();
    // A code is armed (its hash and expiry kept, so it can be checked) only once the
    // provider has taken its text: until then nobody has it, and no try is spent on it.
    let mut armed: Option<Arming> = None;
    let sent = if text.purpose == Some(ReplyKind::Code) {
        match send_code(ctx, id, attempt, &text).await {
            Ok((sent, arming)) => {
                armed = Some(arming);
                sent
            }
            Err(withheld) => return withheld,
        }
    } else {
        let outbound = OutboundText {
            id,
            to: text.to.as_str(),
            from: text.from.as_deref(),
            body: &text.body,
        };
        ctx.sender.send(&outbound).await
    };
    ctx.metrics.sent(provider, started);
    match sent {
        Ok(accepted) => {
            let provider_id = accepted.provider_message_id;
            tracing::info!(message_id = id.0, %to, provider,
                provider_message_id = provider_id.as_deref(), "text sent");
            let code_ttl = ctx.code_ttl;
            Performed {
                attempted: Attempted::Done,
                record: Arc::new(move |tx, _| {
                    let now = Utc::now();
                    status::record_sent(
                        tx,
                        id,
                        attempt,
                        provider,
                        provider_id.as_deref(),
                        events,
                        now,
                    )?;
                    if let Some(arming) = &armed {
                        let salted = arming
                            .hash
                            .as_ref()
                            .map(|(s, h)| (s.as_slice(), h.as_slice()));
                        // A newer request may have replaced it meanwhile: then nothing to arm.
                        codes::arm(tx, id, salted, now + code_ttl)?;
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
            tracing::warn!(message_id = id.0, provider, wait_secs = wait.as_secs(), %reason,
                "the provider asked us to slow down; sends paused");
            held_back(id, attempt, reason, wait)
        }
        Err(SendError::Unauthorized { reason }) => {
            ctx.pacer.pause(CREDENTIALS_PAUSE);
            tracing::error!(message_id = id.0, provider, %reason,
                pause_secs = CREDENTIALS_PAUSE.as_secs(), check = ctx.sender.credentials(),
                "THE PROVIDER REFUSES MOMENTLINE'S CREDENTIALS: sending is paused; texts wait, none is dropped");
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
                    messages::note_failed_attempt(tx, id, attempt, reason, Utc::now())
                }
                Settled::Failed { reason } => {
                    messages::mark_failed(tx, id, attempt, reason, Utc::now())
                }
                Settled::Done => Ok(()),
            }),
        },
        Err(SendError::Permanent { reason }) => Performed {
            attempted: Attempted::Failed { reason },
            record: Arc::new(move |tx, settled| match settled {
                Settled::Failed { reason } => {
                    messages::mark_failed(tx, id, attempt, reason, Utc::now())
                }
                _ => Ok(()),
            }),
        },
        Err(SendError::RecipientOptedOut { reason }) => {
            let phone = text.to.clone();
            Performed {
                attempted: Attempted::Failed { reason },
                record: Arc::new(move |tx, settled| {
                    if let Settled::Failed { reason } = settled {
                        let now = Utc::now();
                        messages::mark_failed(tx, id, attempt, reason, now)?;
                        number_change::carrier_opt_out(tx, &phone, id, events, now)?;
                    }
                    Ok(())
                }),
            }
        }
    }
}

/// Who makes a code: the provider's own service, or momentline (the code and its salt).
enum Maker<'a> {
    Provider(&'a crate::providers::textflow::TextFlow),
    Here(Code, [u8; 16]),
}

/// How to arm a code once its text is taken: its salt and hash, or none when the provider
/// made the code and checks it itself.
struct Arming {
    hash: Option<(Vec<u8>, Vec<u8>)>,
}

/// Makes the code a code text carries and sends it. The code is made now, not when it was
/// asked for, so only its hash is ever stored and it expires counted from its sending; a
/// retry makes a new one. With TextFlow the provider makes, texts and later checks it.
/// `Err` is the job's outcome when nothing was sent.
async fn send_code(
    ctx: &JobContext,
    id: MessageId,
    attempt: u32,
    text: &messages::Outgoing,
) -> Result<(Result<crate::providers::Accepted, SendError>, Arming), Performed> {
    let retry = |reason: String| {
        Performed::only(Attempted::Retry {
            reason,
            at_least: None,
        })
    };
    let ttl = ctx.code_ttl;
    let maker = match ctx.sender.code_service() {
        Some(service) => Maker::Provider(service),
        None => match Code::generate().and_then(|c| Ok((c, code::salt()?))) {
            Ok((code, salt)) => Maker::Here(code, salt),
            Err(e) => return Err(retry(format!("no randomness for a code: {e}"))),
        },
    };
    let hashed = match &maker {
        Maker::Here(code, salt) => Some((code.clone(), *salt)),
        Maker::Provider(_) => None,
    };
    let stored = ctx.store.read(move |c| codes::carried_by(c, id)).await;
    let stored = match stored {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            tracing::info!(message_id = id.0, to = %text.to.masked(),
                "code text withheld: a newer request replaced its code");
            let reason = "a newer code request replaced this code";
            return Err(Performed {
                attempted: Attempted::Failed {
                    reason: reason.into(),
                },
                record: Arc::new(move |tx, _| {
                    messages::mark_failed(tx, id, attempt, reason, Utc::now())
                }),
            });
        }
        Err(e) => return Err(Performed::only(Attempted::read_failed("the code", &e))),
    };
    let arming = Arming {
        hash: hashed.map(|(code, salt)| {
            (
                salt.to_vec(),
                code.hash(&salt, text.to.as_str(), stored.artist).to_vec(),
            )
        }),
    };
    let sent = match maker {
        Maker::Provider(service) => service.send_code(text.to.as_str(), ttl.num_seconds()).await,
        Maker::Here(code, _) => {
            let body = replies::code(code.expose(), ttl);
            let outbound = OutboundText {
                id,
                to: text.to.as_str(),
                from: text.from.as_deref(),
                body: &body,
            };
            ctx.sender.send(&outbound).await
        }
    };
    Ok((sent, arming))
}

/// Not sent, and not tried: the provider asked us to wait. The attempt is not spent, so the
/// count shown stays as it was; the reason is shown.
fn held_back(id: MessageId, attempt: u32, reason: String, wait: std::time::Duration) -> Performed {
    let shown = reason.clone();
    Performed {
        attempted: Attempted::Throttled { reason, wait },
        record: Arc::new(move |tx, _| {
            messages::note_failed_attempt(tx, id, attempt.saturating_sub(1), &shown, Utc::now())
        }),
    }
}
