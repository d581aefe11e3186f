//! Phone numbers' standing and the history of its changes.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{opt_ts, params, parse_ts, ts, Conn, DbError, Text};
use crate::domain::ids::{ArtistId, ChangeId, MessageId};
use crate::domain::number_state::{ChangeCause, ConnectRequest, NumberStatus, Standing};
use crate::domain::phone_number::PhoneNumber;

/// Why a number's standing changed.
#[derive(Debug, Clone, Copy)]
pub enum Cause {
    /// An inbound message (its id).
    Inbound(MessageId),
    /// An artist's connect request.
    Connect(ArtistId),
    /// An artist's disconnect request.
    Disconnect(ArtistId),
    /// A provider refused an outbound message (its id) because the recipient opted out.
    Provider(MessageId),
    /// An artist entered the right verification code for the number.
    Code(ArtistId),
}

impl Cause {
    /// The word the change log keeps for it.
    pub fn word(self) -> ChangeCause {
        match self {
            Self::Inbound(_) => ChangeCause::Inbound,
            Self::Connect(_) => ChangeCause::Connect,
            Self::Disconnect(_) => ChangeCause::Disconnect,
            Self::Provider(_) => ChangeCause::Provider,
            Self::Code(_) => ChangeCause::Code,
        }
    }
}

/// The columns one standing is stored as.
struct Row {
    state: NumberStatus,
    owner: Option<ArtistId>,
    request: Option<ConnectRequest>,
    before: Option<NumberStatus>,
}

fn to_row(standing: &Standing) -> Row {
    match standing {
        Standing::Unknown => Row {
            state: NumberStatus::Unknown,
            owner: None,
            request: None,
            before: None,
        },
        Standing::Pending(request) => Row {
            state: NumberStatus::Pending,
            owner: None,
            request: Some(request.clone()),
            before: None,
        },
        Standing::Verified { owner, takeover } => Row {
            state: NumberStatus::Verified,
            owner: Some(*owner),
            request: takeover.clone(),
            before: None,
        },
        Standing::OptedOut(before) => Row {
            before: Some(before.status()),
            ..to_row(before)
        },
    }
    .with_state(standing.status())
}

impl Row {
    fn with_state(self, state: NumberStatus) -> Self {
        Self { state, ..self }
    }

    fn standing(&self, state: NumberStatus) -> Result<Standing, DbError> {
        let corrupt = |what: &str| DbError::Decode(format!("phone_numbers row: {what}"));
        Ok(match state {
            NumberStatus::Unknown => Standing::Unknown,
            NumberStatus::Pending => Standing::Pending(
                self.request
                    .clone()
                    .ok_or_else(|| corrupt("pending without a request"))?,
            ),
            NumberStatus::Verified => Standing::Verified {
                owner: self
                    .owner
                    .ok_or_else(|| corrupt("verified without an owner"))?,
                takeover: self.request.clone(),
            },
            NumberStatus::OptedOut => {
                let before = self
                    .before
                    .ok_or_else(|| corrupt("no state before opt-out"))?;
                if before == NumberStatus::OptedOut {
                    return Err(corrupt("opted out before opting out"));
                }
                Standing::OptedOut(Box::new(self.standing(before)?))
            }
        })
    }
}

fn read_row(r: &super::Row) -> Result<Row, DbError> {
    let requester: Option<ArtistId> = r.get("requester_id")?;
    let requested_at = opt_ts(r.get("requested_at")?)?;
    Ok(Row {
        state: r.get::<_, Text<NumberStatus>>("state")?.0,
        owner: r.get("owner_id")?,
        request: requester
            .zip(requested_at)
            .map(|(artist, at)| ConnectRequest { artist, at }),
        before: r
            .get::<_, Option<Text<NumberStatus>>>("state_before_opt_out")?
            .map(|t| t.0),
    })
}

/// Holds the number until the write ends: every write that decides from a number's standing
/// or its recent texts holds it first (`standing` does), so on PostgreSQL a number's writes
/// run one at a time across instances, as every write does on SQLite.
pub fn lock(conn: &Conn, e164: &PhoneNumber) -> Result<(), DbError> {
    conn.lock(&format!("number:{e164}"))
}

/// As `lock`, but `false` at once when another write holds the number.
pub fn try_lock(conn: &Conn, e164: &PhoneNumber) -> Result<bool, DbError> {
    conn.try_lock(&format!("number:{e164}"))
}

/// A number's standing; `Unknown` when it has never been seen. Holds the number (`lock`).
pub fn standing(conn: &Conn, e164: &PhoneNumber) -> Result<Standing, DbError> {
    lock(conn, e164)?;
    let row = conn.query_opt(
        "SELECT state, owner_id, requester_id, requested_at, state_before_opt_out
         FROM phone_numbers WHERE e164 = ?1",
        &[e164],
        read_row,
    )?;
    match row {
        Some(row) => row.standing(row.state),
        None => Ok(Standing::Unknown),
    }
}

/// Stores a number's new standing and records the change with its cause; answers the
/// change's id, or `None` when the standing is the same (nothing is recorded).
pub fn set_standing(
    conn: &Conn,
    e164: &PhoneNumber,
    from: &Standing,
    to: &Standing,
    cause: Cause,
    now: DateTime<Utc>,
) -> Result<Option<ChangeId>, DbError> {
    if from == to {
        return Ok(None);
    }
    let row = to_row(to);
    let (requester, requested_at) = match &row.request {
        Some(r) => (Some(r.artist), Some(ts(r.at))),
        None => (None, None),
    };
    conn.execute(
        "INSERT INTO phone_numbers
           (e164, state, owner_id, requester_id, requested_at, state_before_opt_out, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (e164) DO UPDATE SET state = excluded.state, owner_id = excluded.owner_id,
           requester_id = excluded.requester_id, requested_at = excluded.requested_at,
           state_before_opt_out = excluded.state_before_opt_out,
           updated_at = excluded.updated_at",
        params![
            e164,
            Text(row.state),
            row.owner,
            requester,
            requested_at,
            row.before.map(Text),
            ts(now)
        ],
    )?;
    let (message_id, artist_id) = match cause {
        Cause::Inbound(id) | Cause::Provider(id) => (Some(id), None),
        Cause::Connect(artist) | Cause::Disconnect(artist) | Cause::Code(artist) => {
            (None, Some(artist))
        }
    };
    let change: ChangeId = conn.query_value(
        "INSERT INTO number_state_changes
           (e164, from_state, to_state, from_owner_id, to_owner_id, cause, message_id,
            artist_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         RETURNING id",
        params![
            e164,
            Text(from.status()),
            Text(to.status()),
            from.owner(),
            to.owner(),
            Text(cause.word()),
            message_id,
            artist_id,
            ts(now)
        ],
    )?;
    Ok(Some(change))
}

/// A number as an artist sees it in `GET /api/phones`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArtistNumber {
    pub phone_number: String,
    pub state: NumberStatus,
    pub updated_at: String,
}

/// The numbers an artist owns or has asked for (and the request has not expired), with the
/// state each has for that artist.
pub fn for_artist(
    conn: &Conn,
    artist: ArtistId,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> Result<Vec<ArtistNumber>, DbError> {
    let rows = conn.query_map(
        "SELECT e164, state, owner_id, requester_id, requested_at, state_before_opt_out,
                updated_at
         FROM phone_numbers WHERE owner_id = ?1 OR requester_id = ?1 ORDER BY e164",
        &[artist],
        |r| {
            let row = read_row(r)?;
            let standing = row.standing(row.state)?;
            Ok((
                r.get::<_, String>("e164")?,
                standing,
                r.get::<_, String>("updated_at")?,
            ))
        },
    )?;
    let mut numbers = Vec::new();
    for (phone_number, standing, updated_at) in rows {
        let live = |r: &ConnectRequest| r.artist == artist && !r.expired(now, ttl);
        let Some(state) = state_for(&standing, artist, &live) else {
            continue;
        };
        numbers.push(ArtistNumber {
            phone_number,
            state,
            updated_at: parse_ts(&updated_at).map(ts)?,
        });
    }
    Ok(numbers)
}

/// How a number stands for one artist: a live request of theirs is `pending`, whether the
/// number is unclaimed or verified for someone else.
fn state_for(
    standing: &Standing,
    artist: ArtistId,
    live: &dyn Fn(&ConnectRequest) -> bool,
) -> Option<NumberStatus> {
    match standing {
        Standing::Unknown => None,
        Standing::Pending(r) => live(r).then_some(NumberStatus::Pending),
        Standing::Verified { owner, .. } if *owner == artist => Some(NumberStatus::Verified),
        Standing::Verified { takeover, .. } => takeover
            .as_ref()
            .filter(|r| live(r))
            .map(|_| NumberStatus::Pending),
        Standing::OptedOut(before) => {
            state_for(before, artist, live).map(|_| NumberStatus::OptedOut)
        }
    }
}

/// The e164 of every number an artist owns or has asked for.
pub fn e164s_for_artist(conn: &Conn, artist: ArtistId) -> Result<Vec<PhoneNumber>, DbError> {
    conn.query_map(
        "SELECT e164 FROM phone_numbers WHERE owner_id = ?1 OR requester_id = ?1 ORDER BY e164",
        &[artist],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use crate::store::with_database;

    #[test]
    fn every_standing_round_trips_through_its_row() {
        with_database(|c| {
            let key = crate::domain::api_key::ApiKey::generate().expect("key");
            let now = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
            let a = db::artists::create(c, "A", None, &key, now)
                .expect("insert")
                .expect("new")
                .id;
            let request = ConnectRequest { artist: a, at: now };
            let number = PhoneNumber::parse("+14155552671").expect("a valid number");
            let standings = [
                Standing::Pending(request.clone()),
                Standing::Verified {
                    owner: a,
                    takeover: None,
                },
                Standing::Verified {
                    owner: a,
                    takeover: Some(request.clone()),
                },
                Standing::OptedOut(Box::new(Standing::Verified {
                    owner: a,
                    takeover: Some(request.clone()),
                })),
                Standing::OptedOut(Box::new(Standing::Pending(request))),
                Standing::OptedOut(Box::new(Standing::Unknown)),
                Standing::Unknown,
            ];
            let mut previous = Standing::Unknown;
            for s in standings {
                set_standing(c, &number, &previous, &s, Cause::Connect(a), now).expect("store");
                assert_eq!(standing(c, &number).expect("load"), s);
                previous = s;
            }
            let changes: i64 =
                c.query_value("SELECT count(*) FROM number_state_changes", params![])?;
            assert_eq!(changes, 7);
            Ok(())
        });
    }
}
