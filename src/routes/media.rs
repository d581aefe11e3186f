//! `GET /media/{file}`: Moment media kept by the media keeper.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::{blocking, ApiError, AppState};
use crate::media::{content_type_for, is_kept_name};

pub async fn file(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("Media not found".into());
    let name = name.into_inner();
    // Only names the keeper writes: no path can reach outside the media directory.
    if !is_kept_name(&name) {
        return Err(not_found());
    }
    let path = state.settings.media_dir.join(&name);
    let bytes = blocking("Failed to read media", move || match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .await?
    .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok()
        .content_type(content_type_for(&name))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(bytes))
}
