//! keep_media: fetch a media Moment's file from the provider once and keep it by hash. When
//! the Moment goes to a host, the host is sent the kept copy: the job carries the dispatch,
//! enqueued once the file is kept (due when a photo's wait for its caption ends), or settled
//! as failed (and the artist told) when it never will be.

use std::sync::Arc;

use super::{dispatch_moment, payload_id, Attempted, JobContext, Performed, Settled};
use crate::db::jobs::{self, Claimed, NewJob};
use crate::db::moments;
use crate::domain::ids::MomentId;
use crate::domain::number_state::ReplyKind;
use crate::domain::{JobKind, MediaState};
use crate::media::FetchError;

#[tracing::instrument(name = "keep_media", skip_all, fields(moment_id = payload_id::<i64>(job, "moment_id")))]
pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id::<MomentId>(job, "moment_id") else {
        return Performed::failed("the job names no Moment");
    };
    let source = match ctx.store.read(move |c| moments::media_source(c, id)).await {
        Ok(Some(source)) if source.state == Some(MediaState::Fetching) => source,
        Ok(_) => return Performed::only(Attempted::Done),
        Err(e) => return Performed::only(Attempted::read_failed("the Moment", &e)),
    };
    let dispatch = job.payload.get("dispatch").cloned();
    // A photo that joined its caption's Moment after it was posted: the artist is told
    // whether it was added.
    let added = job
        .payload
        .get("added")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let (sender, events, host) = (ctx.sender.name(), ctx.events(), ctx.host.clone());
    match ctx.media.keep(&source).await {
        Ok(file) => {
            tracing::info!(moment_id = id.0, %file, "media kept");
            Performed {
                attempted: Attempted::Done,
                record: Arc::new(move |tx, _| {
                    moments::lock_number(tx, id)?;
                    moments::media_kept(tx, id, &file)?;
                    if let Some(dispatch) = &dispatch {
                        let queue = match moments::artist_of(tx, id)? {
                            Some(artist) => host.queue(artist),
                            None => None,
                        };
                        let job = NewJob {
                            kind: JobKind::DispatchMoment,
                            payload: dispatch.clone(),
                            queue: queue.as_deref(),
                        };
                        // A photo alone still waits for its caption until its window ends.
                        let now = chrono::Utc::now();
                        let due = moments::merge_until(tx, id)?.unwrap_or(now);
                        jobs::enqueue_due(tx, &job, due, now)?;
                    }
                    if added {
                        tell_added(tx, id, ReplyKind::PhotoAdded, sender)?;
                    }
                    Ok(())
                }),
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
                    Settled::Failed { reason } if added => {
                        // The Moment stays the text it was posted as.
                        moments::drop_photo(tx, id)?;
                        tracing::warn!(
                            moment_id = id.0,
                            reason,
                            "a photo that joined a posted Moment could not be kept"
                        );
                        tell_added(tx, id, ReplyKind::MediaLost, sender)
                    }
                    Settled::Failed { reason } => {
                        moments::media_failed(tx, id, true, reason)?;
                        match &dispatch {
                            // Without its media the Moment is not posted, and the artist is
                            // told the photo did not arrive.
                            Some(dispatch) => {
                                let settle = dispatch_moment::Settle {
                                    texts: dispatch_moment::Texts::from_payload(dispatch),
                                    sender,
                                    events,
                                    host: host.clone(),
                                };
                                dispatch_moment::record(
                                    tx,
                                    id,
                                    Err(dispatch_moment::Failure {
                                        reason,
                                        told_as: Some(ReplyKind::MediaLost),
                                    }),
                                    None,
                                    &settle,
                                )
                            }
                            None => Ok(()),
                        }
                    }
                    Settled::Done => Ok(()),
                }),
            }
        }
    }
}

/// Tells the artist how a photo that joined a posted Moment fared, with the Moment's link.
fn tell_added(
    tx: &crate::db::Conn,
    id: MomentId,
    kind: ReplyKind,
    sender: &'static str,
) -> Result<(), crate::db::DbError> {
    let (Some(moment), Some(posted)) = (moments::to_dispatch(tx, id)?, moments::for_host(tx, id)?)
    else {
        return Ok(());
    };
    let links: Vec<String> = posted.url.into_iter().collect();
    dispatch_moment::tell(
        tx,
        moment.message_id,
        kind,
        &links,
        sender,
        chrono::Utc::now(),
    )
}
