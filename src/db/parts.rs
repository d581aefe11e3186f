//! Parts of multi-part inbound messages, kept until the whole message is in.

use super::{params, ts, Conn, DbError};
use crate::domain::ids::MessageId;
use crate::domain::phone_number::PhoneNumber;
use crate::providers::Part;
use chrono::{DateTime, Utc};

/// What storing one part came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartStored {
    /// This part was received before.
    Duplicate,
    /// More parts are to come.
    Waiting,
    /// Every part is in: the whole text, and the provider id of its first part.
    Complete { text: String, first_id: String },
}

pub struct NewPart<'a> {
    pub provider: &'a str,
    pub provider_message_id: &'a str,
    pub phone: &'a PhoneNumber,
    pub part: &'a Part,
    pub body: &'a str,
}

/// How long the parts of one message may take to arrive: Vonage resends for a day.
const PARTS_WINDOW: chrono::Duration = chrono::Duration::hours(24);

pub fn store(conn: &Conn, p: &NewPart, now: DateTime<Utc>) -> Result<PartStored, DbError> {
    // Holds the number first: two last parts stored at once on PostgreSQL would each see
    // the other's missing and neither complete the message.
    super::numbers::lock(conn, p.phone)?;
    let seen: bool = conn.query_value(
        "SELECT EXISTS (SELECT 1 FROM message_parts
                        WHERE provider = ?1 AND provider_message_id = ?2)",
        params![p.provider, p.provider_message_id],
    )?;
    if seen {
        return Ok(PartStored::Duplicate);
    }
    // Open parts under this reference that cannot belong to this message (the same part
    // number under another id, another total, or older than the resend window) are what is
    // left of an earlier message whose other parts never came: the reference is reused.
    let abandoned = conn.execute(
        "UPDATE message_parts SET abandoned_at = ?7
         WHERE provider = ?1 AND phone = ?2 AND reference = ?3
           AND message_id IS NULL AND abandoned_at IS NULL
           AND (part = ?4 OR total != ?5 OR created_at < ?6)",
        params![
            p.provider,
            p.phone,
            p.part.reference,
            p.part.number,
            p.part.total,
            ts(now - PARTS_WINDOW),
            ts(now)
        ],
    )?;
    if abandoned > 0 {
        tracing::warn!(
            provider = p.provider,
            reference = %p.part.reference,
            abandoned,
            "parts of an earlier message never completed; its reference is reused"
        );
    }
    let inserted = conn.execute(
        "INSERT INTO message_parts
           (provider, provider_message_id, phone, reference, part, total, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (provider, provider_message_id) DO NOTHING",
        params![
            p.provider,
            p.provider_message_id,
            p.phone,
            p.part.reference,
            p.part.number,
            p.part.total,
            p.body,
            ts(now)
        ],
    )?;
    if inserted == 0 {
        return Ok(PartStored::Duplicate);
    }
    let parts = conn.query_map(
        "SELECT body, provider_message_id FROM message_parts
         WHERE provider = ?1 AND phone = ?2 AND reference = ?3 AND total = ?4
           AND message_id IS NULL AND abandoned_at IS NULL
         ORDER BY part",
        params![p.provider, p.phone, p.part.reference, p.part.total],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    if parts.len() < usize::try_from(p.part.total).unwrap_or(usize::MAX) {
        return Ok(PartStored::Waiting);
    }
    let first_id = parts.first().map(|(_, id)| id.clone()).unwrap_or_default();
    Ok(PartStored::Complete {
        text: parts.into_iter().map(|(body, _)| body).collect(),
        first_id,
    })
}

/// Closes a complete set of parts: joined into `message_id`, or (`None`) into nothing, when
/// the whole message turned out to be known already.
pub fn close(
    conn: &Conn,
    p: &NewPart,
    message_id: Option<MessageId>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE message_parts
         SET message_id = ?5, abandoned_at = CASE WHEN CAST(?5 AS BIGINT) IS NULL
           THEN CAST(?6 AS TEXT) END
         WHERE provider = ?1 AND phone = ?2 AND reference = ?3 AND total = ?4
           AND message_id IS NULL AND abandoned_at IS NULL",
        params![
            p.provider,
            p.phone,
            p.part.reference,
            p.part.total,
            message_id,
            ts(now)
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::with_database;
    use std::sync::LazyLock;

    static PHONE: LazyLock<PhoneNumber> =
        LazyLock::new(|| PhoneNumber::parse("+14155552671").expect("a valid number"));

    fn part<'a>(id: &'a str, reference: &'a Part, body: &'a str) -> NewPart<'a> {
        NewPart {
            provider: "vonage",
            provider_message_id: id,
            phone: &PHONE,
            part: reference,
            body,
        }
    }

    fn of(number: u32, total: u32) -> Part {
        Part {
            reference: "08B5".into(),
            number,
            total,
        }
    }

    #[test]
    fn a_reused_reference_starts_afresh_and_never_mixes_in_old_parts() {
        with_database(|conn| {
            let now = chrono::Utc::now();
            let (one, two) = (of(1, 2), of(2, 2));
            // An old message whose part 2 never came.
            assert_eq!(
                store(conn, &part("old-1", &one, "OLD-ONE "), now).expect("store"),
                PartStored::Waiting
            );
            // A new message under the same reference.
            assert_eq!(
                store(conn, &part("new-1", &one, "NEW-ONE "), now).expect("store"),
                PartStored::Waiting
            );
            assert_eq!(
                store(conn, &part("new-2", &two, "NEW-TWO"), now).expect("store"),
                PartStored::Complete {
                    text: "NEW-ONE NEW-TWO".into(),
                    first_id: "new-1".into()
                }
            );
            // The old part, redelivered, is still a duplicate.
            assert_eq!(
                store(conn, &part("old-1", &one, "OLD-ONE "), now).expect("store"),
                PartStored::Duplicate
            );
            Ok(())
        });
    }

    #[test]
    fn parts_older_than_a_day_are_not_joined_with_new_ones() {
        with_database(|conn| {
            let now = chrono::Utc::now();
            let (one, two) = (of(1, 2), of(2, 2));
            let long_ago = now - chrono::Duration::hours(25);
            store(conn, &part("old-2", &two, "OLD-TWO"), long_ago).expect("store");
            assert_eq!(
                store(conn, &part("new-1", &one, "NEW-ONE "), now).expect("store"),
                PartStored::Waiting
            );
            Ok(())
        });
    }
}
