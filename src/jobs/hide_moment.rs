//! hide_moment: UNDO of a Moment on In Process, which cannot delete a token on chain but can
//! hide it. Hiding toggles, so it is sent at most once: a hide whose answer was lost is not
//! sent again, and the artist is told it is unconfirmed. A hide that was never sent (no answer
//! to the lookup, a refused key) is tried again on the schedule, or waits for a new key.

use std::sync::Arc;

use chrono::Utc;

use super::dispatch_moment::{tell, tell_paused};
use super::{payload_id, Attempted, JobContext, Performed, Settled, LONGEST_WAIT};
use crate::db::jobs::Claimed;
use crate::db::moments;
use crate::domain::ids::MomentId;
use crate::domain::number_state::ReplyKind;
use crate::host::{Hide, NotCreated};

#[tracing::instrument(name = "hide_moment", skip_all, fields(moment_id = payload_id::<i64>(job, "moment_id")))]
pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id::<MomentId>(job, "moment_id") else {
        return Performed::failed("the job names no Moment");
    };
    let hidden = ctx.host.hide(id).await;
    let mut paused = None;
    let (attempted, told) = match hidden {
        Hide::Hidden { link } => {
            tracing::info!(moment_id = id.0, %link, "Moment hidden on In Process");
            (Attempted::Done, Told::Always(ReplyKind::MomentHidden, link))
        }
        Hide::Nothing => (Attempted::Done, Told::Never),
        Hide::NotSent(NotCreated::Retry {
            reason,
            retry_after,
        }) => (
            Attempted::Retry {
                reason,
                at_least: retry_after,
            },
            // When the schedule is spent, the artist hears it was not confirmed.
            Told::IfFailed(ReplyKind::HideUnconfirmed, String::new()),
        ),
        Hide::NotSent(NotCreated::Wait { reason, wait }) => {
            (Attempted::Throttled { reason, wait }, Told::Never)
        }
        Hide::NotSent(NotCreated::Paused { reason, refused }) => {
            paused = refused;
            (
                Attempted::Throttled {
                    reason,
                    wait: LONGEST_WAIT,
                },
                Told::Never,
            )
        }
        Hide::NotSent(NotCreated::Failed { reason, .. }) => (
            Attempted::Failed { reason },
            Told::Always(ReplyKind::HideUnconfirmed, String::new()),
        ),
        Hide::Unconfirmed { reason, link } => {
            tracing::warn!(moment_id = id.0, "{reason}");
            (
                Attempted::Failed { reason },
                Told::Always(ReplyKind::HideUnconfirmed, link.unwrap_or_default()),
            )
        }
    };
    let (sender, host) = (ctx.sender.name(), ctx.host.clone());
    Performed {
        attempted,
        record: Arc::new(move |tx, settled| {
            let Some(artist) = moments::artist_of(tx, id)? else {
                return Ok(());
            };
            if let Some(refused) = &paused {
                tell_paused(tx, id, artist, refused, &host, sender)?;
            }
            let (kind, link) = match (&told, settled) {
                (Told::Always(kind, link), Settled::Done | Settled::Failed { .. })
                | (Told::IfFailed(kind, link), Settled::Failed { .. }) => (*kind, link),
                _ => return Ok(()),
            };
            let Some(moment) = moments::to_dispatch(tx, id)? else {
                return Ok(());
            };
            let links: Vec<String> = Some(link.clone())
                .filter(|l| !l.is_empty())
                .into_iter()
                .collect();
            tell(tx, moment.message_id, kind, &links, sender, Utc::now())
        }),
    }
}

/// What the artist is told of a hide, and when.
enum Told {
    Never,
    /// Once the attempt is settled, done or failed.
    Always(ReplyKind, String),
    /// Only if it fails for good.
    IfFailed(ReplyKind, String),
}
