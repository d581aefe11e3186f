//! Receiving a text: dedupe row, state change, Moments and queued replies in one transaction.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

use crate::db::{self, artists, messages, moments, numbers, parts};
use crate::domain::keyword::Keyword;
use crate::domain::moment::parse_moments;
use crate::domain::number_state::{on_inbound, Inbound, InboundContext, ReplyLimits, Standing};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::replies::{self, ReplyContext};
use crate::providers::InboundMessage;

/// What receiving needs to know besides the message.
pub struct ReceiveSettings<'a> {
    pub public_url: &'a str,
    pub manage_url: &'a str,
    pub pending_ttl: chrono::Duration,
    pub reply_limits: ReplyLimits,
    /// The provider outbound texts are queued for.
    pub sender: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// This provider message id was received before: nothing was done.
    Duplicate,
    /// One part of a longer message, kept until the rest is in.
    Partial,
    Recorded {
        message_id: i64,
        moments: usize,
        replies: usize,
    },
}

pub fn receive(
    conn: &mut Connection,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    now: DateTime<Utc>,
) -> rusqlite::Result<Receipt> {
    // IMMEDIATE takes the write lock first, so concurrent deliveries of one message queue up
    // here and the second finds the first's row.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(part) = &message.part else {
        let receipt = receive_whole(&tx, settings, message, from, now)?;
        tx.commit()?;
        return Ok(receipt);
    };
    let new_part = parts::NewPart {
        provider: message.provider,
        provider_message_id: &message.provider_message_id,
        phone: from.as_str(),
        part,
        body: &message.text,
    };
    let receipt = match parts::store(&tx, &new_part, now)? {
        parts::PartStored::Duplicate => Receipt::Duplicate,
        parts::PartStored::Waiting => Receipt::Partial,
        parts::PartStored::Complete { text, first_id } => {
            let whole = InboundMessage {
                provider_message_id: first_id,
                text,
                part: None,
                ..message.clone()
            };
            let receipt = receive_whole(&tx, settings, &whole, from, now)?;
            let joined = match receipt {
                Receipt::Recorded { message_id, .. } => Some(message_id),
                _ => None,
            };
            parts::close(&tx, &new_part, joined, now)?;
            receipt
        }
    };
    tx.commit()?;
    Ok(receipt)
}

/// Receives one whole message inside the caller's transaction.
fn receive_whole(
    tx: &Connection,
    settings: &ReceiveSettings,
    message: &InboundMessage,
    from: &PhoneNumber,
    now: DateTime<Utc>,
) -> rusqlite::Result<Receipt> {
    let phone = from.as_str();
    let standing = numbers::standing(tx, phone)?;
    let Some(message_id) = messages::insert_inbound(
        tx,
        &messages::NewInbound {
            from: phone,
            to: &message.to,
            body: &message.text,
            subject: message.subject.as_deref(),
            media: &message.media,
            provider: message.provider,
            provider_message_id: &message.provider_message_id,
        },
        now,
    )?
    else {
        return Ok(Receipt::Duplicate);
    };

    let inbound = Inbound {
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
    };
    let context = InboundContext {
        now,
        pending_ttl: settings.pending_ttl,
        recent: messages::recent_replies(tx, phone, now)?,
        limits: settings.reply_limits,
    };
    let decision = on_inbound(&standing, inbound, &context);
    numbers::set_standing(
        tx,
        phone,
        &standing,
        &decision.next,
        numbers::Cause::Inbound(message_id),
        now,
    )?;

    let mut links = Vec::new();
    if let Standing::Verified { owner, .. } = &decision.next {
        for (position, command) in decision.moments.iter().enumerate() {
            let id = moments::insert(tx, *owner, message_id, position, command, now)?;
            links.push(dispatch_embedded(tx, id, settings.public_url, now)?);
        }
    }

    // Only the artist a number is verified for sees what it texts, and what we answer it.
    let artist = decision.next.owner();
    if let Some(owner) = artist {
        messages::assign_artist(tx, message_id, owner)?;
    }
    let artist_name = decision
        .next
        .artist()
        .map(|id| artists::name_of(tx, id))
        .transpose()?
        .flatten();
    let reply_context = ReplyContext {
        artist: artist_name.as_deref(),
        manage_url: settings.manage_url,
        moment_links: &links,
    };
    // Replies come from the number the texter wrote to.
    let reply_from = Some(message.to.as_str()).filter(|to| !to.is_empty());
    for kind in &decision.replies {
        let body = replies::render(*kind, &reply_context);
        messages::queue_outbound(
            tx,
            &messages::NewOutbound {
                artist,
                to: phone,
                from: reply_from,
                body: &body,
                provider: settings.sender,
                purpose: *kind,
            },
            now,
        )?;
    }
    if standing != decision.next {
        tracing::info!(
            number = %from.masked(),
            from = %standing.status(),
            to = %decision.next.status(),
            message_id,
            "number changed state"
        );
    }
    Ok(Receipt::Recorded {
        message_id,
        moments: links.len(),
        replies: decision.replies.len(),
    })
}

/// The embedded dispatch: the Moment is recorded here and its page is momentline's own.
fn dispatch_embedded(
    conn: &Connection,
    moment_id: i64,
    public_url: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<String> {
    let url = format!("{public_url}/moments/{moment_id}");
    db::moments::mark_created(conn, moment_id, &url, now)?;
    Ok(url)
}
