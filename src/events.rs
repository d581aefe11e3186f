//! Events for the host: what happened to a number or a Moment, each a `deliver_event` job
//! enqueued in the same write as the change it tells of. An event's id is made from that
//! change (a state-change row, a Moment), so it is the same on every attempt and the host can
//! drop repeats. Events about one number, or one Moment, are delivered one at a time in the
//! order they happened; the README documents every event's JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::db::jobs::{self, NewJob};
use crate::db::moments::ForHost;
use crate::db::{artists, Conn, DbError};
use crate::domain::ids::{ArtistId, ChangeId, MomentId};
use crate::domain::moment::Price;
use crate::domain::number_state::Standing;
use crate::domain::phone_number::mask;
use crate::domain::{text_enum, JobKind, MomentKindCode, TextEnum};

text_enum!(
    /// What an event tells of: its `type`.
    EventType {
        PhoneVerified => "phone.verified",
        PhoneDisconnected => "phone.disconnected",
        PhoneOptedOut => "phone.opted_out",
        PhoneOptedIn => "phone.opted_in",
        MomentCreated => "moment.created",
        MomentFailed => "moment.failed",
        MomentDeleted => "moment.deleted",
    }
);

/// A `phone.*` event: the body momentline posts to the events URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberEvent {
    /// `phone.verified`, `phone.disconnected`, `phone.opted_out` or `phone.opted_in`.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened, RFC 3339 with milliseconds, UTC.
    pub timestamp: String,
    pub data: NumberEventData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NumberEventData {
    /// The whole number, E.164: the host asked to connect it.
    pub phone_number: String,
    /// The artist that gained, lost or holds the number.
    pub artist: EventArtist,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventArtist {
    #[schema(value_type = i64)]
    pub id: ArtistId,
    pub name: Option<String>,
}

/// A `moment.*` event: the body momentline posts to the events URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct MomentEvent {
    /// `moment.created`, `moment.failed` or `moment.deleted`.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened, RFC 3339 with milliseconds, UTC.
    pub timestamp: String,
    pub data: MomentEventData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MomentEventData {
    pub moment: EventMoment,
    pub artist: EventMomentArtist,
    /// The number it was texted from, masked (`+1415•••2671`).
    pub phone_number: String,
    /// Why it failed (`moment.failed` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventMoment {
    #[schema(value_type = i64)]
    pub id: MomentId,
    pub kind: MomentKindCode,
    pub title: String,
    pub description: String,
    /// USDC, as a decimal string.
    pub price: String,
    pub price_micro_usdc: u64,
    pub link: Option<String>,
    /// Where it was created (`moment.created`), else null.
    pub url: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventMomentArtist {
    #[schema(value_type = i64)]
    pub id: ArtistId,
    pub name: String,
    /// The artist's wallet address, when known.
    pub address: Option<String>,
}

/// Whether events are delivered: writes that could cause one are told, so that with no
/// events URL nothing is queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    on: bool,
}

impl Events {
    pub const OFF: Self = Self { on: false };
    pub const ON: Self = Self { on: true };

    pub fn when(on: bool) -> Self {
        Self { on }
    }

    /// Whether changes make events.
    pub fn is_on(self) -> bool {
        self.on
    }

    /// Queues one event for delivery: `{"type", "timestamp", "data"}`, the payload shape of
    /// the Standard Webhooks spec.
    fn emit(
        self,
        tx: &Conn,
        id: String,
        queue: &str,
        body: impl Serialize,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if !self.on {
            return Ok(());
        }
        let body = serde_json::to_value(body).map_err(|e| DbError::Encode(e.to_string()))?;
        jobs::enqueue(
            tx,
            &NewJob {
                kind: JobKind::DeliverEvent,
                payload: json!({ "id": id, "body": body }),
                queue: Some(queue),
            },
            now,
        )?;
        Ok(())
    }

    /// The events a change of a number's standing makes (`change` is its history row):
    /// opting out or in, and an artist gaining or losing the number. The number is given
    /// whole: the host asked to connect it, so it already has it, and must know which it is.
    pub fn number_changed(
        self,
        tx: &Conn,
        e164: &str,
        from: &Standing,
        to: &Standing,
        change: ChangeId,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if !self.on {
            return Ok(());
        }
        let opted_out = |s: &Standing| matches!(s, Standing::OptedOut(_));
        let mut events: Vec<(EventType, Option<ArtistId>)> = Vec::new();
        match (opted_out(from), opted_out(to)) {
            (false, true) => events.push((EventType::PhoneOptedOut, to.artist())),
            (true, false) => events.push((EventType::PhoneOptedIn, to.artist())),
            _ => {}
        }
        if let Some(lost) = from.owner().filter(|a| to.owner() != Some(*a)) {
            events.push((EventType::PhoneDisconnected, Some(lost)));
        }
        if let Some(gained) = to.owner().filter(|a| from.owner() != Some(*a)) {
            events.push((EventType::PhoneVerified, Some(gained)));
        }
        let queue = format!("events/{e164}");
        for (kind, artist) in events {
            // A number no artist has asked for is none of the host's business.
            let Some(artist) = artist else { continue };
            let body = NumberEvent {
                kind,
                timestamp: timestamp(now),
                data: NumberEventData {
                    phone_number: e164.to_owned(),
                    artist: EventArtist {
                        id: artist,
                        name: artists::name_of(tx, artist)?,
                    },
                },
            };
            let id = format!(
                "evt_number_{change}_{}_{}",
                stamp(&timestamp(now)),
                kind.as_str().replace('.', "_")
            );
            self.emit(tx, id, &queue, body, now)?;
        }
        Ok(())
    }

    /// A Moment was created (at its URL), failed for good, or was deleted by UNDO.
    pub fn moment(
        self,
        tx: &Conn,
        kind: EventType,
        moment: &ForHost,
        url: Option<&str>,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if !self.on {
            return Ok(());
        }
        let price = u64::try_from(moment.price_micro_usdc).unwrap_or_default();
        let body = MomentEvent {
            kind,
            timestamp: timestamp(now),
            data: MomentEventData {
                moment: EventMoment {
                    id: moment.id,
                    kind: moment.kind,
                    title: moment.title.clone(),
                    description: moment.description.clone(),
                    price: Price::from_micro_usdc(price).to_string(),
                    price_micro_usdc: price,
                    link: moment.link.clone(),
                    url: url.map(str::to_owned),
                    created_at: moment.created_at.clone(),
                },
                artist: EventMomentArtist {
                    id: moment.artist_id,
                    name: moment.artist_name.clone(),
                    address: moment.artist_address.clone(),
                },
                phone_number: mask(&moment.phone).to_string(),
                reason: reason.map(str::to_owned),
            },
        };
        let id = format!(
            "evt_moment_{}_{}_{}",
            moment.id,
            stamp(&moment.created_at),
            kind.as_str().trim_start_matches("moment.")
        );
        let queue = format!("events/moment/{}", moment.id);
        self.emit(tx, id, &queue, body, now)
    }
}

/// A stored time's digits (`2026-11-22T10:00:00.123Z` → `20261122100000123`). Ids carry the
/// time of what they name beside its row id: a row id may be used again (a restored backup,
/// a new database sending to the same host), the pair is not, and it is the same on every
/// retry.
pub fn stamp(time: &str) -> String {
    time.chars().filter(char::is_ascii_digit).collect()
}

fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}
