//! `/api/phones`: connect, disconnect and list an artist's numbers.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    parse_json, read, read_body, write_failed, ApiError, AppState, Authenticated, Busy, ErrorBody,
    Field, KeyRefused, API_BODY_LIMIT, PHONE_NUMBER,
};
use crate::db::numbers::{self, ArtistNumber};
use crate::domain::code::Code;
use crate::domain::country;
use crate::domain::number_state::ConnectOutcome;
use crate::domain::phone_number::{PhoneNumber, PhoneNumberError};
use crate::flows::codes::{self, Verdict};
use crate::flows::connect::{self, Connected, Method};

// Each `phone_number` below states the E.164 form `parse_number` checks first, and the
// format `e164`: a number its country's numbering plan has (which no pattern can say), else
// 400 `invalid_field`.

/// The number to disconnect.
#[derive(Deserialize, ToSchema)]
pub struct PhoneRequest {
    /// E.164, such as `+14155552671`, of a number that exists.
    #[schema(
        pattern = r"^\+[1-9][0-9]{1,14}$",
        format = "e164",
        example = "+14155552671"
    )]
    phone_number: String,
}

/// The number to connect, and how it is verified.
#[derive(Deserialize, ToSchema)]
pub struct ConnectRequest {
    /// E.164, such as `+14155552671`, of a number that exists.
    #[schema(
        pattern = r"^\+[1-9][0-9]{1,14}$",
        format = "e164",
        example = "+14155552671"
    )]
    phone_number: String,
    /// How the number is verified; `prompt` when absent or null.
    #[serde(default)]
    method: Option<VerifyBy>,
}

/// How a number proves it wants to be connected.
// Read through a string, so that a number or `true` is named as what was sent ("got integer
// `3`"), as for every other field.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum VerifyBy {
    /// The number replies "yes" to the prompt texted to it.
    Prompt,
    /// The artist enters the code texted to the number at `POST /api/phones/verify`.
    Code,
}

impl TryFrom<String> for VerifyBy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        match text.as_str() {
            "prompt" => Ok(Self::Prompt),
            "code" => Ok(Self::Code),
            _ => Err(format!(
                "unknown variant `{text}`, expected `prompt` or `code`"
            )),
        }
    }
}

impl From<VerifyBy> for Method {
    fn from(by: VerifyBy) -> Self {
        match by {
            VerifyBy::Prompt => Method::Prompt,
            VerifyBy::Code => Method::Code,
        }
    }
}

/// The code texted to a number.
#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// E.164, such as `+14155552671`, of a number that exists.
    #[schema(
        pattern = r"^\+[1-9][0-9]{1,14}$",
        format = "e164",
        example = "+14155552671"
    )]
    phone_number: String,
    /// The six digits texted to the number, as a string.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    code: String,
}

const METHOD: Field = Field {
    name: "method",
    expected: "\"prompt\" (reply 'yes') or \"code\" (enter a texted code)",
};

const CODE: Field = Field {
    name: "code",
    expected: "the code texted to the number, as a string such as \"123456\"",
};

/// A request carried out.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// Always `true`.
    pub success: bool,
    pub message: String,
}

impl Done {
    fn saying(message: &str) -> Self {
        Self {
            success: true,
            message: message.to_owned(),
        }
    }
}

/// Numbers released from the artist.
#[derive(Debug, Serialize, ToSchema)]
pub struct Disconnected {
    /// Always `true`.
    pub success: bool,
    pub message: String,
    /// How many numbers were released.
    pub disconnected: usize,
}

/// The artist's numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneList {
    pub phones: Vec<ArtistNumber>,
}

/// Whole seconds, rounded up, so a client that waits as told is never early.
fn whole_secs(wait: chrono::Duration) -> u64 {
    u64::try_from((wait.num_milliseconds() + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

fn parse_number(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw).map_err(|e| ApiError::InvalidField {
        field: PHONE_NUMBER.name,
        message: match e {
            PhoneNumberError::NotE164 => format!("phone_number must be {}", PHONE_NUMBER.expected),
            PhoneNumberError::Invalid => "phone_number is not a valid phone number: it is in \
                                          E.164 form, but its country has no such numbers"
                .to_owned(),
        },
    })
}

#[utoipa::path(
    post,
    path = "/api/phones",
    tag = "phones",
    summary = "Connect a phone number",
    description = "Texts the number a verification prompt (reply YES) or a code (then `POST \
        /api/phones/verify`). Connecting a number the artist already has is not an error.",
    request_body = ConnectRequest,
    responses(
        (status = 200, description = "Verification texted, or the number is already the \
            artist's", body = Done),
        (status = 400, description = "The body or a field is not what it must be \
            (`invalid_body`, `invalid_field`), or the provider cannot receive replies for \
            `prompt` (`bad_request`)", body = ErrorBody),
        KeyRefused,
        (status = 403, description = "Numbers in that country cannot be connected \
            (`country_not_allowed`)", body = ErrorBody),
        (status = 409, description = "The number opted out of texts", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
        (status = 429, description = "Too many verification texts, or too many wrong codes; \
            wait `retry_after` seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        Busy,
    ),
    security(("api_key" = []))
)]
pub async fn connect(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, API_BODY_LIMIT).await?;
    let request: ConnectRequest = parse_json(
        &body,
        r#"{"phone_number": "+14155552671", "method": "prompt"}"#,
        &[&PHONE_NUMBER, &METHOD],
    )?;
    let method = request.method.map_or(Method::Prompt, Method::from);
    if method == Method::Prompt && !state.connect.receives_replies {
        return Err(ApiError::BadRequest(format!(
            "The SMS provider ({}) cannot receive replies, so a reply 'yes' cannot verify a \
             number; use \"method\": \"code\" and POST the texted code to /api/phones/verify",
            state.connect.sender
        )));
    }
    let number = parse_number(&request.phone_number)?;
    if !state.settings.allowed_regions.allows(&number) {
        return Err(ApiError::CountryNotAllowed(country::not_allowed(
            number.region(),
            &state.settings.allowed_regions,
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
            Ok(HttpResponse::Ok().json(Done::saying(message)))
        }
        ConnectOutcome::AlreadyVerified => {
            Ok(HttpResponse::Ok().json(Done::saying("Phone number already verified")))
        }
        ConnectOutcome::OptedOut => Err(ApiError::Conflict(
            "This phone number has opted out of texts (it replied STOP); it must text START \
             to opt back in"
                .into(),
        )),
        ConnectOutcome::RateLimited { retry_after } => {
            let retry_after = whole_secs(retry_after);
            Err(ApiError::TooManyRequests {
                message: format!(
                    "Too many verification texts; try again in {}",
                    crate::domain::replies::wait_words(retry_after)
                ),
                retry_after,
            })
        }
    }
}

/// `POST /api/phones/verify`: the code texted to a number, entered by the artist who asked.
#[utoipa::path(
    post,
    path = "/api/phones/verify",
    tag = "phones",
    summary = "Enter the code texted to a number",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The number is the artist's", body = Done),
        (status = 400, description = "A wrong code (`wrong_code`, with `tries_left`), or the \
            body or a field is not what it must be", body = ErrorBody),
        KeyRefused,
        (status = 404, description = "No code is waiting for this number", body = ErrorBody),
        (status = 409, description = "The code is not texted yet, could not be texted, or the \
            number opted out", body = ErrorBody),
        (status = 410, description = "The code expired (`code_expired`)", body = ErrorBody),
        (status = 429, description = "Too many wrong codes; wait `retry_after` seconds",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 502, description = "The SMS provider could not check the code \
            (`provider_unavailable`); no try was spent", body = ErrorBody),
        Busy,
    ),
    security(("api_key" = []))
)]
pub async fn verify(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, API_BODY_LIMIT).await?;
    let request: VerifyRequest = parse_json(
        &body,
        r#"{"phone_number": "+14155552671", "code": "123456"}"#,
        &[&PHONE_NUMBER, &CODE],
    )?;
    let number = parse_number(&request.phone_number)?;
    let code = Code::parse(&request.code).map_err(|e| ApiError::InvalidField {
        field: CODE.name,
        message: format!("Invalid code: {e}"),
    })?;
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
            Ok(HttpResponse::Ok().json(Done::saying("Phone number verified")))
        }
        Verdict::AlreadyVerified => {
            Ok(HttpResponse::Ok().json(Done::saying("Phone number already verified")))
        }
        Verdict::Wrong { tries_left } => Err(ApiError::WrongCode {
            message: match tries_left {
                0 => format!("Wrong code; no tries left: {resend} once this one expires"),
                1 => "Wrong code; 1 try left".to_owned(),
                n => format!("Wrong code; {n} tries left"),
            },
            tries_left,
        }),
        Verdict::Locked { retry_after } => {
            let retry_after = whole_secs(retry_after);
            Err(ApiError::TooManyRequests {
                message: format!(
                    "Too many wrong codes; request a new code in {retry_after} seconds"
                ),
                retry_after,
            })
        }
        Verdict::Expired => Err(ApiError::Gone(format!("The code expired; {resend}"))),
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
        Verdict::ProviderUnavailable => Err(ApiError::BadGateway(
            "The SMS provider could not check the code; try again (no try was spent)".into(),
        )),
    }
}

#[utoipa::path(
    delete,
    path = "/api/phones",
    tag = "phones",
    summary = "Disconnect one number, or all the artist's numbers",
    description = "With `{\"phone_number\": …}` releases that number; with no body (or \
        `null`), every number of the artist.",
    request_body(content = Option<PhoneRequest>, description = "The number, or no body for all"),
    responses(
        (status = 200, description = "Released", body = Disconnected),
        (status = 400, description = "The body or a field is not what it must be", body = ErrorBody),
        KeyRefused,
        (status = 404, description = "The number is not connected to this artist", body = ErrorBody),
        Busy,
    ),
    security(("api_key" = []))
)]
pub async fn disconnect(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, API_BODY_LIMIT).await?;
    let number = if asks_for_every_number(&body) {
        None
    } else {
        let request: PhoneRequest = parse_json(
            &body,
            r#"{"phone_number": "+14155552671"} (or no body, for every number)"#,
            &[&PHONE_NUMBER],
        )?;
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
    Ok(HttpResponse::Ok().json(Disconnected {
        success: true,
        message: "Phone number disconnected".into(),
        disconnected: released,
    }))
}

/// No body, or the JSON `null` the document allows for "no body", disconnects every number;
/// anything else must be the JSON asked for (whitespace alone is not JSON).
fn asks_for_every_number(body: &[u8]) -> bool {
    body.is_empty()
        || matches!(
            serde_json::from_slice::<serde_json::Value>(body),
            Ok(serde_json::Value::Null)
        )
}

#[utoipa::path(
    get,
    path = "/api/phones",
    operation_id = "list_phones",
    tag = "phones",
    summary = "The artist's numbers, and those it asked for",
    responses(
        (status = 200, description = "The numbers, by number", body = PhoneList),
        KeyRefused,
    ),
    security(("api_key" = []))
)]
pub async fn list(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ttl = state.settings.pending_ttl;
    let phones = read(&state, "Failed to list phone numbers", move |c| {
        numbers::for_artist(c, artist.id, Utc::now(), ttl)
    })
    .await?;
    Ok(HttpResponse::Ok().json(PhoneList { phones }))
}
