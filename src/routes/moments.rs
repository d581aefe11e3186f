//! `/api/moments` for the artist, and the public page of each Moment.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Serialize;
use utoipa::ToSchema;

use super::moment_page::MomentPage as PageTemplate;
use super::{html, read, ApiError, AppState, Authenticated, ErrorBody, KeyRefused, Page};
use crate::db::moments::{self, MomentView};
use crate::domain::ids::MomentId;

/// A page of the artist's Moments, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MomentPage {
    pub moments: Vec<MomentView>,
    pub offset: u32,
    pub limit: u32,
}

#[utoipa::path(
    get,
    path = "/api/moments",
    operation_id = "list_moments",
    tag = "moments",
    summary = "The artist's Moments, newest first",
    params(Page),
    responses(
        (status = 200, description = "A page of Moments", body = MomentPage),
        (status = 400, description = "offset or limit is not a whole number in range", body = ErrorBody),
        KeyRefused,
    ),
    security(("api_key" = []))
)]
pub async fn list(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (offset, limit) = Page::parse(req.query_string())?;
    let public_url = state.settings.public_url.clone();
    let moments = read(&state, "Failed to list moments", move |c| {
        moments::for_artist(c, artist.id, offset, limit, &public_url)
    })
    .await?;
    Ok(HttpResponse::Ok().json(MomentPage {
        moments,
        offset,
        limit,
    }))
}

#[utoipa::path(
    get,
    path = "/moments/{id}",
    operation_id = "moment_page",
    tag = "public",
    summary = "A created Moment's public page (HTML)",
    description = "momentline's own page for a Moment, when no host is set: its media, link \
        and description. Public; no key.",
    params(("id" = i64, Path, description = "The Moment's id")),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 404, description = "No such created Moment", body = ErrorBody),
    )
)]
pub async fn page(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // Deleted (UNDO) and not yet created Moments are as missing as unknown ones.
    let missing = || {
        html::not_found(
            &req,
            "Moment not found",
            "This Moment does not exist, is not posted yet, or was removed.",
        )
    };
    let Ok(id) = path.parse().map(MomentId) else {
        return Ok(missing());
    };
    let public_url = state.settings.public_url.clone();
    let moment = read(&state, "Failed to read moment", move |c| {
        moments::created(c, id, &public_url)
    })
    .await?;
    let Some(moment) = moment else {
        return Ok(missing());
    };
    let own_url = format!("{}/moments/{id}", state.settings.public_url);
    let body = PageTemplate::new(&moment, own_url)
        .render()
        .map_err(|e| ApiError::internal("Failed to show moment")(Box::new(e)))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(body))
}
