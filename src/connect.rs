//! Connecting and disconnecting numbers at an artist's request.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::db::artists::Artist;
use crate::db::{messages, numbers};
use crate::domain::number_state::{
    on_connect, on_disconnect, ConnectContext, ConnectLimits, ConnectOutcome, ReplyKind,
};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::replies;
use crate::events::Events;
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
}

/// Applies a connect request in one write; the prompt, if any, is queued with it.
pub async fn connect_number(
    store: &Store,
    settings: Arc<ConnectSettings>,
    artist: Artist,
    number: PhoneNumber,
) -> Result<ConnectOutcome, WriteError> {
    let (masked, artist_id) = (number.masked().to_string(), artist.id);
    let outcome = store
        .write(move |tx| Ok(connect_in(tx, &settings, &artist, &number, Utc::now())?))
        .await?;
    if matches!(outcome, ConnectOutcome::Prompt { .. }) {
        tracing::info!(number = %masked, artist = artist_id, "connect prompt queued");
    }
    Ok(outcome)
}

fn connect_in(
    tx: &Connection,
    settings: &ConnectSettings,
    artist: &Artist,
    number: &PhoneNumber,
    now: DateTime<Utc>,
) -> rusqlite::Result<ConnectOutcome> {
    let phone = number.as_str();
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
    if let ConnectOutcome::Prompt { next } = &outcome {
        numbers::set_standing(
            tx,
            phone,
            &standing,
            next,
            numbers::Cause::Connect(artist.id),
            settings.events,
            now,
        )?;
        messages::queue_outbound(
            tx,
            &messages::NewOutbound {
                artist: Some(artist.id),
                to: phone,
                from: settings.sender_number.as_deref(),
                body: &replies::prompt(&artist.name),
                provider: settings.sender,
                purpose: ReplyKind::Prompt,
            },
            now,
        )?;
    }
    Ok(outcome)
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
        .write(move |tx| {
            Ok(disconnect_in(
                tx,
                settings.events,
                &artist,
                number.as_ref(),
                Utc::now(),
            )?)
        })
        .await
}

fn disconnect_in(
    tx: &Connection,
    events: Events,
    artist: &Artist,
    number: Option<&PhoneNumber>,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let e164s = match number {
        Some(n) => vec![n.as_str().to_owned()],
        None => numbers::e164s_for_artist(tx, artist.id)?,
    };
    let mut released = 0;
    for e164 in e164s {
        let standing = numbers::standing(tx, &e164)?;
        if let Some(next) = on_disconnect(&standing, artist.id) {
            let cause = numbers::Cause::Disconnect(artist.id);
            numbers::set_standing(tx, &e164, &standing, &next, cause, events, now)?;
            released += 1;
        }
    }
    Ok(released)
}
