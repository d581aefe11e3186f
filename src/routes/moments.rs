//! `/api/moments` for the artist, and the public page of each Moment.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::json;

use super::moment_page::MomentPage;
use super::{blocking, conn, html, ApiError, AppState, Authenticated, Page};
use crate::db::moments;
use crate::db::DbError;

pub async fn list(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (offset, limit) = Page::parse(req.query_string())?;
    let app = state.clone();
    let found = blocking("Failed to list moments", move || {
        let public_url = &app.settings.public_url;
        moments::for_artist(&*conn(&app.pool)?, artist.id, offset, limit, public_url)
            .map_err(DbError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "moments": found, "offset": offset, "limit": limit })))
}

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
    let Ok(id) = path.parse::<i64>() else {
        return Ok(missing());
    };
    let app = state.clone();
    let moment = blocking("Failed to read moment", move || {
        moments::created(&*conn(&app.pool)?, id, &app.settings.public_url).map_err(DbError::from)
    })
    .await?;
    let Some(moment) = moment else {
        return Ok(missing());
    };
    let own_url = format!("{}/moments/{id}", state.settings.public_url);
    let body = MomentPage::new(&moment, own_url)
        .render()
        .map_err(|e| ApiError::internal("Failed to show moment")(Box::new(e)))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(body))
}
