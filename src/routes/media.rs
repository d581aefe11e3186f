//! `GET /media/{file}`: Moment media kept by the media keeper.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::{blocking, ApiError, AppState, ErrorBody};
use crate::domain::media_type::content_type_for;
use crate::media::is_kept_name;

#[utoipa::path(
    get,
    path = "/media/{file}",
    tag = "public",
    summary = "A Moment's media, as momentline keeps it",
    description = "The file the media keeper fetched from the provider, named by its SHA-256 \
        and extension; cached for a year. Public; no key.",
    params(("file" = String, Path, description = "`<sha256>.<extension>`, as the keeper names \
        files", pattern = r"^[0-9a-f]{64}\.[a-z0-9]{1,5}$")),
    responses(
        (status = 200, description = "The file, served as the type its extension stands for: \
            an image, an audio file or a PDF", content(
                (Vec<u8> = "image/*"),
                (Vec<u8> = "audio/*"),
                (Vec<u8> = "application/pdf"),
            )),
        (status = 404, description = "No such file", body = ErrorBody),
    )
)]
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
