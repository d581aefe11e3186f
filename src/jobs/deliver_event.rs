//! deliver_event: post one event to the host, signed as a Standard Webhook with the id it was
//! given when it was queued. 5xx, 429 and no answer are retried on the schedule; any other
//! answer, or the last attempt, fails it for good (kept, with the reason, in the jobs table).

use super::{Attempted, JobContext, Performed};
use crate::db::jobs::Claimed;
use crate::host::DispatchError;

#[tracing::instrument(name = "deliver_event", skip_all, fields(event = job.payload.get("id").and_then(serde_json::Value::as_str)))]
pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let (Some(id), Some(body)) = (
        job.payload.get("id").and_then(serde_json::Value::as_str),
        job.payload.get("body"),
    ) else {
        return Performed::failed("the job carries no event");
    };
    let Some(endpoint) = &ctx.events else {
        return Performed::failed("events are off (MOMENTLINE_EVENTS_URL): not delivered");
    };
    // A JSON value always serializes.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Performed::only(match endpoint.deliver(id, bytes).await {
        Ok(()) => {
            tracing::debug!(event = id, "event delivered");
            Attempted::Done
        }
        Err(DispatchError::Retryable {
            reason,
            retry_after,
        }) => Attempted::Retry {
            reason,
            at_least: retry_after,
        },
        Err(DispatchError::Permanent { reason }) => Attempted::Failed { reason },
    })
}
