//! Provider webhooks: authenticate the raw bytes, parse, then apply in one transaction.

use crate::domain::secret::Secret;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;
use tracing::Instrument;

use super::{read_body, write_failed, ApiError, AppState, ErrorBody, WEBHOOK_BODY_LIMIT};
use crate::db::messages::StatusApplied;
use crate::domain::phone_number::{mask, PhoneNumber};
use crate::flows::inbound::{self, Receipt};
use crate::flows::status;
use crate::metrics::WebhookOutcome;
use crate::providers::{telnyx, twilio, vonage, WebhookEvent};

/// What every provider webhook may answer besides its `200`: how `receive` refuses one.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // It documents the answers only; `receive` gives them as `ApiError`s.
enum Refusals {
    /// Authenticated, but not a message or status the provider sends
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The signature or credentials did not check out (`unauthorized`)
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Busy; the provider redelivers
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The form Twilio posts for an inbound text: the parameters momentline reads (Twilio sends
/// more, which are signed with the rest and otherwise ignored).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)] // It documents the form only; `twilio::parse_inbound` reads it.
struct TwilioInbound {
    /// Twilio's id of the message; a repeat of one already taken changes nothing.
    #[schema(example = "SM0123456789abcdef0123456789abcdef")]
    message_sid: String,
    /// The sender. A text from anything but a valid E.164 number is answered 200 and ignored.
    #[schema(example = "+14155552671")]
    from: String,
    /// The number texted.
    to: Option<String>,
    /// The text.
    body: Option<String>,
    /// How many `MediaUrl{N}` (and `MediaContentType{N}`) follow, from 0.
    num_media: Option<String>,
    /// The first photo, audio or file; `MediaUrl1` and on for more.
    media_url0: Option<String>,
    /// Its type, such as `image/jpeg`.
    media_content_type0: Option<String>,
}

/// The form of Twilio's status callback for a text momentline sent.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)] // It documents the form only; `twilio::parse_status` reads it.
struct TwilioStatus {
    /// The id Twilio gave the text when momentline sent it.
    #[schema(example = "SM0123456789abcdef0123456789abcdef")]
    message_sid: String,
    /// `sent`, `delivered`, `read`, `undelivered`, `failed` or `canceled` are recorded; any
    /// other (`queued`, `sending`, …) is answered 200 and ignored.
    #[schema(example = "delivered")]
    message_status: String,
    /// Twilio's error code, when the text failed (21610: the recipient opted out).
    error_code: Option<String>,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[utoipa::path(
    post,
    path = "/webhooks/telnyx",
    tag = "provider webhooks",
    summary = "Telnyx messaging webhooks",
    description = "Inbound texts and delivery reports from Telnyx, signed with Ed25519 (TELNYX_PUBLIC_KEY). For the provider, not for clients.",
    responses(
        (status = 200, description = "Applied (or a repeat, dropped)"),
        Refusals,
    )
)]
pub async fn telnyx(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let read = |key, body: &[u8]| {
        telnyx::verify(
            &key,
            header(&req, "telnyx-timestamp"),
            header(&req, "telnyx-signature-ed25519"),
            body,
            Utc::now().timestamp(),
        )
        .map_err(|e| {
            tracing::warn!(reason = %e, "telnyx webhook refused: bad signature");
            ApiError::Unauthorized
        })?;
        telnyx::parse_event(body)
            .map_err(|e| ApiError::BadRequest(format!("Malformed Telnyx event: {e}")))
    };
    let provider = Provider {
        name: "telnyx",
        setting: "TELNYX_PUBLIC_KEY",
        key: state.settings.telnyx_public_key,
        read,
        answer: Answered::json,
    };
    receive(&state, payload, provider).await
}

/// Twilio's inbound messages; answered with empty TwiML so Twilio sends nothing itself.
#[utoipa::path(
    post,
    path = "/webhooks/twilio",
    tag = "provider webhooks",
    summary = "Twilio inbound messages",
    description = "Inbound texts from Twilio, signed with X-Twilio-Signature (TWILIO_AUTH_TOKEN). Answered with empty TwiML. For the provider, not for clients.",
    request_body(content = TwilioInbound, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Applied (or a repeat, dropped); empty TwiML",
            content_type = "text/xml", body = String),
        Refusals,
    ),
    security(("twilio_signature" = []))
)]
pub async fn twilio(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    twilio_webhook(req, state, payload, twilio::parse_inbound, "message").await
}

/// Twilio's status callbacks for the texts momentline sent.
#[utoipa::path(
    post,
    path = "/webhooks/twilio/status",
    tag = "provider webhooks",
    summary = "Twilio status callbacks",
    description = "Delivery reports of texts momentline sent through Twilio, signed with X-Twilio-Signature (TWILIO_AUTH_TOKEN). For the provider, not for clients.",
    request_body(content = TwilioStatus, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Applied (or ignored); empty TwiML",
            content_type = "text/xml", body = String),
        Refusals,
    ),
    security(("twilio_signature" = []))
)]
pub async fn twilio_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    twilio_webhook(req, state, payload, twilio::parse_status, "status").await
}

/// How a Twilio webhook's authentic form is read: `parse_inbound` or `parse_status`.
type TwilioParse = fn(&[(String, String)]) -> Result<WebhookEvent, twilio::MissingParam>;

/// Either Twilio webhook: keyed with `TWILIO_AUTH_TOKEN`, its form read by `parse` (a `what`
/// when it cannot be), answered with empty TwiML.
async fn twilio_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
    parse: TwilioParse,
    what: &str,
) -> Result<HttpResponse, ApiError> {
    let read = |token, body: &[u8]| {
        let params = twilio_params(&req, &state, token, body)?;
        parse(&params).map_err(|e| ApiError::BadRequest(format!("Malformed Twilio {what}: {e}")))
    };
    let provider = Provider {
        name: "twilio",
        setting: "TWILIO_AUTH_TOKEN",
        key: state
            .settings
            .twilio_auth_token
            .as_ref()
            .map(Secret::expose),
        read,
        answer: Answered::twiml,
    };
    receive(&state, payload, provider).await
}

/// The form parameters of an authentic Twilio request: signed over the URL Twilio called
/// (`MOMENTLINE_PUBLIC_URL` with this path and query) and every parameter.
fn twilio_params(
    req: &HttpRequest,
    state: &AppState,
    token: &str,
    body: &[u8],
) -> Result<twilio::Params, ApiError> {
    let params: twilio::Params = serde_urlencoded::from_bytes(body)
        .map_err(|_| ApiError::BadRequest("Malformed form body".into()))?;
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", state.settings.public_url);
    if !twilio::verify(token, &url, &params, header(req, "x-twilio-signature")) {
        tracing::warn!(%url, "twilio webhook refused: bad signature");
        return Err(ApiError::Unauthorized);
    }
    Ok(params)
}

/// Vonage: the SMS API's inbound messages and delivery receipts, by GET or POST (form or
/// JSON) and signed with `sig`; and the Messages API's (MMS) JSON webhooks, signed with a
/// bearer JWT.
#[utoipa::path(
    method(get, post),
    path = "/webhooks/vonage",
    tag = "provider webhooks",
    summary = "Vonage inbound messages and delivery receipts",
    description = "Vonage SMS API (signed GET or POST) and Messages API (JWT) webhooks. For the provider, not for clients.",
    responses(
        (status = 200, description = "Applied"),
        Refusals,
    )
)]
pub async fn vonage(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let read = |secret, body: &[u8]| {
        let webhook = vonage::Webhook {
            method: req.method().as_str(),
            query: req.query_string(),
            content_type: header(&req, "content-type"),
            authorization: header(&req, "authorization"),
            body,
        };
        vonage::authenticate(secret, &webhook, Utc::now().timestamp()).map_err(|e| {
            if let vonage::WebhookError::Malformed(e) = e {
                return ApiError::BadRequest(format!("Malformed Vonage message: {e}"));
            }
            tracing::warn!(reason = %e, "vonage webhook refused");
            ApiError::Unauthorized
        })
    };
    let provider = Provider {
        name: "vonage",
        setting: "VONAGE_SIGNATURE_SECRET",
        key: state.settings.vonage_signature.as_ref(),
        read,
        answer: Answered::json,
    };
    receive(&state, payload, provider).await
}

/// What a provider's webhook has of its own; the rest `receive` does the same for all.
struct Provider<K, R> {
    /// For the log and the metrics.
    name: &'static str,
    /// The setting that holds `key`, named in the log when it is not set.
    setting: &'static str,
    /// What its requests are authenticated with; without it every request is refused.
    key: Option<K>,
    /// Authenticates the raw body (and the request around it) and reads it into an event.
    read: R,
    answer: fn(Applied) -> Answered,
}

/// A provider's webhook: refused without its key; else the body read, authenticated and
/// parsed, the event applied and answered, and the outcome counted.
async fn receive<K, R>(
    state: &web::Data<AppState>,
    payload: web::Payload,
    provider: Provider<K, R>,
) -> Result<HttpResponse, ApiError>
where
    R: FnOnce(K, &[u8]) -> Result<WebhookEvent, ApiError>,
{
    let started = Instant::now();
    // One span for the whole webhook, so its log lines (the flows' too) are tied together.
    let span = tracing::info_span!(
        "webhook",
        provider = provider.name,
        provider_message_id = tracing::field::Empty,
    );
    let answered = async {
        let Some(key) = provider.key else {
            tracing::warn!(
                "{} webhook refused: {} is not set",
                provider.name,
                provider.setting
            );
            return Err(ApiError::Unauthorized);
        };
        let body = read_body(payload, WEBHOOK_BODY_LIMIT).await?;
        let event = (provider.read)(key, &body)?;
        // Named once parsed, so the rest of this webhook's lines carry it (a `message_id` in
        // them is ours).
        if let Some(id) = event.provider_message_id() {
            tracing::Span::current().record("provider_message_id", id);
        }
        apply(state, event).await.map(provider.answer)
    }
    .instrument(span)
    .await;
    counted(state, provider.name, started, answered)
}

/// What an applied webhook is answered with, and whether it had been applied before.
struct Answered {
    response: HttpResponse,
    duplicate: bool,
}

impl Answered {
    fn json(applied: Applied) -> Self {
        Self {
            response: HttpResponse::Ok().json(json!({ "message": applied.message })),
            duplicate: applied.duplicate,
        }
    }

    /// Empty TwiML, so Twilio sends nothing itself.
    fn twiml(applied: Applied) -> Self {
        Self {
            response: HttpResponse::Ok()
                .content_type("text/xml")
                .body(twilio::EMPTY_TWIML),
            duplicate: applied.duplicate,
        }
    }
}

/// Counts a webhook's outcome and time in the metrics, and answers it.
fn counted(
    state: &AppState,
    provider: &str,
    started: Instant,
    answered: Result<Answered, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let outcome = match &answered {
        Ok(a) if a.duplicate => WebhookOutcome::Duplicate,
        Ok(_) => WebhookOutcome::Received,
        Err(ApiError::Unauthorized) => WebhookOutcome::Rejected,
        Err(_) => WebhookOutcome::Error,
    };
    state.metrics.webhook(provider, outcome, started);
    answered.map(|a| a.response)
}

/// What `apply` did: its answer's message, and whether the event was a duplicate.
struct Applied {
    message: String,
    duplicate: bool,
}

impl From<String> for Applied {
    fn from(message: String) -> Self {
        Self {
            message,
            duplicate: false,
        }
    }
}

/// Applies an authentic event; the answer says what was done.
async fn apply(state: &web::Data<AppState>, event: WebhookEvent) -> Result<Applied, ApiError> {
    match event {
        WebhookEvent::Message(message) => {
            let Ok(from) = PhoneNumber::parse(&message.from) else {
                tracing::warn!(provider = message.provider, from = %mask(&message.from),
                    "inbound text ignored: sender is not a valid E.164 number");
                return Ok(String::from("Ignored: sender is not a phone number").into());
            };
            let receipt = inbound::receive(&state.store, state.receive.clone(), message, from)
                .await
                .map_err(write_failed("Failed to record message"))?;
            if receipt.queued_work() {
                state.runner.wake();
            }
            Ok(match receipt {
                Receipt::Duplicate => Applied {
                    message: "Duplicate ignored".into(),
                    duplicate: true,
                },
                Receipt::Partial => String::from("Part kept until the whole message is in").into(),
                Receipt::Recorded { .. } => String::from("Received").into(),
            })
        }
        WebhookEvent::Status(report) => {
            let applied = status::apply_status(&state.store, report, state.receive.events)
                .await
                .map_err(write_failed("Failed to record status"))?;
            let message = match applied {
                StatusApplied::Advanced => "Status recorded",
                StatusApplied::Stale => "Status ignored: the message is already further along",
                StatusApplied::Parked => "Status kept until the message is recorded",
            };
            Ok(String::from(message).into())
        }
        WebhookEvent::Ignored(what) => Ok(format!("Ignored {what}").into()),
    }
}
