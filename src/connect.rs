//! Connecting and disconnecting numbers at an artist's request.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

use crate::db::artists::Artist;
use crate::db::{messages, numbers};
use crate::domain::number_state::{
    on_connect, on_disconnect, ConnectContext, ConnectLimits, ConnectOutcome, ReplyKind,
};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::replies;

pub struct ConnectSettings<'a> {
    pub pending_ttl: chrono::Duration,
    pub limits: ConnectLimits,
    /// The provider the prompt is queued for, and the number it goes out from.
    pub sender: &'a str,
    pub sender_number: Option<&'a str>,
}

/// Applies a connect request in one transaction; the prompt, if any, is queued with it.
pub fn connect_number(
    conn: &mut Connection,
    settings: &ConnectSettings,
    artist: &Artist,
    number: &PhoneNumber,
    now: DateTime<Utc>,
) -> rusqlite::Result<ConnectOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let phone = number.as_str();
    let standing = numbers::standing(&tx, phone)?;
    let number_prompts = messages::number_prompt_times(&tx, phone, now)?;
    let artist_prompts = messages::artist_prompt_times(&tx, artist.id, now)?;
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
            &tx,
            phone,
            &standing,
            next,
            numbers::Cause::Connect(artist.id),
            now,
        )?;
        messages::queue_outbound(
            &tx,
            &messages::NewOutbound {
                artist: Some(artist.id),
                to: phone,
                from: settings.sender_number,
                body: &replies::prompt(&artist.name),
                provider: settings.sender,
                purpose: ReplyKind::Prompt,
            },
            now,
        )?;
        tx.commit()?;
        tracing::info!(number = %number.masked(), artist = artist.id, "connect prompt queued");
    }
    Ok(outcome)
}

/// Releases one of the artist's numbers, or all of them. Returns how many were released.
pub fn disconnect(
    conn: &mut Connection,
    artist: &Artist,
    number: Option<&PhoneNumber>,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let e164s = match number {
        Some(n) => vec![n.as_str().to_owned()],
        None => numbers::e164s_for_artist(&tx, artist.id)?,
    };
    let mut released = 0;
    for e164 in e164s {
        let standing = numbers::standing(&tx, &e164)?;
        if let Some(next) = on_disconnect(&standing, artist.id) {
            let cause = numbers::Cause::Disconnect(artist.id);
            numbers::set_standing(&tx, &e164, &standing, &next, cause, now)?;
            released += 1;
        }
    }
    tx.commit()?;
    Ok(released)
}
