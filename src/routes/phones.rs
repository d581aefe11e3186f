//! `/api/phones`: connect, disconnect and list an artist's numbers.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{
    blocking, conn, read_body, write_failed, ApiError, AppState, Authenticated, API_BODY_LIMIT,
};
use crate::codes::{self, Verdict};
use crate::connect::{self, Connected, Method};
use crate::db::{numbers, DbError};
use crate::domain::code::Code;
use crate::domain::number_state::ConnectOutcome;
use crate::domain::phone_number::PhoneNumber;

#[derive(Deserialize)]
struct PhoneRequest {
    phone_number: String,
}

#[derive(Deserialize)]
struct ConnectRequest {
    phone_number: String,
    #[serde(default)]
    method: Option<String>,
}

#[derive(Deserialize)]
struct VerifyRequest {
    phone_number: String,
    code: String,
}

/// Whole seconds, rounded up, so a client that waits as told is never early.
fn whole_secs(wait: chrono::Duration) -> u64 {
    u64::try_from((wait.num_milliseconds() + 999) / 1000)
        .unwrap_or(1)
        .max(1)
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
    let request: ConnectRequest = serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("Invalid request body".into()))?;
    let method = match request.method.as_deref() {
        None | Some("prompt") => Method::Prompt,
        Some("code") => Method::Code,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "method must be \"prompt\" (reply 'yes') or \"code\" (enter a texted code)".into(),
            ))
        }
    };
    if method == Method::Prompt && !state.connect.receives_replies {
        return Err(ApiError::BadRequest(format!(
            "The SMS provider ({}) cannot receive replies, so a reply 'yes' cannot verify a \
             number; use \"method\": \"code\" and POST the texted code to /api/phones/verify",
            state.connect.sender
        )));
    }
    let number = parse_number(&request.phone_number)?;
    if !state.settings.allowed_regions.allows(&number) {
        let region = number
            .region()
            .map_or_else(|| "that country".to_owned(), |r| r.as_ref().to_owned());
        return Err(ApiError::Forbidden(format!(
            "Phone numbers from {region} cannot be connected"
        )));
    }
    let connected =
        connect::connect_number(&state.store, state.connect.clone(), artist, number, method)
            .await
            .map_err(write_failed("Failed to connect phone number"))?;
    let outcome = match connected {
        Connected::Outcome(outcome) => outcome,
        Connected::CodeLocked { retry_after } => {
            let retry_after = whole_secs(retry_after);
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "Too many wrong codes for this number; request a new code in {retry_after} \
                     seconds"
                ),
                retry_after,
            });
        }
    };
    match outcome {
        ConnectOutcome::Prompt { .. } => {
            state.runner.wake();
            let message = match method {
                Method::Prompt => "Phone number connected and verification message sent",
                Method::Code => "Phone number connected and verification code sent",
            };
            Ok(HttpResponse::Ok().json(json!({ "success": true, "message": message })))
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
            retry_after: whole_secs(retry_after),
        }),
    }
}

/// `POST /api/phones/verify`: the code texted to a number, entered by the artist who asked.
pub async fn verify(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, API_BODY_LIMIT).await?;
    let request: VerifyRequest = serde_json::from_slice(&body).map_err(|_| {
        ApiError::BadRequest(
            "Invalid request body: expected {\"phone_number\": …, \"code\": …}".into(),
        )
    })?;
    let number = parse_number(&request.phone_number)?;
    let code = Code::parse(&request.code)
        .map_err(|e| ApiError::BadRequest(format!("Invalid code: {e}")))?;
    let verdict = codes::verify_code(
        &state.store,
        &state.sender,
        state.connect.clone(),
        artist,
        number,
        code,
    )
    .await
    .map_err(write_failed("Failed to verify the code"))?;
    let resend = "request a new one with POST /api/phones and \"method\": \"code\"";
    match verdict {
        Verdict::Verified => {
            state.runner.wake();
            Ok(HttpResponse::Ok().json(json!({
                "success": true,
                "message": "Phone number verified",
            })))
        }
        Verdict::AlreadyVerified => Ok(HttpResponse::Ok().json(json!({
            "success": true,
            "message": "Phone number already verified",
        }))),
        Verdict::Wrong { tries_left } => Ok(HttpResponse::BadRequest().json(json!({
            "message": match tries_left {
                0 => format!("Wrong code; no tries left: {resend} once this one expires"),
                1 => "Wrong code; 1 try left".to_owned(),
                n => format!("Wrong code; {n} tries left"),
            },
            "tries_left": tries_left,
        }))),
        Verdict::Locked { retry_after } => {
            let retry_after = whole_secs(retry_after);
            Err(ApiError::TooManyRequests {
                message: format!(
                    "Too many wrong codes; request a new code in {retry_after} seconds"
                ),
                retry_after,
            })
        }
        Verdict::Expired => Ok(HttpResponse::Gone().json(json!({
            "message": format!("The code expired; {resend}"),
        }))),
        Verdict::NoCode => Err(ApiError::NotFound(format!(
            "No verification code is waiting for this number; {resend}"
        ))),
        Verdict::NotSent => Err(ApiError::Conflict(
            "The code has not been texted yet; try again in a moment".into(),
        )),
        Verdict::TextFailed => Err(ApiError::Conflict(format!(
            "The code could not be texted (the SMS provider refused it); {resend}"
        ))),
        Verdict::OptedOut => Err(ApiError::Conflict(
            "This phone number has opted out of texts (it replied STOP); it must text START \
             to opt back in"
                .into(),
        )),
        Verdict::ProviderUnavailable => Ok(HttpResponse::BadGateway().json(json!({
            "message": "The SMS provider could not check the code; try again (no try was spent)",
        }))),
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
