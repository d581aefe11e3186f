//! `/api/messages`: an artist's conversation, newest first.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{read, ApiError, AppState, Authenticated, ErrorBody, KeyRefused, Page};
use crate::db::messages::{self, MessageView};
use crate::domain::ids::MessageId;

/// A page of the artist's messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    pub offset: u32,
    pub limit: u32,
}

#[utoipa::path(
    get,
    path = "/api/messages",
    operation_id = "list_messages",
    tag = "messages",
    summary = "The artist's conversation, newest first",
    params(Page),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
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
    let messages = read(&state, "Failed to list messages", move |c| {
        messages::for_artist(c, artist.id, offset, limit)
    })
    .await?;
    Ok(HttpResponse::Ok().json(MessagePage {
        messages,
        offset,
        limit,
    }))
}

#[utoipa::path(
    get,
    path = "/api/messages/{id}",
    operation_id = "get_message",
    tag = "messages",
    summary = "One of the artist's messages",
    params(("id" = i64, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = MessageView),
        KeyRefused,
        (status = 404, description = "No such message of this artist", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn one(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("Message not found".into());
    let id = path.parse().map(MessageId).map_err(|_| not_found())?;
    let found = read(&state, "Failed to read message", move |c| {
        messages::one_for_artist(c, artist.id, id)
    })
    .await?;
    found
        .map(|m| HttpResponse::Ok().json(m))
        .ok_or_else(not_found)
}
