//! A number's standing changes: the row and its change log (through `db::numbers`), the
//! event the host hears of it, and the metric that counts it, in the write that decided it.

use chrono::{DateTime, Utc};

use crate::db::numbers::{self, Cause};
use crate::db::{Conn, DbError};
use crate::domain::ids::MessageId;
use crate::domain::number_state::{on_carrier_opt_out, Standing};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::TextEnum;
use crate::events::Events;

/// Moves `e164` from `from` to `to` because of `cause`. The same standing again changes,
/// tells and counts nothing.
pub fn change(
    conn: &Conn,
    e164: &PhoneNumber,
    from: &Standing,
    to: &Standing,
    cause: Cause,
    events: Events,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let Some(change) = numbers::set_standing(conn, e164, from, to, cause, now)? else {
        return Ok(());
    };
    crate::store::note_transition(
        from.status().as_str(),
        to.status().as_str(),
        cause.word().as_str(),
    );
    events.number_changed(conn, e164.as_str(), from, to, change, now)
}

/// A provider says `e164` opted out with the carrier (its refusal of outbound message
/// `message_id` shows it): the state machine's carrier opt-out, applied.
pub fn carrier_opt_out(
    conn: &Conn,
    e164: &PhoneNumber,
    message_id: MessageId,
    events: Events,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let standing = numbers::standing(conn, e164)?;
    let Some(next) = on_carrier_opt_out(&standing) else {
        return Ok(());
    };
    change(
        conn,
        e164,
        &standing,
        &next,
        Cause::Provider(message_id),
        events,
        now,
    )?;
    tracing::warn!(number = %e164.masked(), message_id = message_id.0,
        "provider says the recipient opted out; number marked opted out");
    Ok(())
}
