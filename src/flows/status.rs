//! What a provider says of our texts: a send it accepted, and its status reports, each with
//! the carrier opt-out it may carry applied to the number in the same write.

use chrono::{DateTime, Utc};

use crate::db::messages::{self, CarrierOptOut, StatusApplied};
use crate::db::{Conn, DbError};
use crate::domain::ids::MessageId;
use crate::events::Events;
use crate::flows::number_change;
use crate::providers::StatusReport;
use crate::store::{Store, WriteError};

/// Applies a provider's report on one of our texts, in one write.
pub async fn apply_status(
    store: &Store,
    report: StatusReport,
    events: Events,
) -> Result<StatusApplied, WriteError> {
    store
        .write(move |tx| {
            let now = Utc::now();
            let (applied, opted_out) = messages::apply_status(tx, &report, now)?;
            opt_out(tx, opted_out, events, now)?;
            Ok(applied)
        })
        .await
}

/// Records that the provider accepted text `id` under `provider_message_id`, with any report
/// about it that came first.
pub fn record_sent(
    tx: &Conn,
    id: MessageId,
    attempts: u32,
    provider: &str,
    provider_message_id: Option<&str>,
    events: Events,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let opted_out = messages::mark_sent(tx, id, attempts, provider, provider_message_id, now)?;
    opt_out(tx, opted_out, events, now)
}

fn opt_out(
    tx: &Conn,
    opted_out: Option<CarrierOptOut>,
    events: Events,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    match opted_out {
        Some(o) => number_change::carrier_opt_out(tx, &o.phone, o.message_id, events, now),
        None => Ok(()),
    }
}
