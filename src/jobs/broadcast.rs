//! broadcast: queues one batch of an operator's broadcast, a text per verified number, in the
//! write that settles the job: each text with its send_text job, or, through a provider's bulk
//! path, the batch with one send_batch job. The next batch is a job of its own.

use std::sync::Arc;

use chrono::Utc;

use super::{payload_id, Attempted, JobContext, Performed, Settled};
use crate::db::broadcasts::{self, BroadcastId, Sending, BATCH};
use crate::db::jobs::Claimed;
use crate::providers::textflow;

#[tracing::instrument(name = "broadcast", skip_all, fields(broadcast_id = payload_id::<i64>(job, "broadcast_id")))]
pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id::<BroadcastId>(job, "broadcast_id") else {
        return Performed::failed("the job names no broadcast");
    };
    let found = ctx.store.read(move |c| broadcasts::finished(c, id)).await;
    match found {
        Ok(Some(false)) => {}
        Ok(Some(true)) => return Performed::only(Attempted::Done),
        Ok(None) => return Performed::failed(format!("no broadcast {id}")),
        Err(e) => return Performed::only(Attempted::read_failed("the broadcast", &e)),
    }
    let provider = ctx.sender.name();
    let (limit, sending) = match ctx.sender.bulk_service() {
        // One batch of numbers a write is one call to the provider's bulk path.
        Some(_) => (textflow::BULK_BATCH, Sending::Bulk),
        // Texts go out no faster than the pacer lets them: each batch is spread at its pace.
        None => {
            let spacing = ctx
                .pacer
                .interval()
                .and_then(|i| chrono::Duration::from_std(i).ok())
                .unwrap_or_default();
            (BATCH, Sending::EachText { spacing })
        }
    };
    Performed {
        attempted: Attempted::Done,
        record: Arc::new(move |tx, settled| {
            if settled != Settled::Done {
                return Ok(());
            }
            match broadcasts::fan_out(tx, id, limit, provider, sending, Utc::now())? {
                Some(batch) if batch.finished => {
                    tracing::info!(
                        broadcast = id.0,
                        queued = batch.queued,
                        numbers = batch.total,
                        "broadcast queued for every verified number"
                    );
                }
                Some(batch) => {
                    tracing::info!(
                        broadcast = id.0,
                        queued = batch.queued,
                        numbers = batch.total,
                        "broadcast queued a batch; the next follows"
                    );
                }
                None => tracing::warn!(broadcast = id.0, "the broadcast is gone; nothing queued"),
            }
            Ok(())
        }),
    }
}
