//! `/api/messages`: an artist's conversation, newest first.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{blocking, conn, ApiError, AppState, Authenticated, Page};
use crate::db::{messages, DbError};

pub async fn list(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (offset, limit) = Page::parse(req.query_string())?;
    let pool = state.pool.clone();
    let found = blocking("Failed to list messages", move || {
        messages::for_artist(&*conn(&pool)?, artist.id, offset, limit).map_err(DbError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "messages": found, "offset": offset, "limit": limit })))
}

pub async fn one(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("Message not found".into());
    let id: i64 = path.parse().map_err(|_| not_found())?;
    let pool = state.pool.clone();
    let found = blocking("Failed to read message", move || {
        messages::one_for_artist(&*conn(&pool)?, artist.id, id).map_err(DbError::from)
    })
    .await?;
    found
        .map(|m| HttpResponse::Ok().json(m))
        .ok_or_else(not_found)
}
