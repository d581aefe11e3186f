//! Verifying a number by the code texted to it: checked here against the stored hash, or by
//! the provider that made it (TextFlow), with the tries and expiry kept here either way.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::db::artists::Artist;
use crate::db::codes::{self, StoredCode};
use crate::db::{numbers, Conn, DbError};
use crate::domain::code::{Code, CodeState};
use crate::domain::ids::{ArtistId, MessageId};
use crate::domain::number_state::{on_code_confirmed, CodeConfirmed, ReplyKind};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::replies;
use crate::flows::connect::ConnectSettings;
use crate::flows::number_change;
use crate::providers::{SendError, Sender};
use crate::store::{Store, WriteError};

/// What entering a code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The number is now verified for the artist.
    Verified,
    AlreadyVerified,
    /// The artist asked for no code for this number (or it was used, or they disconnected).
    NoCode,
    /// The code's text has not gone out yet.
    NotSent,
    /// The code's text failed for good (the provider refused it): nobody has the code.
    TextFailed,
    Expired,
    /// Too many wrong codes: the code is dead until it would have expired.
    Locked {
        retry_after: Duration,
    },
    Wrong {
        tries_left: u32,
    },
    /// The number opted out (texted STOP) since the code was sent.
    OptedOut,
    /// The provider that holds the code could not say; no try was spent.
    ProviderUnavailable,
}

/// Checks `code` for `artist` on `number` and, when it is right, verifies the number.
pub async fn verify_code(
    store: &Store,
    sender: &Sender,
    settings: Arc<ConnectSettings>,
    artist: Artist,
    number: PhoneNumber,
    code: Code,
) -> Result<Verdict, WriteError> {
    let (masked, artist_id) = (number.masked().to_string(), artist.id);
    let verdict = match sender.code_service() {
        None => {
            store
                .write(move |tx| check_here(tx, &settings, &artist, &number, &code))
                .await?
        }
        Some(service) => {
            let (phone, id) = (number.clone(), artist.id);
            // A try is spent before the provider is asked, so parallel guesses cannot get
            // past the limit; it is given back if the provider decides nothing.
            let reserved = store
                .write(move |tx| reserve_try(tx, &phone, id, Utc::now()))
                .await?;
            let (message_id, tries_left) = match reserved {
                Ok(reserved) => reserved,
                Err(verdict) => return Ok(log(verdict, &masked, artist_id)),
            };
            match service.verify_code(number.as_str(), code.expose()).await {
                Ok(true) => {
                    store
                        .write(move |tx| {
                            let now = Utc::now();
                            numbers::lock(tx, &number)?;
                            let current = codes::find(tx, &number, artist.id)?;
                            if current.map(|c| c.message_id) != Some(message_id) {
                                return Ok(Verdict::NoCode);
                            }
                            confirm(tx, &settings, &artist, &number, now)
                        })
                        .await?
                }
                Ok(false) => Verdict::Wrong { tries_left },
                Err(e) => {
                    let reason = SendError::to_string(&e);
                    tracing::warn!(number = %masked, artist = artist_id.0, %reason,
                        "the provider could not check a code; no try spent, the client may try again");
                    store
                        .write(move |tx| codes::spend_try(tx, message_id, -1))
                        .await?;
                    Verdict::ProviderUnavailable
                }
            }
        }
    };
    Ok(log(verdict, &masked, artist_id))
}

fn log(verdict: Verdict, number: &str, artist: ArtistId) -> Verdict {
    let artist = artist.0;
    match &verdict {
        Verdict::Verified => tracing::info!(number, artist, "number verified by code"),
        Verdict::Wrong { tries_left } => {
            tracing::info!(number, artist, tries_left, "wrong verification code")
        }
        Verdict::Locked { .. } => {
            tracing::warn!(
                number,
                artist,
                "verification code locked after too many wrong tries"
            )
        }
        _ => {}
    }
    verdict
}

/// Where the artist's stored code stands; `Err` is the verdict when it cannot be tried. Holds
/// the number, so guesses at one code are counted one at a time.
fn open_code(
    tx: &Conn,
    phone: &PhoneNumber,
    artist: ArtistId,
    now: DateTime<Utc>,
) -> Result<Result<(StoredCode, u32), Verdict>, DbError> {
    numbers::lock(tx, phone)?;
    let Some(stored) = codes::find(tx, phone, artist)? else {
        return Ok(Err(Verdict::NoCode));
    };
    if stored.text_failed {
        return Ok(Err(Verdict::TextFailed));
    }
    Ok(match stored.state(now) {
        CodeState::NotSent => Err(Verdict::NotSent),
        CodeState::Expired => Err(Verdict::Expired),
        CodeState::Locked { retry_after } => Err(Verdict::Locked { retry_after }),
        CodeState::Open { tries_left } => Ok((stored, tries_left)),
    })
}

fn check_here(
    tx: &Conn,
    settings: &ConnectSettings,
    artist: &Artist,
    number: &PhoneNumber,
    code: &Code,
) -> Result<Verdict, DbError> {
    let (phone, now) = (number, Utc::now());
    let (stored, tries_left) = match open_code(tx, phone, artist.id, now)? {
        Ok(open) => open,
        Err(verdict) => return Ok(verdict),
    };
    let (Some(salt), Some(hash)) = (&stored.salt, &stored.hash) else {
        // Made by a provider no longer configured: nothing here can check it.
        return Ok(Verdict::NoCode);
    };
    if code.matches(hash, salt, phone.as_str(), artist.id) {
        return confirm(tx, settings, artist, number, now);
    }
    codes::spend_try(tx, stored.message_id, 1)?;
    Ok(Verdict::Wrong {
        tries_left: tries_left - 1,
    })
}

/// Spends a try on the artist's open code: its text's id and the tries left after this one.
fn reserve_try(
    tx: &Conn,
    phone: &PhoneNumber,
    artist: ArtistId,
    now: DateTime<Utc>,
) -> Result<Result<(MessageId, u32), Verdict>, DbError> {
    Ok(match open_code(tx, phone, artist, now)? {
        Ok((stored, tries_left)) => {
            codes::spend_try(tx, stored.message_id, 1)?;
            Ok((stored.message_id, tries_left - 1))
        }
        Err(verdict) => Err(verdict),
    })
}

/// The right code: the number's own "yes" to the artist, through the state machine, with
/// its history row. The code is used up.
fn confirm(
    tx: &Conn,
    settings: &ConnectSettings,
    artist: &Artist,
    number: &PhoneNumber,
    now: DateTime<Utc>,
) -> Result<Verdict, DbError> {
    let phone = number;
    let standing = numbers::standing(tx, phone)?;
    let verdict = match on_code_confirmed(&standing, artist.id) {
        CodeConfirmed::OptedOut => Verdict::OptedOut,
        CodeConfirmed::AlreadyVerified => Verdict::AlreadyVerified,
        CodeConfirmed::Verified { next } => {
            let cause = numbers::Cause::Code(artist.id);
            number_change::change(tx, phone, &standing, &next, cause, settings.events, now)?;
            // The confirmation says how to post by text, which only works when replies come
            // back to momentline.
            let ctx = replies::ReplyContext {
                artist: Some(&artist.name),
                manage_url: "",
                moment_links: &[],
            };
            let confirmation = replies::render(ReplyKind::Verified, &ctx);
            if let Some(body) = confirmation.filter(|_| settings.receives_replies) {
                settings.queue_text(tx, artist.id, phone, &body, ReplyKind::Verified, now)?;
            }
            Verdict::Verified
        }
    };
    codes::forget(tx, phone, artist.id)?;
    Ok(verdict)
}
