//! Moments: recorded from a command, then dispatched.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{params, ts, Conn, DbError, Engine, Row, Text};
use crate::domain::ids::{ArtistId, MessageId, MomentId};
use crate::domain::moment::{MediaItem, MomentCommand, MomentContent, Price};
use crate::domain::number_state::ReplyKind;
use crate::domain::phone_number::PhoneNumber;
use crate::domain::TextEnum;
use crate::domain::{MediaState, MomentKindCode, MomentState};

/// Records a Moment command as a `pending` Moment; a media Moment's file is queued for
/// keeping in the same write.
pub fn insert(
    conn: &Conn,
    artist: ArtistId,
    message_id: MessageId,
    position: usize,
    command: &MomentCommand,
    now: DateTime<Utc>,
) -> Result<MomentId, DbError> {
    let (kind, media, link) = match &command.content {
        MomentContent::Media { item, .. } => (MomentKindCode::Media, Some(item), None),
        MomentContent::Link { url } => (MomentKindCode::Link, None, Some(url.as_str())),
        MomentContent::Text => (MomentKindCode::Text, None, None),
    };
    let too_big = |e: std::num::TryFromIntError| DbError::Encode(e.to_string());
    let price = i64::try_from(command.price.micro_usdc()).map_err(too_big)?;
    let position = i64::try_from(position).map_err(too_big)?;
    conn.query_value(
        "INSERT INTO moments (artist_id, message_id, position, kind, title, description,
           media_url, media_content_type, link_url, price_micro_usdc, state, created_at,
           updated_at, media_state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?11, ?11, ?13)
         RETURNING id",
        params![
            artist,
            message_id,
            position,
            Text(kind),
            command.title,
            command.description,
            media.map(|m| m.url.as_str()),
            media.map(|m| m.content_type.as_str()),
            link,
            price,
            ts(now),
            Text(MomentState::Pending),
            media.map(|_| Text(MediaState::Fetching))
        ],
    )
}

/// A Moment as the host platform is told of it.
#[derive(Debug, Clone)]
pub struct ForHost {
    pub id: MomentId,
    pub kind: MomentKindCode,
    pub title: String,
    pub description: String,
    pub price_micro_usdc: i64,
    pub link: Option<String>,
    pub created_at: String,
    pub artist_id: ArtistId,
    pub artist_name: String,
    pub artist_address: Option<String>,
    /// The number it was texted from.
    pub phone: String,
    /// The kept file and the type it is served as, for a media Moment.
    pub media: Option<(String, String)>,
    pub state: MomentState,
    /// Where it was created, once it is.
    pub url: Option<String>,
    /// Removed by UNDO.
    pub deleted: bool,
}

pub fn for_host(conn: &Conn, id: MomentId) -> Result<Option<ForHost>, DbError> {
    conn.query_opt(
        "SELECT m.id, m.kind, m.title, m.description, m.price_micro_usdc, m.link_url,
           m.created_at, a.id, a.name, a.address, g.phone, m.media_file, m.media_content_type,
           m.state, m.url, m.deleted_at IS NOT NULL
         FROM moments m JOIN artists a ON a.id = m.artist_id
           JOIN messages g ON g.id = m.message_id
         WHERE m.id = ?1",
        &[id],
        |r| {
            let file: Option<String> = r.get(11)?;
            let content_type: Option<String> = r.get(12)?;
            Ok(ForHost {
                id: r.get(0)?,
                kind: r.get::<_, Text<MomentKindCode>>(1)?.0,
                title: r.get(2)?,
                description: r.get(3)?,
                price_micro_usdc: r.get(4)?,
                link: r.get(5)?,
                created_at: r.get(6)?,
                artist_id: r.get(7)?,
                artist_name: r.get(8)?,
                artist_address: r.get(9)?,
                phone: r.get(10)?,
                media: file.map(|f| (f, content_type.unwrap_or_default())),
                state: r.get::<_, Text<MomentState>>(13)?.0,
                url: r.get(14)?,
                deleted: r.get(15)?,
            })
        },
    )
}

/// Marks a pending Moment created at `url`.
pub fn mark_created(
    conn: &Conn,
    id: MomentId,
    url: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE moments SET state = ?4, url = ?2, updated_at = ?3 WHERE id = ?1 AND state = ?5",
        params![
            id,
            url,
            ts(now),
            Text(MomentState::Created),
            Text(MomentState::Pending)
        ],
    )?;
    Ok(())
}

/// What dispatching a Moment needs: the message that asked for it, and where it is.
#[derive(Debug, Clone)]
pub struct ToDispatch {
    pub message_id: MessageId,
    pub state: MomentState,
    /// Removed by UNDO.
    pub deleted: bool,
}

/// Holds the number whose text asked for the Moment (`numbers::lock`): settling a Moment then
/// runs one at a time with UNDO and with the settling of its message's other Moments.
pub fn lock_number(conn: &Conn, id: MomentId) -> Result<(), DbError> {
    if conn.engine() == Engine::Sqlite {
        // SQLite's one writer holds the whole database: there is no number lock to take.
        return Ok(());
    }
    match phone_of(conn, id)? {
        Some(phone) => super::numbers::lock(conn, &phone),
        None => Ok(()),
    }
}

/// As `lock_number`, but `false` at once when another write holds the number.
pub fn try_lock_number(conn: &Conn, id: MomentId) -> Result<bool, DbError> {
    if conn.engine() == Engine::Sqlite {
        return Ok(true);
    }
    match phone_of(conn, id)? {
        Some(phone) => super::numbers::try_lock(conn, &phone),
        None => Ok(true),
    }
}

fn phone_of(conn: &Conn, id: MomentId) -> Result<Option<PhoneNumber>, DbError> {
    conn.query_opt(
        "SELECT m.phone FROM moments mo JOIN messages m ON m.id = mo.message_id WHERE mo.id = ?1",
        &[id],
        |r| r.get(0),
    )
}

pub fn to_dispatch(conn: &Conn, id: MomentId) -> Result<Option<ToDispatch>, DbError> {
    conn.query_opt(
        "SELECT message_id, state, deleted_at IS NOT NULL FROM moments WHERE id = ?1",
        &[id],
        |r| {
            Ok(ToDispatch {
                message_id: r.get(0)?,
                state: r.get::<_, Text<MomentState>>(1)?.0,
                deleted: r.get(2)?,
            })
        },
    )
}

/// The Moment UNDO would remove: the last one `phone` texted for `artist` since `since` that
/// is not failed or removed already.
pub fn last_undoable(
    conn: &Conn,
    phone: &PhoneNumber,
    artist: ArtistId,
    since: DateTime<Utc>,
) -> Result<Option<MomentId>, DbError> {
    conn.query_opt(
        "SELECT m.id FROM messages g JOIN moments m ON m.message_id = g.id
         WHERE g.phone = ?1 AND g.direction = 'inbound' AND g.created_at > ?3
           AND m.artist_id = ?2 AND m.created_at > ?3 AND m.deleted_at IS NULL
           AND m.state != ?4
         ORDER BY m.id DESC LIMIT 1",
        params![phone, artist, ts(since), Text(MomentState::Failed)],
        |r| r.get(0),
    )
}

/// Removes a Moment (UNDO): hidden from the API and its page from now on.
pub fn delete(conn: &Conn, id: MomentId, now: DateTime<Utc>) -> Result<(), DbError> {
    conn.execute(
        "UPDATE moments SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
        params![id, ts(now)],
    )?;
    Ok(())
}

/// Marks a pending Moment failed: it could not be posted.
pub fn mark_failed(conn: &Conn, id: MomentId, now: DateTime<Utc>) -> Result<(), DbError> {
    mark_failed_as(conn, id, None, now)
}

/// Records a pending Moment as failed, told with the reply `failure` (none: the plain "could
/// not be posted").
pub fn mark_failed_as(
    conn: &Conn,
    id: MomentId,
    failure: Option<ReplyKind>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE moments SET state = ?3, updated_at = ?2, failure = ?5 WHERE id = ?1 AND state = ?4",
        params![
            id,
            ts(now),
            Text(MomentState::Failed),
            Text(MomentState::Pending),
            failure.map(Text)
        ],
    )?;
    Ok(())
}

/// How a message's Moments ended, once none is pending any more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// The created Moments' links, in order.
    pub links: Vec<String>,
    pub failed: usize,
    /// The replies the failed ones are told with, each once, in order (the plain "could not be
    /// posted" for a failure with none of its own).
    pub failures: Vec<ReplyKind>,
}

/// How a message's Moments ended; `None` while one is still pending.
pub fn settled(conn: &Conn, message_id: MessageId) -> Result<Option<Settled>, DbError> {
    let rows = conn.query_map(
        "SELECT state, url, failure FROM moments WHERE message_id = ?1 AND deleted_at IS NULL
             ORDER BY position",
        &[message_id],
        |r| {
            Ok((
                r.get::<_, Text<MomentState>>(0)?.0,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )?;
    let mut settled = Settled::default();
    for row in rows {
        match row {
            (MomentState::Pending, _, _) => return Ok(None),
            (MomentState::Created, Some(url), _) => settled.links.push(url),
            (_, _, failure) => {
                settled.failed += 1;
                let told = failure
                    .as_deref()
                    .and_then(ReplyKind::parse)
                    .unwrap_or(ReplyKind::MomentFailed);
                if !settled.failures.contains(&told) {
                    settled.failures.push(told);
                }
            }
        }
    }
    Ok(Some(settled))
}

/// A Moment as the API and its page show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MomentView {
    #[schema(value_type = i64)]
    pub id: MomentId,
    pub kind: MomentKindCode,
    pub title: String,
    pub description: String,
    pub media: Option<MomentMedia>,
    pub link: Option<String>,
    /// USDC, as a decimal string.
    pub price: String,
    pub state: MomentState,
    pub url: Option<String>,
    pub artist: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MomentMedia {
    /// momentline's kept copy, once it is fetched (provider URLs expire or need credentials).
    pub url: Option<String>,
    pub content_type: String,
    pub state: MediaState,
    /// Where the provider had it.
    pub source_url: String,
}

const VIEW: &str = "SELECT m.id, m.kind, m.title, m.description, m.media_url,
    m.media_content_type, m.link_url, m.price_micro_usdc, m.state, m.url, a.name, m.created_at,
    m.media_state, m.media_file
    FROM moments m JOIN artists a ON a.id = m.artist_id";

fn read_view(r: &Row, public_url: &str) -> Result<MomentView, DbError> {
    let media_url: Option<String> = r.get(4)?;
    let content_type: Option<String> = r.get(5)?;
    let media_state = r
        .get::<_, Option<Text<MediaState>>>(12)?
        .map_or(MediaState::Failed, |t| t.0);
    let media_file: Option<String> = r.get(13)?;
    let price: i64 = r.get(7)?;
    Ok(MomentView {
        id: r.get(0)?,
        kind: r.get::<_, Text<MomentKindCode>>(1)?.0,
        title: r.get(2)?,
        description: r.get(3)?,
        media: media_url.map(|source_url| MomentMedia {
            url: match (&media_file, media_state) {
                (Some(file), MediaState::Kept) => Some(format!("{public_url}/media/{file}")),
                _ => None,
            },
            content_type: content_type.unwrap_or_default(),
            state: media_state,
            source_url,
        }),
        link: r.get(6)?,
        price: Price::from_micro_usdc(u64::try_from(price).unwrap_or_default()).to_string(),
        state: r.get::<_, Text<MomentState>>(8)?.0,
        url: r.get(9)?,
        artist: r.get(10)?,
        created_at: r.get(11)?,
    })
}

/// An artist's Moments, newest first.
pub fn for_artist(
    conn: &Conn,
    artist: ArtistId,
    offset: u32,
    limit: u32,
    public_url: &str,
) -> Result<Vec<MomentView>, DbError> {
    conn.query_map(
        &format!(
            "{VIEW} WHERE m.artist_id = ?1 AND m.deleted_at IS NULL ORDER BY m.id DESC
             LIMIT ?2 OFFSET ?3"
        ),
        params![artist, limit, offset],
        |r| read_view(r, public_url),
    )
}

/// A created Moment, for its public page.
pub fn created(conn: &Conn, id: MomentId, public_url: &str) -> Result<Option<MomentView>, DbError> {
    conn.query_opt(
        &format!("{VIEW} WHERE m.id = ?1 AND m.state = ?2 AND m.deleted_at IS NULL"),
        params![id, Text(MomentState::Created)],
        |r| read_view(r, public_url),
    )
}

/// A Moment's media file, where the provider has it.
#[derive(Debug, Clone)]
pub struct MediaSource {
    pub url: String,
    pub content_type: String,
    /// The provider whose webhook named the URL (its credentials may be needed).
    pub provider: String,
    pub state: Option<MediaState>,
}

pub fn media_source(conn: &Conn, id: MomentId) -> Result<Option<MediaSource>, DbError> {
    conn.query_opt(
        "SELECT m.media_url, m.media_content_type, g.provider, m.media_state
         FROM moments m JOIN messages g ON g.id = m.message_id WHERE m.id = ?1",
        &[id],
        |r| {
            Ok(MediaSource {
                url: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                content_type: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                provider: r.get(2)?,
                state: r.get::<_, Option<Text<MediaState>>>(3)?.map(|t| t.0),
            })
        },
    )
}

/// The file is kept as `file` in the media directory.
pub fn media_kept(conn: &Conn, id: MomentId, file: &str) -> Result<(), DbError> {
    conn.execute(
        "UPDATE moments SET media_state = ?2, media_file = ?3, media_error = NULL WHERE id = ?1",
        params![id, Text(MediaState::Kept), file],
    )?;
    Ok(())
}

/// A fetch failed: another will follow, or (`for_good`) none will and the media is lost.
pub fn media_failed(conn: &Conn, id: MomentId, for_good: bool, error: &str) -> Result<(), DbError> {
    let state = if for_good {
        MediaState::Failed
    } else {
        MediaState::Fetching
    };
    conn.execute(
        "UPDATE moments SET media_state = ?2, media_error = ?3 WHERE id = ?1",
        params![id, Text(state), error],
    )?;
    Ok(())
}

/// Holds a just-recorded Moment open until `until` for the other half of a split MMS.
pub fn open_for_merge(conn: &Conn, id: MomentId, until: DateTime<Utc>) -> Result<(), DbError> {
    conn.execute(
        "UPDATE moments SET merge_until = ?2 WHERE id = ?1",
        params![id, ts(until)],
    )?;
    Ok(())
}

/// The number's messages of the window, then their Moments: on SQLite `CROSS JOIN` keeps that
/// order and `+` keeps the artist's index out, so an artist's every Moment is never walked.
/// (The join's condition is in the WHERE clause, since PostgreSQL's CROSS JOIN takes no ON;
/// PostgreSQL plans the join by itself.)
const OPEN_TO_MERGE: &str = "SELECT m.id FROM messages g CROSS JOIN moments m
     WHERE m.message_id = g.id
       AND g.phone = ?1 AND g.direction = 'inbound' AND g.created_at >= ?2
       AND g.provider = ?3 AND +m.artist_id = ?4 AND m.kind = ?5 AND m.state = ?6
       AND m.deleted_at IS NULL AND m.merge_until > ?7
     ORDER BY m.id DESC LIMIT 1";

/// The Moment a half looks for to join: whose, from which number, through which provider, of
/// which kind, in which state.
#[derive(Debug, Clone, Copy)]
pub struct OpenHalf<'a> {
    pub artist: ArtistId,
    pub phone: &'a PhoneNumber,
    pub provider: &'a str,
    pub kind: MomentKindCode,
    pub state: MomentState,
}

/// The newest Moment `wanted` describes which is still open for merging at `now`: not
/// deleted, its window not over. Found through the number's recent messages
/// (`messages_phone`).
pub fn open_to_merge(
    conn: &Conn,
    wanted: &OpenHalf,
    window: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Option<MomentId>, DbError> {
    conn.query_opt(
        OPEN_TO_MERGE,
        params![
            wanted.phone,
            ts(now - window),
            wanted.provider,
            wanted.artist,
            Text(wanted.kind),
            Text(wanted.state),
            ts(now)
        ],
        |r| r.get(0),
    )
}

/// A caption joins a photo's Moment: its title, description and price; the Moment is closed
/// to further merging.
pub fn take_caption(conn: &Conn, id: MomentId, caption: &MomentCommand) -> Result<(), DbError> {
    let price =
        i64::try_from(caption.price.micro_usdc()).map_err(|e| DbError::Encode(e.to_string()))?;
    conn.execute(
        "UPDATE moments SET title = ?2, description = ?3, price_micro_usdc = ?4,
           merge_until = NULL
         WHERE id = ?1",
        params![id, caption.title, caption.description, price],
    )?;
    Ok(())
}

/// A photo joins a caption's Moment, which becomes a media Moment whose file is to be kept;
/// the Moment is closed to further merging.
pub fn take_photo(conn: &Conn, id: MomentId, item: &MediaItem) -> Result<(), DbError> {
    conn.execute(
        "UPDATE moments SET kind = ?2, media_url = ?3, media_content_type = ?4,
           media_state = ?5, merge_until = NULL
         WHERE id = ?1",
        params![
            id,
            Text(MomentKindCode::Media),
            item.url,
            item.content_type,
            Text(MediaState::Fetching)
        ],
    )?;
    Ok(())
}

/// A photo that joined a posted caption could not be kept: the Moment is the text it was.
pub fn drop_photo(conn: &Conn, id: MomentId) -> Result<(), DbError> {
    conn.execute(
        "UPDATE moments SET kind = ?2, media_url = NULL, media_content_type = NULL,
           media_state = NULL, media_file = NULL, media_error = NULL
         WHERE id = ?1",
        params![id, Text(MomentKindCode::Text)],
    )?;
    Ok(())
}

/// Until when the Moment waits for the other half of a split MMS, if it still does.
pub fn merge_until(conn: &Conn, id: MomentId) -> Result<Option<DateTime<Utc>>, DbError> {
    let until: Option<Option<String>> = conn.query_opt(
        "SELECT merge_until FROM moments WHERE id = ?1",
        &[id],
        |r| r.get(0),
    )?;
    super::opt_ts(until.flatten())
}

/// Whose Moment `id` is.
pub fn artist_of(conn: &Conn, id: MomentId) -> Result<Option<ArtistId>, DbError> {
    conn.query_opt("SELECT artist_id FROM moments WHERE id = ?1", &[id], |r| {
        r.get(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_half_is_found_through_the_numbers_recent_messages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            crate::store::Store::open(&dir.path().join("m.db"), Default::default()).expect("open");
        let plan: Vec<String> = store
            .reads()
            .with(|c| {
                c.query_map(
                    &format!("EXPLAIN QUERY PLAN {OPEN_TO_MERGE}"),
                    params!["+1", "t", "telnyx", 1, "text", "pending", "t"],
                    |r| r.get::<_, String>(3),
                )
            })
            .expect("plan");
        let plan = plan.join("\n");
        assert!(
            plan.contains(
                "SEARCH g USING INDEX messages_phone (phone=? AND direction=? AND created_at>?)"
            ),
            "{plan}"
        );
        assert!(
            plan.contains("SEARCH m USING INDEX sqlite_autoindex_moments_1 (message_id=?)"),
            "{plan}"
        );
    }
}

/// Where momentline has a number's photo (or other media), by the provider's URL of it.
#[derive(Debug, Clone)]
pub struct KeptMedia {
    pub source_url: String,
    pub state: MediaState,
    /// The file in the media directory, once kept.
    pub file: Option<String>,
    pub error: Option<String>,
}

/// The media of the Moments made from `phone`'s texts, from message `since` on (the dev
/// phone shows each photo from momentline's copy).
pub fn kept_media_of(
    conn: &Conn,
    phone: &PhoneNumber,
    since: MessageId,
) -> Result<Vec<KeptMedia>, DbError> {
    conn.query_map(
        "SELECT m.media_url, m.media_state, m.media_file, m.media_error
         FROM messages g JOIN moments m ON m.message_id = g.id
         WHERE g.phone = ?1 AND g.direction = 'inbound' AND g.id >= ?2
           AND m.media_url IS NOT NULL AND m.media_state IS NOT NULL
         ORDER BY m.id",
        params![phone, since],
        |r| {
            Ok(KeptMedia {
                source_url: r.get(0)?,
                state: r.get::<_, Text<MediaState>>(1)?.0,
                file: r.get(2)?,
                error: r.get(3)?,
            })
        },
    )
}
