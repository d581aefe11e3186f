//! Receiving a text: dedupe row, state change, Moments and their jobs, and queued replies, in
//! one write.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::db::jobs::{self, NewJob};
use crate::db::{artists, messages, moments, numbers, parts, Conn, DbError};
use crate::domain::ids::{MessageId, MomentId};
use crate::domain::keyword::Keyword;
use crate::domain::moment::{parse_moments, MomentCommand, MomentContent, SplitHalf};
use crate::domain::number_state::{
    on_inbound, ArtistId, Decision, Inbound, InboundContext, NumberStatus, ReplyKind, ReplyLimits,
    Standing, UNDO_WINDOW,
};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::replies::{self, ReplyContext};
use crate::domain::{JobKind, MomentState, TextEnum};
use crate::events::Events;
use crate::flows::merge::{self, MergeRule};
use crate::flows::number_change;
use crate::flows::settle::{self, Texts};
use crate::host::Host;
use crate::providers::InboundMessage;
use crate::store::{Store, WriteError};

/// What receiving needs to know besides the message.
#[derive(Debug, Clone)]
pub struct ReceiveSettings {
    pub manage_url: String,
    pub pending_ttl: chrono::Duration,
    pub reply_limits: ReplyLimits,
    /// The provider outbound texts are queued for.
    pub sender: &'static str,
    /// Where Moments are created.
    pub host: Host,
    /// Whether changes make events for the host.
    pub events: Events,
    /// How long a photo alone or a caption alone waits for its other half
    /// (`MOMENTLINE_MERGE_SECS`); zero never waits.
    pub merge_window: chrono::Duration,
}

impl ReceiveSettings {
    fn merge_rule(&self) -> MergeRule {
        MergeRule {
            window: self.merge_window,
            late_photos: self.host.takes_late_photos(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// This provider message id was received before: nothing was done.
    Duplicate,
    /// One part of a longer message, kept until the rest is in.
    Partial,
    Recorded {
        message_id: MessageId,
        moments: usize,
        replies: usize,
        /// Whether it joined the Moment of an MMS's other half instead of recording one.
        merged: bool,
        /// The number's status before and after, when it changed.
        changed: Option<(NumberStatus, NumberStatus)>,
    },
}

impl Receipt {
    /// Whether receiving queued any background work.
    pub fn queued_work(&self) -> bool {
        matches!(self, Self::Recorded { moments, replies, merged, .. }
            if moments + replies > 0 || *merged)
    }
}

/// Receives an authentic message in one write; answers once it is on disk.
///
/// A message that cannot be turned into what it asks for (a value the database refuses, a
/// fault in the code) would fail the same way on every redelivery, so it is kept anyway, with
/// the failure, and its artist is told: a signed text is never lost. Only faults a retry may
/// cure (the database busy or unavailable) are errors.
#[tracing::instrument(name = "receive", skip_all, fields(
    provider = message.provider,
    provider_message_id = %message.provider_message_id,
    from = %from.masked(),
))]
pub async fn receive(
    store: &Store,
    settings: Arc<ReceiveSettings>,
    message: InboundMessage,
    from: PhoneNumber,
) -> Result<Receipt, WriteError> {
    let (kept_settings, kept_message, kept_from) =
        (Arc::clone(&settings), message.clone(), from.clone());
    // A whole message is read before the write; one joined from parts only inside it.
    let read = message
        .part
        .is_none()
        .then(|| read_inbound(&message, Utc::now()));
    let received = store
        .write(move |tx| {
            // The number first, then the time: what the write decides by the clock (a merge
            // window, a dispatch not yet due) is decided as of when it holds the number.
            crate::db::numbers::lock(tx, &from)?;
            receive_in(tx, &settings, &message, &from, read.clone(), Utc::now())
        })
        .await;
    let reason = match &received {
        Ok(Receipt::Recorded {
            message_id,
            changed: Some((before, after)),
            ..
        }) => {
            tracing::info!(number = %kept_from.masked(), from = %before, to = %after,
                message_id = message_id.0, "number changed state");
            return received;
        }
        Err(WriteError::Failed(e)) if !e.is_transient() => crate::telemetry::error_chain(e),
        Err(WriteError::Panicked) => "receiving it panicked".to_owned(),
        _ => return received,
    };
    tracing::error!(provider = kept_message.provider, number = %kept_from.masked(),
        provider_message_id = %kept_message.provider_message_id, %reason,
        "a message could not be received as it asks; kept with the failure");
    store
        .write(move |tx| {
            keep_failed(
                tx,
                &kept_settings,
                &kept_message,
                &kept_from,
                &reason,
                Utc::now(),
            )
        })
        .await
}

/// Keeps a message that could not be received as it asks, with the reason, and tells its
/// artist (if the number is verified) that nothing was posted.
fn keep_failed(
    tx: &Conn,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Receipt, DbError> {
    let phone = from;
    let owner = match numbers::standing(tx, phone)? {
        Standing::Verified { owner, .. } => Some(owner),
        _ => None,
    };
    let Some(message_id) = insert(tx, message, phone, owner, now)? else {
        return Ok(Receipt::Duplicate);
    };
    messages::note_failure(tx, message_id, reason, now)?;
    let mut replies = 0;
    // A keyword (STOP, HELP, yes) asked for no Moment: "could not be posted" would make no
    // sense, and after a STOP no text may go at all.
    let keyword = message.media.is_empty() && Keyword::classify(&message.text).is_some();
    let failed = replies::render(
        ReplyKind::MomentFailed,
        &ReplyContext {
            artist: None,
            manage_url: &settings.manage_url,
            moment_links: &[],
        },
    );
    if let (Some(owner), Some(body)) = (owner.filter(|_| !keyword), failed) {
        messages::queue_outbound(
            tx,
            &messages::NewOutbound {
                artist: Some(owner),
                to: phone.as_str(),
                from: Some(message.to.as_str()).filter(|to| !to.is_empty()),
                body: &body,
                provider: settings.sender,
                purpose: ReplyKind::MomentFailed,
            },
            now,
        )?;
        replies = 1;
    }
    Ok(Receipt::Recorded {
        message_id,
        moments: 0,
        replies,
        merged: false,
        changed: None,
    })
}

/// Receives a message inside the writer's batch. The writer runs one write at a time, so
/// concurrent deliveries of one message are applied one after the other and the second
/// finds the first's row.
pub fn receive_in(
    tx: &Conn,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    read: Option<Inbound>,
    now: DateTime<Utc>,
) -> Result<Receipt, DbError> {
    let Some(part) = &message.part else {
        return receive_whole(tx, settings, message, from, read, now);
    };
    let new_part = parts::NewPart {
        provider: message.provider,
        provider_message_id: &message.provider_message_id,
        phone: from,
        part,
        body: &message.text,
    };
    let receipt = match parts::store(tx, &new_part, now)? {
        parts::PartStored::Duplicate => Receipt::Duplicate,
        parts::PartStored::Waiting => Receipt::Partial,
        parts::PartStored::Complete { text, first_id } => {
            let whole = InboundMessage {
                provider_message_id: first_id,
                text,
                part: None,
                ..message.clone()
            };
            let receipt = receive_whole(tx, settings, &whole, from, None, now)?;
            let joined = match receipt {
                Receipt::Recorded { message_id, .. } => Some(message_id),
                _ => None,
            };
            parts::close(tx, &new_part, joined, now)?;
            receipt
        }
    };
    Ok(receipt)
}

/// Receives one whole message inside the caller's transaction.
fn receive_whole(
    tx: &Conn,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    read: Option<Inbound>,
    now: DateTime<Utc>,
) -> Result<Receipt, DbError> {
    let decided = decide(tx, settings, message, from, read, now)?;
    let Some(message_id) = record(tx, settings, message, from, &decided, now)? else {
        return Ok(Receipt::Duplicate);
    };
    let (moments, replies, merged) =
        enqueue(tx, settings, message, from, &decided, message_id, now)?;
    // Said on the writer's thread, in the webhook's span; the webhook's answer says whether
    // the write committed.
    tracing::info!(
        message_id = message_id.0,
        moments,
        replies,
        merged,
        "recording the text"
    );
    let (before, after) = (&decided.standing, &decided.decision.next);
    Ok(Receipt::Recorded {
        message_id,
        moments,
        replies,
        merged,
        changed: (before != after).then(|| (before.status(), after.status())),
    })
}

/// What the state machine made of a message, and what it was decided from.
struct Decided {
    standing: Standing,
    decision: Decision,
    /// The Moment UNDO would remove, when the message is UNDO from a verified number.
    undoable: Option<MomentId>,
    keyword: bool,
}

/// Decides what a message does, from the number's standing and its recent texts: nothing is
/// written, so the message is then written once, already in its artist's conversation.
fn decide(
    tx: &Conn,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    read: Option<Inbound>,
    now: DateTime<Utc>,
) -> Result<Decided, DbError> {
    let phone = from;
    let standing = numbers::standing(tx, phone)?;
    let inbound = read.unwrap_or_else(|| read_inbound(message, now));
    // UNDO's Moment, looked up only when it is asked for.
    let undoable = match (&standing, inbound.keyword) {
        (Standing::Verified { owner, .. }, Some(Keyword::Undo)) => {
            moments::last_undoable(tx, phone, *owner, now - UNDO_WINDOW)?
        }
        _ => None,
    };
    let keyword = inbound.keyword.is_some();
    let context = InboundContext {
        now,
        pending_ttl: settings.pending_ttl,
        recent: messages::recent_replies(tx, phone, now, settings.reply_limits.welcome_interval)?,
        limits: settings.reply_limits,
        undoable: undoable.is_some(),
    };
    let mut decision = on_inbound(&standing, inbound, &context);
    if let Some(id) = undoable.filter(|_| decision.undo && settings.host.tells_withdrawal()) {
        // The host tells the artist once it has withdrawn a created Moment.
        if moments::to_dispatch(tx, id)?.is_some_and(|m| m.state == MomentState::Created) {
            decision
                .replies
                .retain(|kind| *kind != ReplyKind::MomentDeleted);
        }
    }
    Ok(Decided {
        standing,
        decision,
        undoable,
        keyword,
    })
}

/// Records the message (its id; `None` when its provider id was seen before, and nothing is
/// done), the number's change of standing, and an UNDO.
fn record(
    tx: &Conn,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    decided: &Decided,
    now: DateTime<Utc>,
) -> Result<Option<MessageId>, DbError> {
    let phone = from;
    let next = &decided.decision.next;
    // Only the artist a number is verified for sees what it texts, and what we answer it.
    let Some(message_id) = insert(tx, message, phone, next.owner(), now)? else {
        return Ok(None);
    };
    number_change::change(
        tx,
        phone,
        &decided.standing,
        next,
        numbers::Cause::Inbound(message_id),
        settings.events,
        now,
    )?;
    if let Some(id) = decided.undoable.filter(|_| decided.decision.undo) {
        undo(tx, id, settings, now)?;
    }
    Ok(Some(message_id))
}

/// Queues what the decision asks for: each Moment with its jobs (joined to its other half
/// instead, when it is one), and the replies. Answers the Moments recorded, the replies
/// queued, and whether the message joined a Moment.
fn enqueue(
    tx: &Conn,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    decided: &Decided,
    message_id: MessageId,
    now: DateTime<Utc>,
) -> Result<(usize, usize, bool), DbError> {
    let decision = &decided.decision;
    // "Moment posted" waits for the dispatch, and the replies that follow it wait with it,
    // so they still go out in the order decided.
    let (replies, after_posted) = match decision
        .replies
        .iter()
        .position(|kind| *kind == ReplyKind::MomentPosted)
    {
        Some(at) if !decision.moments.is_empty() => (
            decision.replies[..at].to_vec(),
            decision.replies[at + 1..].to_vec(),
        ),
        _ => (decision.replies.clone(), Vec::new()),
    };
    let posted = Texts {
        posted: replies.len() < decision.replies.len(),
        then: after_posted,
    };
    // A photo alone or a caption alone may be half of a split MMS: it joins the other half's
    // Moment if one is waiting, or waits for it.
    let half = merge::Half::of(
        settings.merge_rule(),
        &decision.next,
        decided.keyword,
        message,
        &decision.moments,
        from,
    );
    let merged = match &half {
        Some(half) => merge::join(tx, settings.merge_rule(), half, now)?.is_some(),
        None => false,
    };
    let moments = match (&decision.next, merged) {
        (Standing::Verified { owner, .. }, false) => {
            // Open to its other half until the window ends, and held back until then, so the
            // other half can still join before it is posted; a caption whose photo may join
            // it after it is posted (momentline's own page) is posted at once.
            let merge_until = half.as_ref().map(|_| now + settings.merge_window);
            let posted_late = half
                .as_ref()
                .is_some_and(|h| h.half == SplitHalf::Caption && settings.merge_rule().late_photos);
            let held = Held {
                artist: *owner,
                message_id,
                // As `record` wrote the message: in the conversation of the number's owner.
                conversation: messages::Conversation {
                    artist: decision.next.owner(),
                    phone: from.as_str().to_owned(),
                    service_number: Some(message.to.clone()),
                },
                merge_until,
                post_at: if posted_late {
                    now
                } else {
                    merge_until.unwrap_or(now)
                },
            };
            enqueue_moments(tx, settings, &decision.moments, &held, &posted, now)?
        }
        _ => 0,
    };
    queue_replies(tx, settings, message, from, decision, &replies, now)?;
    Ok((moments, replies.len(), merged))
}

/// Whose Moments they are, from which message (and its conversation, as recorded), until
/// when they are open to their other half, and when they are posted.
struct Held {
    artist: ArtistId,
    message_id: MessageId,
    conversation: messages::Conversation,
    merge_until: Option<DateTime<Utc>>,
    post_at: DateTime<Utc>,
}

/// Records each Moment, each dispatched by a job of its own (a media Moment's after its file
/// is kept, when the host is sent the kept copy); the last to finish queues the "Moment
/// posted" reply, when the decision allows one. A Moment due now that momentline's own page
/// links without asking needs no job: it is settled here, in the write that records it, once
/// every Moment of the message is recorded.
fn enqueue_moments(
    tx: &Conn,
    settings: &ReceiveSettings,
    commands: &[MomentCommand],
    held: &Held,
    posted: &Texts,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let mut settled_now = Vec::new();
    for (position, command) in commands.iter().enumerate() {
        let id = moments::insert(tx, held.artist, held.message_id, position, command, now)?;
        if let Some(until) = held.merge_until {
            moments::open_for_merge(tx, id, until)?;
        }
        let has_media = matches!(command.content, MomentContent::Media { .. });
        let link = settings.host.link_without_asking(id);
        if let Some(link) = link.filter(|_| !has_media && held.post_at <= now) {
            settled_now.push((id, link));
            continue;
        }
        let dispatch = serde_json::json!({
            "moment_id": id,
            "reply": posted.posted,
            "then": posted.then.iter().map(|kind| kind.as_str()).collect::<Vec<_>>(),
        });
        if has_media {
            // A media Moment is posted only once its file is kept (never called posted when
            // it was lost): the keep_media job enqueues the dispatch then.
            let keep = serde_json::json!({ "moment_id": id, "dispatch": dispatch });
            jobs::enqueue_keep_media(tx, keep, now)?;
        } else {
            jobs::enqueue_due(
                tx,
                &NewJob {
                    kind: JobKind::DispatchMoment,
                    payload: dispatch,
                    queue: settings.host.queue(held.artist).as_deref(),
                },
                held.post_at,
                now,
            )?;
        }
    }
    // The write holds the number (`receive`), as settling asks.
    if !settled_now.is_empty() {
        let every_moment = settled_now.len() == commands.len();
        settle::record_created_now(
            tx,
            &held.conversation,
            &settled_now,
            every_moment,
            posted,
            (settings.sender, settings.events),
        )?;
    }
    Ok(commands.len())
}

/// Queues the replies decided, from the number the texter wrote to.
fn queue_replies(
    tx: &Conn,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    decision: &Decision,
    replies: &[ReplyKind],
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let artist_name = match decision.next.artist() {
        Some(id) if !replies.is_empty() => artists::name_of(tx, id)?,
        _ => None,
    };
    let reply_context = ReplyContext {
        artist: artist_name.as_deref(),
        manage_url: &settings.manage_url,
        moment_links: &[],
    };
    let reply_from = Some(message.to.as_str()).filter(|to| !to.is_empty());
    for kind in replies {
        // The state machine decides only automatic texts, each with words of ours.
        let Some(body) = replies::render(*kind, &reply_context) else {
            continue;
        };
        messages::queue_outbound(
            tx,
            &messages::NewOutbound {
                artist: decision.next.owner(),
                to: from.as_str(),
                from: reply_from,
                body: &body,
                provider: settings.sender,
                purpose: *kind,
            },
            now,
        )?;
    }
    Ok(())
}

/// Removes a Moment for UNDO. One already on the host is withdrawn there with a
/// `moment.deleted` event; one not yet posted never will be (its dispatch sees it removed).
fn undo(
    tx: &Conn,
    id: MomentId,
    settings: &ReceiveSettings,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    moments::delete(tx, id, now)?;
    if let Some(moment) = moments::for_host(tx, id)? {
        tracing::info!(moment_id = id.0, state = %moment.state, "Moment removed by UNDO");
        if moment.state == MomentState::Created {
            let url = moment.url.as_deref();
            settings
                .host
                .withdraw(tx, &moment, url, settings.events, now)?;
        }
    }
    Ok(())
}

/// Records the message, in `artist`'s conversation; `None` when its provider id was seen.
fn insert(
    tx: &Conn,
    message: &InboundMessage,
    phone: &PhoneNumber,
    artist: Option<ArtistId>,
    now: DateTime<Utc>,
) -> Result<Option<MessageId>, DbError> {
    messages::insert_inbound(
        tx,
        &messages::NewInbound {
            artist,
            from: phone.as_str(),
            to: &message.to,
            body: &message.text,
            subject: message.subject.as_deref(),
            media: &message.media,
            provider: message.provider,
            provider_message_id: &message.provider_message_id,
        },
        now,
    )
}

/// What a whole message says, as the state machine reads it: pure, so it runs before the
/// write.
fn read_inbound(message: &InboundMessage, now: DateTime<Utc>) -> Inbound {
    Inbound {
        // A keyword is the whole message: a photo captioned "yes" is a Moment.
        keyword: message
            .media
            .is_empty()
            .then(|| Keyword::classify(&message.text))
            .flatten(),
        content: parse_moments(
            &message.text,
            message.subject.as_deref(),
            &message.media,
            now.date_naive(),
        ),
    }
}
