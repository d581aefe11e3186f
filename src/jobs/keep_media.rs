//! keep_media: fetch a media Moment's file from the provider once and keep it by hash.

use std::sync::Arc;

use super::{payload_id, Attempted, JobContext, Performed, Settled};
use crate::db::jobs::Claimed;
use crate::db::moments;
use crate::domain::MediaState;
use crate::media::FetchError;

pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id(job, "moment_id") else {
        return Performed::only(Attempted::Failed {
            reason: "the job names no Moment".into(),
        });
    };
    let source = match ctx
        .store
        .read(move |c| Ok(moments::media_source(c, id)?))
        .await
    {
        Ok(Some(source)) if source.state == Some(MediaState::Fetching) => source,
        Ok(_) => return Performed::only(Attempted::Done),
        Err(e) => {
            return Performed::only(Attempted::Retry {
                reason: format!(
                    "could not read the Moment: {}",
                    crate::telemetry::error_chain(&e)
                ),
                at_least: None,
            })
        }
    };
    match ctx.media.keep(&source).await {
        Ok(file) => {
            tracing::info!(moment_id = id, %file, "media kept");
            Performed {
                attempted: Attempted::Done,
                record: Arc::new(move |tx, _| moments::media_kept(tx, id, &file)),
            }
        }
        Err(e) => {
            let attempted = match e {
                FetchError::Retryable(reason) => Attempted::Retry {
                    reason,
                    at_least: None,
                },
                FetchError::Permanent(reason) => Attempted::Failed { reason },
            };
            Performed {
                attempted,
                record: Arc::new(move |tx, settled| match settled {
                    Settled::Retrying { reason } => moments::media_failed(tx, id, false, reason),
                    Settled::Failed { reason } => moments::media_failed(tx, id, true, reason),
                    Settled::Done => Ok(()),
                }),
            }
        }
    }
}
