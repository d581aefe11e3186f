//! Provider webhooks: authenticate the raw bytes, parse, then apply in one transaction.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;

use super::{blocking, conn, read_body, ApiError, AppState, WEBHOOK_BODY_LIMIT};
use crate::db::messages::{self, StatusApplied};
use crate::db::DbError;
use crate::domain::phone_number::{mask, PhoneNumber};
use crate::inbound::{self, Receipt, ReceiveSettings};
use crate::providers::{telnyx, WebhookEvent};

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub async fn telnyx(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = state.settings.telnyx_public_key else {
        tracing::warn!("telnyx webhook refused: TELNYX_PUBLIC_KEY is not set");
        return Err(ApiError::Unauthorized);
    };
    let body = read_body(payload, WEBHOOK_BODY_LIMIT).await?;
    telnyx::verify(
        &key,
        header(&req, "telnyx-timestamp"),
        header(&req, "telnyx-signature-ed25519"),
        &body,
        Utc::now().timestamp(),
    )
    .map_err(|e| {
        tracing::warn!(reason = %e, "telnyx webhook refused: bad signature");
        ApiError::Unauthorized
    })?;
    let event = telnyx::parse_event(&body)
        .map_err(|e| ApiError::BadRequest(format!("Malformed Telnyx event: {e}")))?;
    apply(&state, event)
        .await
        .map(|m| HttpResponse::Ok().json(json!({ "message": m })))
}

/// Applies an authentic event; the answer says what was done.
async fn apply(state: &web::Data<AppState>, event: WebhookEvent) -> Result<String, ApiError> {
    match event {
        WebhookEvent::Message(message) => {
            let Ok(from) = PhoneNumber::parse(&message.from) else {
                tracing::warn!(provider = message.provider, from = %mask(&message.from),
                    "inbound text ignored: sender is not a valid E.164 number");
                return Ok("Ignored: sender is not a phone number".into());
            };
            let app = state.clone();
            let receipt = blocking("Failed to record message", move || {
                let settings = ReceiveSettings {
                    public_url: &app.settings.public_url,
                    manage_url: &app.settings.manage_url,
                    pending_ttl: app.settings.pending_ttl,
                    reply_limits: app.settings.reply_limits,
                    sender: app.sender.name(),
                };
                let mut conn = conn(&app.pool)?;
                inbound::receive(&mut conn, &settings, &message, &from, Utc::now())
                    .map_err(DbError::from)
            })
            .await?;
            Ok(match receipt {
                Receipt::Duplicate => "Duplicate ignored".into(),
                Receipt::Recorded { replies, .. } => {
                    if replies > 0 {
                        state.outbox_wake.notify_one();
                    }
                    "Received".into()
                }
            })
        }
        WebhookEvent::Status(report) => {
            let pool = state.pool.clone();
            let applied = blocking("Failed to record status", move || {
                messages::apply_status(
                    &mut *conn(&pool)?,
                    report.provider,
                    &report.provider_message_id,
                    report.state,
                    report.error.as_deref(),
                    Utc::now(),
                )
                .map_err(DbError::from)
            })
            .await?;
            Ok(match applied {
                StatusApplied::Advanced => "Status recorded".into(),
                StatusApplied::Stale => {
                    "Status ignored: the message is already further along".into()
                }
                StatusApplied::Parked => "Status kept until the message is recorded".into(),
            })
        }
        WebhookEvent::Ignored(what) => Ok(format!("Ignored {what}")),
    }
}
