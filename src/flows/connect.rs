//! Connecting and disconnecting numbers at an artist's request.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::db::artists::Artist;
use crate::db::{codes, messages, numbers, Conn, DbError};
use crate::domain::code::CodeState;
use crate::domain::ids::{ArtistId, MessageId};
use crate::domain::number_state::{
    on_connect, on_disconnect, ConnectContext, ConnectLimits, ConnectOutcome, ReplyKind,
};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::replies;
use crate::events::Events;
use crate::flows::number_change;
use crate::store::{Store, WriteError};

#[derive(Debug, Clone)]
pub struct ConnectSettings {
    pub pending_ttl: chrono::Duration,
    pub limits: ConnectLimits,
    /// The provider the prompt is queued for, and the number it goes out from.
    pub sender: &'static str,
    pub sender_number: Option<String>,
    /// Whether changes make events for the host.
    pub events: Events,
    /// Whether the provider brings replies back, so a reply 'yes' can verify a number.
    pub receives_replies: bool,
    /// How long a verification code holds from when it is sent.
    pub code_ttl: chrono::Duration,
}

impl ConnectSettings {
    /// Queues a text from the artist's side of a connect (a prompt, a code, a confirmation)
    /// to `phone`, from the configured sender; answers its message id.
    pub fn queue_text(
        &self,
        tx: &Conn,
        artist: ArtistId,
        phone: &PhoneNumber,
        body: &str,
        purpose: ReplyKind,
        now: DateTime<Utc>,
    ) -> Result<MessageId, DbError> {
        messages::queue_outbound(
            tx,
            &messages::NewOutbound {
                artist: Some(artist),
                to: phone.as_str(),
                from: self.sender_number.as_deref(),
                body,
                provider: self.sender,
                purpose,
            },
            now,
        )
    }
}

/// How the number proves it wants to be connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// It replies 'yes' to the prompt.
    Prompt,
    /// Its owner enters the code texted to it (`POST /api/phones/verify`).
    Code,
}

/// What a connect request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connected {
    Outcome(ConnectOutcome),
    /// The artist's code for the number died of wrong tries; no new one until it would have
    /// expired.
    CodeLocked {
        retry_after: chrono::Duration,
    },
}

/// Applies a connect request in one write; the prompt or code text, if any, is queued with
/// it.
pub async fn connect_number(
    store: &Store,
    settings: Arc<ConnectSettings>,
    artist: Artist,
    number: PhoneNumber,
    method: Method,
) -> Result<Connected, WriteError> {
    let (masked, artist_id) = (number.masked().to_string(), artist.id);
    let connected = store
        .write(move |tx| connect_in(tx, &settings, &artist, &number, method, Utc::now()))
        .await?;
    if let Connected::Outcome(ConnectOutcome::Prompt { .. }) = connected {
        let what = match method {
            Method::Prompt => "connect prompt queued",
            Method::Code => "verification code text queued",
        };
        tracing::info!(number = %masked, artist = artist_id.0, "{what}");
    }
    Ok(connected)
}

fn connect_in(
    tx: &Conn,
    settings: &ConnectSettings,
    artist: &Artist,
    number: &PhoneNumber,
    method: Method,
    now: DateTime<Utc>,
) -> Result<Connected, DbError> {
    let phone = number;
    // The artist's connects are counted across instances: the artist first, then the number
    // (the one order every write takes both in).
    tx.lock(&format!("artist:{}", artist.id))?;
    let standing = numbers::standing(tx, phone)?;
    let number_prompts = messages::number_prompt_times(tx, phone, now)?;
    let artist_prompts = messages::artist_prompt_times(tx, artist.id, now)?;
    let outcome = on_connect(
        &standing,
        artist.id,
        &ConnectContext {
            now,
            pending_ttl: settings.pending_ttl,
            number_prompts: &number_prompts,
            artist_prompts: &artist_prompts,
            limits: settings.limits,
        },
    );
    // An opted-out number is answered as such (409, nothing sent) whatever its code's state.
    if method == Method::Code && !matches!(outcome, ConnectOutcome::OptedOut) {
        let stored = codes::find(tx, phone, artist.id)?;
        if let Some(CodeState::Locked { retry_after }) = stored.map(|c| c.state(now)) {
            return Ok(Connected::CodeLocked { retry_after });
        }
    }
    if let ConnectOutcome::Prompt { next } = &outcome {
        number_change::change(
            tx,
            phone,
            &standing,
            next,
            numbers::Cause::Connect(artist.id),
            settings.events,
            now,
        )?;
        // A code text is stored with the code masked: the code itself is made when it is
        // sent, and the artist must not read it back from the conversation.
        let (body, purpose) = match method {
            Method::Prompt => (replies::prompt(&artist.name), ReplyKind::Prompt),
            Method::Code => (
                replies::code(replies::CODE_MASK, settings.code_ttl),
                ReplyKind::Code,
            ),
        };
        let message_id = settings.queue_text(tx, artist.id, phone, &body, purpose, now)?;
        if method == Method::Code {
            codes::replace(tx, phone, artist.id, message_id, now)?;
        }
    }
    Ok(Connected::Outcome(outcome))
}

/// Releases one of the artist's numbers, or all of them, in one write. Returns how many
/// were released.
pub async fn disconnect(
    store: &Store,
    settings: Arc<ConnectSettings>,
    artist: Artist,
    number: Option<PhoneNumber>,
) -> Result<usize, WriteError> {
    store
        .write(move |tx| disconnect_in(tx, settings.events, &artist, number.as_ref(), Utc::now()))
        .await
}

fn disconnect_in(
    tx: &Conn,
    events: Events,
    artist: &Artist,
    number: Option<&PhoneNumber>,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let e164s = match number {
        Some(n) => vec![n.clone()],
        None => numbers::e164s_for_artist(tx, artist.id)?,
    };
    let mut released = 0;
    for e164 in e164s {
        let standing = numbers::standing(tx, &e164)?;
        if let Some(next) = on_disconnect(&standing, artist.id) {
            let cause = numbers::Cause::Disconnect(artist.id);
            number_change::change(tx, &e164, &standing, &next, cause, events, now)?;
            codes::forget(tx, &e164, artist.id)?;
            released += 1;
        }
    }
    Ok(released)
}
