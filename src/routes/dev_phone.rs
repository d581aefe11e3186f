//! `/dev/phone` (only with `MOMENTLINE_DEV_PHONE`): a page playing an artist's phone, the
//! conversation it shows, and the texts it sends, received as a provider webhook's are.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{blocking, read, read_body, write_failed, ApiError, AppState};
use crate::db::messages;
use crate::domain::moment::MediaItem;
use crate::domain::phone_number::PhoneNumber;
use crate::flows::inbound::{self, Receipt};
use crate::providers::dev::{self, DevTextError};
use crate::providers::InboundMessage;

/// The page: one file, no external resources.
const PAGE: &str = include_str!("dev_phone.html");
/// Messages of a conversation shown at most.
const CONVERSATION_LIMIT: u32 = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use actix_web::http::Method as M;
    cfg.service(super::resource("/dev/phone", vec![super::on(M::GET, page)]))
        .service(super::resource(
            "/dev/phone/messages",
            vec![super::on(M::GET, conversation), super::on(M::POST, send)],
        ));
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src 'self' blob:",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(PAGE)
}

#[derive(Deserialize)]
struct ConversationQuery {
    number: String,
}

fn parse_number(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw.trim()).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// `GET /dev/phone/messages?number=…`: every text to and from the number, oldest first.
async fn conversation(
    state: web::Data<AppState>,
    query: web::Query<ConversationQuery>,
) -> Result<HttpResponse, ApiError> {
    let number = parse_number(&query.number)?;
    let phone = number.clone();
    let texts = read(&state, "Failed to read the conversation", move |c| {
        messages::for_phone(c, &phone, CONVERSATION_LIMIT)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "number": number.as_str(), "messages": texts })))
}

/// Refuses a request another site's page made: the page posts JSON from its own origin. A
/// form or `text/plain` post from elsewhere needs no browser pre-check, so it is refused by
/// its type; a JSON one by the browser's `Sec-Fetch-Site` or `Origin`.
fn same_site(req: &actix_web::HttpRequest) -> Result<(), ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let json = header("content-type").is_some_and(|t| t.starts_with("application/json"));
    if !json {
        return Err(ApiError::BadRequest(
            "Send the message as JSON (content-type: application/json)".into(),
        ));
    }
    let cross_site =
        header("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site");
    let foreign_origin = match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            let origin = origin
                .trim_start_matches("http://")
                .trim_start_matches("https://");
            origin != host
        }
        _ => false,
    };
    if cross_site || foreign_origin {
        return Err(ApiError::CrossSite(
            "The dev phone takes texts from its own page only".into(),
        ));
    }
    Ok(())
}

/// `POST /dev/phone/messages`: a text from the page, received as an inbound text is. An
/// attached image is kept in the media directory first, so its Moment never fetches it.
async fn send(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    same_site(&req)?;
    // 413 in words the page can show.
    let too_large =
        |message: String| HttpResponse::PayloadTooLarge().json(json!({ "message": message }));
    let body = match read_body(payload, dev::MAX_BODY_BYTES).await {
        Err(ApiError::PayloadTooLarge) => {
            return Ok(too_large(format!(
                "The message is too large: an image may be at most {} MB",
                dev::MAX_IMAGE_BYTES / 1024 / 1024
            )))
        }
        read => read?,
    };
    let text = match dev::parse(&body) {
        Ok(text) => text,
        Err(e @ DevTextError::ImageTooLarge) => return Ok(too_large(e.to_string())),
        Err(DevTextError::Malformed(m)) => return Err(ApiError::BadRequest(m)),
    };
    let from = parse_number(&text.from)?;
    let mut media = Vec::new();
    if let Some(image) = text.image {
        let dir = state.settings.media_dir.clone();
        let content_type = image.content_type.clone();
        let file = blocking("Failed to keep the image", move || {
            crate::media::keep_upload(&dir, &image.bytes, &image.content_type)
        })
        .await?;
        media.push(MediaItem {
            url: format!("{}/media/{file}", state.settings.public_url),
            content_type,
        });
    }
    let message = InboundMessage {
        provider: dev::NAME,
        provider_message_id: text.id,
        from: from.as_str().to_owned(),
        to: state.connect.sender_number.clone().unwrap_or_default(),
        text: text.text,
        subject: None,
        media,
        part: None,
    };
    tracing::info!(number = %from.masked(), "dev phone text");
    let receipt = inbound::receive(&state.store, state.receive.clone(), message, from)
        .await
        .map_err(write_failed("Failed to record message"))?;
    if receipt.queued_work() {
        state.runner.wake();
    }
    Ok(HttpResponse::Ok().json(json!({
        "message": match receipt {
            Receipt::Duplicate => "Duplicate ignored",
            Receipt::Partial => "Part kept until the whole message is in",
            Receipt::Recorded { .. } => "Received",
        }
    })))
}
