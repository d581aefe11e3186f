//! dispatch_moment: make a recorded Moment public on the host (`crate::host`): one that must
//! be asked is asked, and its answer is the link; momentline's own page needs no asking: a
//! Moment due at once is settled in the write that records its text (`flows::inbound`), one
//! whose dispatch waited (for its file, for its other half) in the write that claims the job.
//! Settling is `flows::settle`: the last of a message's Moments to settle queues its texts.

use std::sync::Arc;

use chrono::Utc;

use super::{payload_id, Attempted, JobContext, Performed, Settled, LONGEST_WAIT};
use crate::db::jobs::Claimed;
use crate::db::{moments, Conn, DbError};
use crate::domain::ids::{ArtistId, MomentId};
use crate::domain::number_state::ReplyKind;
use crate::domain::MomentState;
use crate::events::Events;
pub use crate::flows::settle::{record, tell, Failure, Settle, Texts};
use crate::host::{Host, HostMedia, NotCreated, Refused, ToCreate};

#[tracing::instrument(name = "dispatch_moment", skip_all, fields(moment_id = payload_id::<i64>(job, "moment_id")))]
pub async fn perform(ctx: &JobContext, job: &Claimed) -> Performed {
    let Some(id) = payload_id::<MomentId>(job, "moment_id") else {
        return Performed::failed("the job names no Moment");
    };
    let settle = Settle {
        texts: Texts::from_payload(&job.payload),
        sender: ctx.sender.name(),
        events: ctx.events(),
        host: ctx.host.clone(),
    };
    let (attempted, url, host_attempt, after) = match ctx.host.link_without_asking(id) {
        Some(link) => (Attempted::Done, link, None, After::default()),
        None => match ask_host(ctx, id).await {
            Ok(Some(url)) => (Attempted::Done, url, Some(job.attempt), After::default()),
            // Settled before: nothing to send.
            Ok(None) => return Performed::only(Attempted::Done),
            Err((attempted, after)) => (attempted, String::new(), Some(job.attempt), after),
        },
    };
    Performed {
        attempted,
        record: Arc::new(move |tx, settled| {
            let outcome = match settled {
                Settled::Done => Ok(url.as_str()),
                Settled::Failed { reason } => Err(Failure {
                    reason,
                    told_as: after.told_as,
                }),
                Settled::Retrying { .. } => {
                    if let Some((artist, refused)) = &after.paused {
                        tell_paused(tx, id, *artist, refused, &settle.host, settle.sender)?;
                    }
                    return Ok(());
                }
            };
            record(tx, id, outcome, host_attempt, &settle)
        }),
    }
}

/// What an attempt that did not post leaves to record besides its outcome.
#[derive(Debug, Clone, Default)]
struct After {
    /// The reply a failure is told with.
    told_as: Option<ReplyKind>,
    /// The host refused the artist's key: its Moments wait for a new one.
    paused: Option<(ArtistId, Refused)>,
}

/// Posts the Moment to the host; answers the URL it gives (empty for a Moment UNDO removed
/// first, which is not posted again; one UNDO removed while it was posted keeps its URL, so
/// `record` has the host withdraw it), `None` when the Moment is no longer pending, or how the
/// attempt failed.
async fn ask_host(ctx: &JobContext, id: MomentId) -> Result<Option<String>, (Attempted, After)> {
    let found = ctx
        .store
        .read(move |c| moments::for_host(c, id))
        .await
        .map_err(|e| (Attempted::read_failed("the Moment", &e), After::default()))?;
    let Some(moment) = found.filter(|m| m.state == MomentState::Pending) else {
        return Ok(None);
    };
    if moment.deleted {
        // UNDO came first: it is never posted (`record` settles it).
        return Ok(Some(String::new()));
    }
    let media = moment.media.as_ref().map(|(file, content_type)| HostMedia {
        url: format!("{}/media/{file}", ctx.public_url),
        content_type: content_type.clone(),
        size: ctx.media.size_of(file),
        sha256: file.split('.').next().unwrap_or_default().to_owned(),
    });
    let to_create = ToCreate {
        moment: &moment,
        media,
    };
    match ctx.host.create(&to_create).await {
        Ok(url) => {
            tracing::info!(moment_id = id.0, %url, "Moment created on the host");
            Ok(Some(url))
        }
        Err(NotCreated::Retry {
            reason,
            retry_after,
        }) => Err((
            Attempted::Retry {
                reason,
                at_least: retry_after,
            },
            After::default(),
        )),
        Err(NotCreated::Wait { reason, wait }) => {
            Err((Attempted::Throttled { reason, wait }, After::default()))
        }
        Err(NotCreated::Paused { reason, refused }) => Err((
            Attempted::Throttled {
                reason,
                wait: LONGEST_WAIT,
            },
            After {
                told_as: None,
                paused: refused.map(|refused| (moment.artist_id, refused)),
            },
        )),
        Err(NotCreated::Failed { reason, told_as }) => Err((
            Attempted::Failed { reason },
            After {
                told_as,
                paused: None,
            },
        )),
    }
}

/// The host refused the artist's key: the first time, the artist is told, in the
/// conversation of Moment `id` (once, however many of its Moments wait).
pub fn tell_paused(
    tx: &Conn,
    id: MomentId,
    artist: ArtistId,
    refused: &Refused,
    host: &Host,
    sender: &'static str,
) -> Result<(), DbError> {
    let now = Utc::now();
    if !host.pause(tx, artist, refused, now)? {
        return Ok(());
    }
    let Some(moment) = moments::to_dispatch(tx, id)? else {
        return Ok(());
    };
    tell(
        tx,
        moment.message_id,
        ReplyKind::KeyRefused,
        &[],
        sender,
        now,
    )
}

/// The embedded dispatch has nothing to wait for, so it is settled in the write that claims
/// it. `false` leaves the job to the runner's ordinary path (its payload is not as expected,
/// or another write holds its number: the claim, which holds the jobs it took, never waits
/// for a number, so no two claims, nor a claim and a merge, wait for each other).
pub fn settle_at_claim(
    tx: &Conn,
    job: &Claimed,
    host: &Host,
    sender: &'static str,
    events: Events,
) -> Result<bool, DbError> {
    let Some(id) = payload_id::<MomentId>(job, "moment_id") else {
        return Ok(false);
    };
    let Some(url) = host.link_without_asking(id) else {
        return Ok(false);
    };
    if !moments::try_lock_number(tx, id)? {
        return Ok(false);
    }
    let settle = Settle {
        texts: Texts::from_payload(&job.payload),
        sender,
        events,
        host: host.clone(),
    };
    record(tx, id, Ok(&url), None, &settle)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::params;
    use crate::domain::ids::{ArtistId, MessageId};
    use crate::domain::moment::{MomentCommand, MomentContent, Price};

    fn failure(reason: &str) -> Failure<'_> {
        Failure {
            reason,
            told_as: None,
        }
    }

    fn moment(conn: &Conn, message: MessageId, position: usize) -> MomentId {
        let command = MomentCommand {
            title: format!("Moment {position}"),
            description: String::new(),
            price: Price::from_micro_usdc(1_000_000),
            content: MomentContent::Text,
        };
        moments::insert(conn, ArtistId(1), message, position, &command, Utc::now()).expect("moment")
    }

    #[test]
    fn the_last_moment_to_settle_queues_its_texts_once_and_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            crate::store::Store::open(&dir.path().join("d.db"), Default::default()).expect("open");
        store
            .reads()
            .with(|conn| {
                last_moment_scene(conn);
                Ok(())
            })
            .expect("conn");
    }

    fn last_moment_scene(conn: &Conn) {
        conn.execute_batch(
            "INSERT INTO artists (id, name, created_at) VALUES (1, 'A', '2026-11-22T00:00:00.000Z');
             INSERT INTO messages (id, direction, artist_id, phone, service_number, body, provider,
               provider_message_id, state, created_at, updated_at)
             VALUES (1, 'inbound', 1, '+14155552671', '+18445550001', 'x', 'telnyx', 'in-1',
               'received', '2026-11-22T00:00:00.000Z', '2026-11-22T00:00:00.000Z');",
        )
        .expect("scene");
        let (first, second) = (moment(conn, MessageId(1), 0), moment(conn, MessageId(1), 1));
        let texts = |c: &Conn| -> Vec<String> {
            c.query_map(
                "SELECT purpose || ': ' || body FROM messages WHERE direction = 'outbound' ORDER BY id",
                params![],
                |r| r.get(0),
            )
            .expect("texts")
        };

        let posted = Settle {
            texts: Texts {
                posted: true,
                then: vec![ReplyKind::VideoRefused],
            },
            sender: "telnyx",
            events: Events::OFF,
            host: Host::Embedded(crate::host::embedded::Embedded::new(
                "https://m.example".into(),
            )),
        };
        record(
            conn,
            first,
            Ok("https://m.example/moments/1"),
            None,
            &posted,
        )
        .expect("first");
        assert!(texts(conn).is_empty(), "one Moment is still pending");
        record(conn, second, Err(failure("host 400")), None, &posted).expect("second");
        assert_eq!(
            texts(conn),
            [
                "moment_posted: Moment posted: https://m.example/moments/1",
                "moment_failed: Your Moment could not be posted. Please try again later.",
                "video_refused: Videos are not supported. Text a link to the video instead."
            ]
        );
        let state: String = conn
            .query_value("SELECT state FROM moments WHERE id = ?1", &[second])
            .expect("state");
        assert_eq!(state, "failed");
        let jobs: i64 = conn
            .query_value(
                "SELECT count(*) FROM jobs WHERE kind = 'send_text'",
                params![],
            )
            .expect("jobs");
        assert_eq!(jobs, 3, "each text has the job that sends it");

        // Settling again (an outcome written twice) queues nothing more.
        record(conn, second, Err(failure("host 400")), None, &posted).expect("again");
        assert_eq!(texts(conn).len(), 3);
    }
}
