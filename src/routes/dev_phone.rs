//! `/dev/phone` (only with `MOMENTLINE_DEV_PHONE`): a page playing an artist's phone, the
//! conversation it shows, and the texts it sends, received as a provider webhook's are.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{blocking, read, read_body, write_failed, ApiError, AppState};
use crate::db::messages::{self, MessageView};
use crate::db::moments::{self, KeptMedia};
use crate::domain::moment::MediaItem;
use crate::domain::phone_number::PhoneNumber;
use crate::domain::MediaState;
use crate::flows::inbound::{self, Receipt};
use crate::media::is_kept_name;
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

/// A number as the query gives it. A `+` typed as is (`?number=+14155552671`) reaches us as a
/// space, as a form's query is decoded: a number that starts with one is read with its `+`.
/// `%2B` is a `+` either way.
fn number_in_query(raw: &str) -> Result<PhoneNumber, ApiError> {
    match raw.strip_prefix(' ') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            parse_number(&format!("+{rest}"))
        }
        _ => parse_number(raw),
    }
}

/// A text as the page shows it: the message, its state in a person's words, and each
/// attachment with momentline's copy of it, once kept.
#[derive(Serialize)]
struct ShownText<'a> {
    #[serde(flatten)]
    message: &'a MessageView,
    /// `queued` for `unconfirmed`, and so on (`MessageState::in_words`).
    state_words: &'static str,
    attachments: Vec<Attachment<'a>>,
}

/// One attachment of a text.
#[derive(Serialize)]
struct Attachment<'a> {
    /// Where the provider had it (it may be gone, or need the provider's credentials).
    url: &'a str,
    content_type: &'a str,
    /// momentline's copy, a path on this server, once it is kept: the page shows a photo
    /// from there.
    kept: Option<String>,
    /// Whether momentline is fetching it, has it or could not keep it; none when no Moment
    /// took it (a text from a number not connected).
    state: Option<MediaState>,
    error: Option<&'a str>,
}

/// The attachments of `message`, with what momentline kept of them (`kept`, by source URL).
/// The page's own uploads are kept as they arrive.
fn attachments<'a>(
    message: &'a MessageView,
    kept: &'a HashMap<&str, &KeptMedia>,
    public_url: &str,
) -> Vec<Attachment<'a>> {
    let uploaded = |url: &str| {
        let file = url.strip_prefix(public_url)?.strip_prefix("/media/")?;
        (message.provider == dev::NAME && is_kept_name(file)).then(|| format!("/media/{file}"))
    };
    message
        .media
        .iter()
        .map(|item| {
            let moment = kept.get(item.url.as_str());
            let file = moment
                .filter(|m| m.state == MediaState::Kept)
                .and_then(|m| m.file.as_deref())
                .map(|file| format!("/media/{file}"));
            Attachment {
                url: &item.url,
                content_type: &item.content_type,
                kept: file.or_else(|| uploaded(&item.url)),
                state: moment.map(|m| m.state),
                error: moment.and_then(|m| m.error.as_deref()),
            }
        })
        .collect()
}

/// `GET /dev/phone/messages?number=…`: every text to and from the number, oldest first.
async fn conversation(
    state: web::Data<AppState>,
    query: web::Query<ConversationQuery>,
) -> Result<HttpResponse, ApiError> {
    let number = number_in_query(&query.number)?;
    let phone = number.clone();
    let (texts, kept) = read(&state, "Failed to read the conversation", move |c| {
        let texts = messages::for_phone(c, &phone, CONVERSATION_LIMIT)?;
        let kept = match texts.first() {
            Some(oldest) => moments::kept_media_of(c, &phone, oldest.id)?,
            None => Vec::new(),
        };
        Ok((texts, kept))
    })
    .await?;
    let by_url: HashMap<&str, &KeptMedia> =
        kept.iter().map(|k| (k.source_url.as_str(), k)).collect();
    let public_url = &state.settings.public_url;
    let shown: Vec<ShownText> = texts
        .iter()
        .map(|message| ShownText {
            message,
            state_words: message.state.in_words(),
            attachments: attachments(message, &by_url, public_url),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "number": number.as_str(), "messages": shown })))
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
