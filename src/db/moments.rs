//! Moments: recorded from a command, then dispatched.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{ts, Text};
use crate::domain::moment::{MomentCommand, MomentContent, Price};
use crate::domain::number_state::ArtistId;
use crate::domain::{MomentKindCode, MomentState};

/// Records a Moment command as a `pending` Moment.
pub fn insert(
    conn: &Connection,
    artist: ArtistId,
    message_id: i64,
    position: usize,
    command: &MomentCommand,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    let (kind, media, link) = match &command.content {
        MomentContent::Media { item, .. } => (MomentKindCode::Media, Some(item), None),
        MomentContent::Link { url } => (MomentKindCode::Link, None, Some(url.as_str())),
        MomentContent::Text => (MomentKindCode::Text, None, None),
    };
    let too_big = |e: std::num::TryFromIntError| rusqlite::Error::ToSqlConversionFailure(e.into());
    let price = i64::try_from(command.price.micro_usdc()).map_err(too_big)?;
    let position = i64::try_from(position).map_err(too_big)?;
    conn.execute(
        "INSERT INTO moments (artist_id, message_id, position, kind, title, description,
           media_url, media_content_type, link_url, price_micro_usdc, state, created_at,
           updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?11, ?11)",
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
            Text(MomentState::Pending)
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Marks a pending Moment created at `url`.
pub fn mark_created(
    conn: &Connection,
    id: i64,
    url: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
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

/// A Moment as the API and its page show it.
#[derive(Debug, Serialize)]
pub struct MomentView {
    pub id: i64,
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

#[derive(Debug, Serialize)]
pub struct MomentMedia {
    pub url: String,
    pub content_type: String,
}

const VIEW: &str = "SELECT m.id, m.kind, m.title, m.description, m.media_url,
    m.media_content_type, m.link_url, m.price_micro_usdc, m.state, m.url, a.name, m.created_at
    FROM moments m JOIN artists a ON a.id = m.artist_id";

fn read_view(r: &rusqlite::Row) -> rusqlite::Result<MomentView> {
    let media_url: Option<String> = r.get(4)?;
    let content_type: Option<String> = r.get(5)?;
    let price: i64 = r.get(7)?;
    Ok(MomentView {
        id: r.get(0)?,
        kind: r.get::<_, Text<MomentKindCode>>(1)?.0,
        title: r.get(2)?,
        description: r.get(3)?,
        media: media_url.map(|url| MomentMedia {
            url,
            content_type: content_type.unwrap_or_default(),
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
    conn: &Connection,
    artist: ArtistId,
    offset: u32,
    limit: u32,
) -> rusqlite::Result<Vec<MomentView>> {
    let mut stmt = conn.prepare(&format!(
        "{VIEW} WHERE m.artist_id = ?1 ORDER BY m.id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![artist, limit, offset], read_view)?;
    rows.collect()
}

/// A created Moment, for its public page.
pub fn created(conn: &Connection, id: i64) -> rusqlite::Result<Option<MomentView>> {
    conn.query_row(
        &format!("{VIEW} WHERE m.id = ?1 AND m.state = ?2"),
        params![id, Text(MomentState::Created)],
        read_view,
    )
    .optional()
}
