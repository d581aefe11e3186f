//! `/api/phones`: connect, disconnect and list an artist's numbers.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{
    blocking, conn, read_body, write_failed, ApiError, AppState, Authenticated, API_BODY_LIMIT,
};
use crate::connect;
use crate::db::{numbers, DbError};
use crate::domain::number_state::ConnectOutcome;
use crate::domain::phone_number::PhoneNumber;

#[derive(Deserialize)]
struct PhoneRequest {
    phone_number: String,
}

fn parse_number(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub async fn connect(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, API_BODY_LIMIT).await?;
    let request: PhoneRequest = serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("Invalid request body".into()))?;
    let number = parse_number(&request.phone_number)?;
    if !state.settings.allowed_regions.allows(&number) {
        let region = number
            .region()
            .map_or_else(|| "that country".to_owned(), |r| r.as_ref().to_owned());
        return Err(ApiError::Forbidden(format!(
            "Phone numbers from {region} cannot be connected"
        )));
    }
    let outcome = connect::connect_number(&state.store, state.connect.clone(), artist, number)
        .await
        .map_err(write_failed("Failed to connect phone number"))?;
    match outcome {
        ConnectOutcome::Prompt { .. } => {
            state.runner.wake();
            Ok(HttpResponse::Ok().json(json!({
                "success": true,
                "message": "Phone number connected and verification message sent",
            })))
        }
        ConnectOutcome::AlreadyVerified => Ok(HttpResponse::Ok().json(json!({
            "success": true,
            "message": "Phone number already verified",
        }))),
        ConnectOutcome::OptedOut => Err(ApiError::Conflict(
            "This phone number has opted out of texts (it replied STOP); it must text START \
             to opt back in"
                .into(),
        )),
        ConnectOutcome::RateLimited { retry_after } => Err(ApiError::TooManyRequests {
            message: "Too many verification texts; try again later".into(),
            // Whole seconds, rounded up, so a client that waits as told is never early.
            retry_after: u64::try_from((retry_after.num_milliseconds() + 999) / 1000)
                .unwrap_or(1)
                .max(1),
        }),
    }
}

pub async fn disconnect(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, API_BODY_LIMIT).await?;
    let number = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let request: PhoneRequest = serde_json::from_slice(&body)
            .map_err(|_| ApiError::BadRequest("Invalid request body".into()))?;
        Some(parse_number(&request.phone_number)?)
    };
    let one = number.is_some();
    let released = connect::disconnect(&state.store, Arc::clone(&state.connect), artist, number)
        .await
        .map_err(write_failed("Failed to disconnect phone number"))?;
    if one && released == 0 {
        return Err(ApiError::NotFound(
            "Phone number is not connected to this artist".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": "Phone number disconnected",
        "disconnected": released,
    })))
}

pub async fn list(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    let ttl = state.settings.pending_ttl;
    let phones = blocking("Failed to list phone numbers", move || {
        numbers::for_artist(&*conn(&pool)?, artist.id, Utc::now(), ttl).map_err(DbError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "phones": phones })))
}
