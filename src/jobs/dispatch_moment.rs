//! dispatch_moment: make a recorded Moment public. The embedded dispatch records it here and
//! links to momentline's own page. The last of a message's Moments to be dispatched queues
//! its "Moment posted" reply, with every link, when the message's decision allowed one.

use chrono::Utc;

use super::{payload_id, Attempted, JobContext, Performed};
use crate::db::jobs::Claimed;
use crate::db::{messages, moments};
use crate::domain::number_state::ReplyKind;
use crate::domain::replies::{self, ReplyContext};
use crate::domain::MomentState;

pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id(job, "moment_id") else {
        return Performed::only(Attempted::Failed {
            reason: "the job names no Moment".into(),
        });
    };
    let reply = job
        .payload
        .get("reply")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let url = format!("{}/moments/{id}", ctx.public_url);
    let sender = ctx.sender.name();
    Performed {
        attempted: Attempted::Done,
        record: Box::new(move |tx, _| {
            let now = Utc::now();
            let Some(moment) = moments::to_dispatch(tx, id)? else {
                return Ok(());
            };
            if moment.state != MomentState::Pending {
                return Ok(());
            }
            moments::mark_created(tx, id, &url, now)?;
            if !reply {
                return Ok(());
            }
            let Some(links) = moments::settled_links(tx, moment.message_id)? else {
                return Ok(());
            };
            let Some(inbound) = messages::conversation_of(tx, moment.message_id)? else {
                return Ok(());
            };
            let body = replies::render(
                ReplyKind::MomentPosted,
                &ReplyContext {
                    artist: None,
                    manage_url: "",
                    moment_links: &links,
                },
            );
            messages::queue_outbound(
                tx,
                &messages::NewOutbound {
                    artist: inbound.artist,
                    to: &inbound.phone,
                    from: inbound.service_number.as_deref().filter(|n| !n.is_empty()),
                    body: &body,
                    provider: sender,
                    purpose: ReplyKind::MomentPosted,
                },
                now,
            )?;
            Ok(())
        }),
    }
}
