//! A Moment's token metadata, as In Process's `tokenMetadataURI` points to it: JSON that
//! momentline serves publicly so In Process can fetch and keep it (`MOMENTLINE_DISPATCH=inprocess`).
//! A media Moment has none until its media is uploaded there (its `ar://` URI is in it).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{read, ApiError, AppState, ErrorBody};
use crate::db::inprocess::{self, Metadata};
use crate::domain::ids::MomentId;
use crate::domain::moment::MediaKind;

/// What a token's metadata says: `name`, `description`, the media as `image` (an image) or
/// `animation_url` (anything else), and `content` (its type and URI).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenMetadata {
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub animation_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Content {
    pub mime: String,
    pub uri: String,
}

impl TokenMetadata {
    /// The metadata of a Moment; `None` for a media Moment whose media is not uploaded yet.
    pub fn of(m: Metadata) -> Option<Self> {
        let mut metadata = Self {
            name: m.title,
            description: m.description,
            image: None,
            animation_url: None,
            external_url: m.link,
            content: None,
        };
        if m.media {
            let uri = m.media_uri?;
            let mime = m.content_type.unwrap_or_default();
            if MediaKind::of(&mime) == MediaKind::Image {
                metadata.image = Some(uri.clone());
            } else {
                metadata.animation_url = Some(uri.clone());
            }
            metadata.content = Some(Content { mime, uri });
        }
        Some(metadata)
    }
}

#[utoipa::path(
    get,
    path = "/moments/{id}/metadata.json",
    operation_id = "moment_metadata",
    tag = "public",
    summary = "A Moment's token metadata (In Process)",
    description = "The JSON In Process keeps as the Moment's `tokenMetadataURI`, once its media \
        is uploaded there. Public; no key.",
    params(("id" = i64, Path, description = "The Moment's id")),
    responses(
        (status = 200, description = "The metadata", body = TokenMetadata),
        (status = 404, description = "No such Moment, removed, or its media is not uploaded yet", body = ErrorBody),
    )
)]
pub async fn metadata(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let missing = || ApiError::NotFound("No metadata for this Moment".into());
    let id = path.parse().map(MomentId).map_err(|_| missing())?;
    let found = read(&state, "Failed to read the Moment's metadata", move |c| {
        inprocess::metadata(c, id)
    })
    .await?;
    let metadata = found.and_then(TokenMetadata::of).ok_or_else(missing)?;
    Ok(HttpResponse::Ok().json(metadata))
}
