//! hide_moment: UNDO of a Moment on In Process, which cannot delete a token on chain but can
//! hide it. Hiding toggles, so it is sent at most once: a hide whose answer was lost is not
//! sent again, and the artist is told it is unconfirmed. A hide that was never sent (no answer
//! to the lookup, a refused key) is tried again on the schedule, or waits for a new key.

use std::sync::Arc;

use chrono::Utc;

use super::dispatch_moment::tell;
use super::{payload_id, Attempted, JobContext, Performed, Settled, LONGEST_WAIT};
use crate::db::jobs::Claimed;
use crate::db::moments;
use crate::domain::ids::MomentId;
use crate::domain::number_state::ReplyKind;
use crate::host::Hide;

#[tracing::instrument(name = "hide_moment", skip_all, fields(moment_id = payload_id::<i64>(job, "moment_id")))]
pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id::<MomentId>(job, "moment_id") else {
        return Performed::failed("the job names no Moment");
    };
    let (attempted, told) = match ctx.host.hide(id).await {
        Hide::Hidden { link } => {
            tracing::info!(moment_id = id.0, %link, "Moment hidden on In Process");
            (Attempted::Done, Some((ReplyKind::MomentHidden, link)))
        }
        Hide::Nothing => (Attempted::Done, None),
        Hide::Retry {
            reason,
            retry_after,
        } => (
            Attempted::Retry {
                reason,
                at_least: retry_after,
            },
            None,
        ),
        Hide::Paused { reason } => (
            Attempted::Throttled {
                reason,
                wait: LONGEST_WAIT,
            },
            None,
        ),
        Hide::Unconfirmed { reason, link } => {
            tracing::warn!(moment_id = id.0, "{reason}");
            (
                Attempted::Failed { reason },
                Some((ReplyKind::HideUnconfirmed, link.unwrap_or_default())),
            )
        }
    };
    let sender = ctx.sender.name();
    Performed {
        attempted,
        record: Arc::new(move |tx, settled| {
            let Some((kind, link)) = &told else {
                return Ok(());
            };
            if matches!(settled, Settled::Retrying { .. }) {
                return Ok(());
            }
            let Some(moment) = moments::to_dispatch(tx, id)? else {
                return Ok(());
            };
            let links: Vec<String> = Some(link.clone())
                .filter(|l| !l.is_empty())
                .into_iter()
                .collect();
            tell(tx, moment.message_id, *kind, &links, sender, Utc::now())
        }),
    }
}
