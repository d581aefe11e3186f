//! A Moment settled: recorded as created at its link or failed with the reason, with its
//! event, and, once the last of its message's Moments is settled, the message's texts
//! queued: "Moment posted" with every link (when the message's decision allowed a reply),
//! one short text when any could not be posted, then the replies decided after "Moment
//! posted". The dispatch job settles a Moment a host was asked for; a Moment momentline's own
//! page links without asking is settled in the write that records it (`flows::inbound`).

use chrono::Utc;

use crate::db::{messages, moments, Conn, DbError};
use crate::domain::ids::{MessageId, MomentId};
use crate::domain::number_state::ReplyKind;
use crate::domain::replies::{self, ReplyContext};
use crate::domain::{MomentState, TextEnum};
use crate::events::{EventType, Events};
use crate::host::Host;

/// What settling a dispatch needs besides its outcome.
pub struct Settle {
    pub texts: Texts,
    /// The provider the message's texts are queued for.
    pub sender: &'static str,
    pub events: Events,
    pub host: Host,
}

/// A Moment that could not be posted: why, and the reply it is told with (none: the plain
/// "could not be posted").
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub reason: &'a str,
    pub told_as: Option<ReplyKind>,
}

/// The texts a message's decision left for its Moments' dispatch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Texts {
    /// Whether to say "Moment posted".
    pub posted: bool,
    /// Replies decided after "Moment posted", sent after it.
    pub then: Vec<ReplyKind>,
}

impl Texts {
    /// From a dispatch job's payload.
    pub fn from_payload(payload: &serde_json::Value) -> Self {
        Self {
            posted: payload
                .get("reply")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            then: payload
                .get("then")
                .and_then(serde_json::Value::as_array)
                .map(|words| {
                    words
                        .iter()
                        .filter_map(|w| w.as_str().and_then(ReplyKind::parse))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Records a pending Moment as created at its URL, or failed with the reason, with its event;
/// then queues the message's texts if it was the last of its Moments to settle.
///
/// `host_attempt` is the dispatch attempt that reached for the host (`None`: no host was
/// asked). A Moment UNDO removed first is not told as created or failed. If the host has it
/// (it answered with a URL: UNDO came while it was posted), or may have it (a later attempt:
/// an earlier one may have reached it unanswered), a `moment.deleted` event has the host
/// withdraw it.
pub fn record(
    tx: &Conn,
    id: MomentId,
    outcome: Result<&str, Failure>,
    host_attempt: Option<u32>,
    settle: &Settle,
) -> Result<(), DbError> {
    let Settle {
        texts,
        sender,
        events,
        host,
    } = settle;
    moments::lock_number(tx, id)?;
    record_locked(
        tx,
        id,
        outcome,
        host_attempt,
        texts,
        (*sender, *events),
        host,
    )
}

/// As `record`, by a write that holds the Moment's number already.
fn record_locked(
    tx: &Conn,
    id: MomentId,
    outcome: Result<&str, Failure>,
    host_attempt: Option<u32>,
    texts: &Texts,
    (sender, events): (&'static str, Events),
    host: &Host,
) -> Result<(), DbError> {
    let now = Utc::now();
    let Some(moment) = moments::to_dispatch(tx, id)? else {
        return Ok(());
    };
    if moment.state != MomentState::Pending {
        // Settled before (this attempt's outcome was written twice): its texts are queued.
        return Ok(());
    }
    if moment.deleted {
        let url = outcome
            .ok()
            .filter(|url| host_attempt.is_some() && !url.is_empty());
        match url {
            Some(url) => {
                // UNDO came while the host was creating it: it is there now, and must go.
                moments::mark_created(tx, id, url, now)?;
                tracing::info!(moment_id = id.0, %url, "Moment removed by UNDO while the host created it: asking the host to withdraw it");
            }
            // UNDO removed it before it was posted: it never will be. It is settled as
            // failed, quietly (no text: the artist asked for this).
            None => moments::mark_failed(tx, id, now)?,
        }
        if url.is_some() || host_attempt.is_some_and(|attempt| attempt > 1) {
            if let Some(told) = moments::for_host(tx, id)? {
                host.withdraw(tx, &told, url, events, now)?;
            }
        }
    } else {
        match outcome {
            Ok(url) => moments::mark_created(tx, id, url, now)?,
            Err(failure) => moments::mark_failed_as(tx, id, failure.told_as, now)?,
        }
        // Read only for its event.
        let told = match events.is_on() {
            true => moments::for_host(tx, id)?,
            false => None,
        };
        if let Some(told) = told {
            match outcome {
                Ok(url) => {
                    events.moment(tx, EventType::MomentCreated, &told, Some(url), None, now)?
                }
                Err(failure) => events.moment(
                    tx,
                    EventType::MomentFailed,
                    &told,
                    None,
                    Some(failure.reason),
                    now,
                )?,
            }
        }
    }
    // Its message's texts go as if a removed Moment had never been.
    let Some(settled) = moments::settled(tx, moment.message_id)? else {
        return Ok(());
    };
    let kinds = texts_of(&settled, texts);
    if kinds.is_empty() {
        return Ok(());
    }
    let Some(conversation) = messages::conversation_of(tx, moment.message_id)? else {
        return Ok(());
    };
    for kind in kinds {
        tell_in(tx, &conversation, kind, &settled.links, sender, now)?;
    }
    Ok(())
}

/// Records Moments that the write recording their text has just recorded, each created at
/// once at its link (momentline's own page links without asking), with their events; then,
/// when they are every Moment of the message, queues its texts. What the write has just
/// written (the Moments pending, the message's conversation) is not read back.
pub fn record_created_now(
    tx: &Conn,
    conversation: &messages::Conversation,
    created: &[(MomentId, String)],
    every_moment: bool,
    texts: &Texts,
    (sender, events): (&'static str, Events),
) -> Result<(), DbError> {
    let now = Utc::now();
    for (id, link) in created {
        moments::mark_created(tx, *id, link, now)?;
        // Read only for its event.
        if events.is_on() {
            if let Some(told) = moments::for_host(tx, *id)? {
                events.moment(tx, EventType::MomentCreated, &told, Some(link), None, now)?;
            }
        }
    }
    if !every_moment {
        // The others are settled by their jobs; the last of them queues the texts.
        return Ok(());
    }
    let settled = moments::Settled {
        links: created.iter().map(|(_, link)| link.clone()).collect(),
        ..moments::Settled::default()
    };
    for kind in texts_of(&settled, texts) {
        tell_in(tx, conversation, kind, &settled.links, sender, now)?;
    }
    Ok(())
}

/// A message's texts once its Moments are settled: "Moment posted" with their links (when
/// the decision allowed it), a text for each kind of failure, then the replies decided after
/// "Moment posted".
fn texts_of(settled: &moments::Settled, texts: &Texts) -> Vec<ReplyKind> {
    let mut kinds = Vec::new();
    if texts.posted && !settled.links.is_empty() {
        kinds.push(ReplyKind::MomentPosted);
    }
    kinds.extend_from_slice(&settled.failures);
    kinds.extend_from_slice(&texts.then);
    kinds
}

/// Queues reply `kind` in the conversation of inbound message `message_id`, to its number.
pub fn tell(
    tx: &Conn,
    message_id: MessageId,
    kind: ReplyKind,
    links: &[String],
    sender: &'static str,
    now: chrono::DateTime<Utc>,
) -> Result<(), DbError> {
    match messages::conversation_of(tx, message_id)? {
        Some(inbound) => tell_in(tx, &inbound, kind, links, sender, now),
        None => Ok(()),
    }
}

/// Queues reply `kind` in `inbound`'s conversation, to its number.
fn tell_in(
    tx: &Conn,
    inbound: &messages::Conversation,
    kind: ReplyKind,
    links: &[String],
    sender: &'static str,
    now: chrono::DateTime<Utc>,
) -> Result<(), DbError> {
    let Some(body) = replies::render(
        kind,
        &ReplyContext {
            artist: None,
            manage_url: "",
            moment_links: links,
        },
    ) else {
        return Ok(());
    };
    messages::queue_outbound(
        tx,
        &messages::NewOutbound {
            artist: inbound.artist,
            to: &inbound.phone,
            from: inbound.service_number.as_deref().filter(|n| !n.is_empty()),
            body: &body,
            provider: sender,
            purpose: kind,
        },
        now,
    )?;
    Ok(())
}
