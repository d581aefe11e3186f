//! Events for the host: what happened to a number or a Moment, each a `deliver_event` job
//! enqueued in the same write as the change it tells of. An event's id is made from that
//! change (a state-change row, a Moment), so it is the same on every attempt and the host can
//! drop repeats. Events about one number, or one Moment, are delivered one at a time in the
//! order they happened; the README documents every event's JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use serde_json::{json, Value};

use crate::db::artists;
use crate::db::jobs::{self, NewJob};
use crate::db::moments::ForHost;
use crate::domain::moment::Price;
use crate::domain::number_state::{ArtistId, Standing};
use crate::domain::phone_number::mask;
use crate::domain::{text_enum, JobKind, TextEnum};

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

    /// Queues one event for delivery: `{"type", "timestamp", "data"}`, the payload shape of
    /// the Standard Webhooks spec.
    fn emit(
        self,
        tx: &Connection,
        kind: EventType,
        id: String,
        queue: &str,
        data: Value,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        if !self.on {
            return Ok(());
        }
        let body = json!({
            "type": kind,
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        });
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
        tx: &Connection,
        e164: &str,
        from: &Standing,
        to: &Standing,
        change: i64,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
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
            let data = json!({
                "phone_number": e164,
                "artist": artist_json(tx, artist)?,
            });
            let id = format!("evt_number_{change}_{}", kind.as_str().replace('.', "_"));
            self.emit(tx, kind, id, &queue, data, now)?;
        }
        Ok(())
    }

    /// A Moment was created (at its URL), failed for good, or was deleted by UNDO.
    pub fn moment(
        self,
        tx: &Connection,
        kind: EventType,
        moment: &ForHost,
        url: Option<&str>,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        if !self.on {
            return Ok(());
        }
        let price = u64::try_from(moment.price_micro_usdc).unwrap_or_default();
        let mut data = json!({
            "moment": {
                "id": moment.id,
                "kind": moment.kind,
                "title": moment.title,
                "description": moment.description,
                "price": Price::from_micro_usdc(price).to_string(),
                "price_micro_usdc": price,
                "link": moment.link,
                "url": url,
                "created_at": moment.created_at,
            },
            "artist": {
                "id": moment.artist_id,
                "name": moment.artist_name,
                "address": moment.artist_address,
            },
            "phone_number": mask(&moment.phone).to_string(),
        });
        if let Some(reason) = reason {
            data["reason"] = json!(reason);
        }
        let id = format!(
            "evt_moment_{}_{}",
            moment.id,
            kind.as_str().trim_start_matches("moment.")
        );
        let queue = format!("events/moment/{}", moment.id);
        self.emit(tx, kind, id, &queue, data, now)
    }
}

fn artist_json(tx: &Connection, id: ArtistId) -> rusqlite::Result<Value> {
    Ok(json!({ "id": id, "name": artists::name_of(tx, id)? }))
}
