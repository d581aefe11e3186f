//! Vonage's Messages API, how MMS reaches a Vonage number: JSON webhooks, one media item
//! each, signed with a JWT (HS256, keyed with the same signature secret) whose `payload_hash`
//! claim is the SHA-256 of the body.
//!
//! The JWT is checked here with the HMAC and SHA-256 crates already in use: a JWT library
//! would bring RSA and elliptic-curve code that HS256 never needs.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{e164, BadParams, WebhookError, NAME};
use crate::domain::moment::MediaItem;
use crate::domain::MessageState;
use crate::providers::{InboundMessage, StatusReport, WebhookEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is not signed with HS256")]
    Algorithm,
    #[error("the token's signature does not match")]
    Signature,
    #[error("the token's payload_hash does not match the body")]
    PayloadHash,
    #[error("the token's iat is missing, or too old or too far ahead")]
    Stale,
}

/// How old a Messages API token may be: Vonage retries a webhook for a day, and a retry may
/// carry the token it was first signed with. A replay within it has no second effect (the
/// message id is the dedupe key).
pub const JWT_MAX_AGE_SECS: i64 = 24 * 3600 + 300;
/// How far ahead of our clock a token's `iat` may be.
pub const JWT_MAX_SKEW_SECS: i64 = 300;

/// Checks a Messages API webhook: `Authorization: Bearer <jwt>` signed with `secret`, whose
/// `payload_hash` is the SHA-256 of `body` and whose `iat` is recent, now.
pub fn verify_jwt(secret: &str, authorization: Option<&str>, body: &[u8]) -> Result<(), JwtError> {
    verify_jwt_at(secret, authorization, body, chrono::Utc::now().timestamp())
}

/// `verify_jwt` at the Unix time `now`.
pub fn verify_jwt_at(
    secret: &str,
    authorization: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), JwtError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine;

    let token = authorization
        .and_then(|h| h.trim().strip_prefix("Bearer "))
        .ok_or(JwtError::Missing)?
        .trim();
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode_json = |part: &str| -> Result<serde_json::Value, JwtError> {
        let bytes = B64URL.decode(part).map_err(|_| JwtError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
    };
    if decode_json(header)?["alg"] != "HS256" {
        return Err(JwtError::Algorithm);
    }
    let signature = B64URL.decode(signature).map_err(|_| JwtError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(claims.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| JwtError::Signature)?;
    let claims = decode_json(claims)?;
    let issued = claims["iat"].as_i64().ok_or(JwtError::Stale)?;
    let age = now.saturating_sub(issued);
    if !(-JWT_MAX_SKEW_SECS..=JWT_MAX_AGE_SECS).contains(&age) {
        return Err(JwtError::Stale);
    }
    let claimed = claims["payload_hash"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .ok_or(JwtError::PayloadHash)?;
    let actual = hex::encode(Sha256::digest(body));
    if bool::from(actual.as_bytes().ct_eq(claimed.as_bytes())) {
        Ok(())
    } else {
        Err(JwtError::PayloadHash)
    }
}

#[derive(Deserialize)]
struct MessagesEvent {
    message_uuid: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    from: Option<String>,
    /// Present on inbound messages, absent on status reports.
    #[serde(default)]
    message_type: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image: Option<MessagesMedia>,
    #[serde(default)]
    audio: Option<MessagesMedia>,
    #[serde(default)]
    video: Option<MessagesMedia>,
    #[serde(default)]
    file: Option<MessagesMedia>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct MessagesMedia {
    url: String,
    #[serde(default)]
    caption: Option<String>,
}

/// The content type a Messages API media item is announced as: its kind, and its exact
/// type when the URL's extension names one (the media keeper checks what is served).
fn announced_type(kind: &str, url: &str) -> String {
    let extension = url
        .rsplit('/')
        .next()
        .and_then(|last| last.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match (kind, extension.as_deref()) {
        ("image", Some("jpg" | "jpeg")) => "image/jpeg".into(),
        ("image", Some("png")) => "image/png".into(),
        ("image", Some("gif")) => "image/gif".into(),
        ("file", Some("pdf")) => "application/pdf".into(),
        ("file", _) => "application/octet-stream".into(),
        (kind, _) => format!("{kind}/*"),
    }
}

/// An authentic Messages API webhook's event. A body that is not JSON is unreadable, as an
/// SMS API body would be; JSON of the wrong shape is malformed.
pub(super) fn read(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return Err(WebhookError::Unreadable);
    }
    Ok(parse_messages(body)?)
}

/// A Messages API webhook: an inbound message (text or one media item) or a status report.
pub fn parse_messages(body: &[u8]) -> Result<WebhookEvent, BadParams> {
    let event: MessagesEvent =
        serde_json::from_slice(body).map_err(|e| BadParams(format!("malformed JSON: {e}")))?;
    let Some(message_type) = event.message_type.as_deref() else {
        let status = event.status.as_deref().unwrap_or_default();
        let state = match status {
            "submitted" => MessageState::Sent,
            "delivered" | "read" => MessageState::Delivered,
            "rejected" | "undeliverable" | "failed" => MessageState::Error,
            other => return Ok(WebhookEvent::Ignored(format!("status {other}"))),
        };
        let error = event
            .error
            .as_ref()
            .map(|e| {
                let field = |name: &str| e[name].as_str().map(str::to_owned);
                field("detail")
                    .or_else(|| field("title"))
                    .unwrap_or_else(|| e.to_string())
            })
            .or_else(|| (state == MessageState::Error).then(|| status.to_owned()))
            .map(|e| format!("vonage {status}: {e}"));
        return Ok(WebhookEvent::Status(StatusReport {
            provider: NAME,
            provider_message_id: event.message_uuid,
            state,
            error,
            recipient_opted_out: false,
        }));
    };
    let from = event
        .from
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(e164)
        .ok_or_else(|| BadParams("missing field from".into()))?;
    let (media, caption) = match message_type {
        "text" => (None, None),
        kind @ ("image" | "audio" | "video" | "file") => {
            let item = match kind {
                "image" => event.image,
                "audio" => event.audio,
                "video" => event.video,
                _ => event.file,
            }
            .ok_or_else(|| BadParams(format!("missing field {kind}")))?;
            let content_type = announced_type(kind, &item.url);
            (
                Some(MediaItem {
                    url: item.url,
                    content_type,
                }),
                item.caption,
            )
        }
        other => return Ok(WebhookEvent::Ignored(format!("message type {other}"))),
    };
    Ok(WebhookEvent::Message(InboundMessage {
        provider: NAME,
        provider_message_id: event.message_uuid,
        from,
        to: event.to.as_deref().map(e164).unwrap_or_default(),
        text: event.text.or(caption).unwrap_or_default(),
        subject: None,
        media: media.into_iter().collect(),
        part: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When the test tokens were signed.
    const ISSUED: i64 = 1_795_370_000;

    /// A Messages API token as Vonage makes one.
    fn jwt(secret: &str, alg: &str, body: &[u8]) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
        use base64::Engine;
        let header = B64URL.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let claims = B64URL.encode(format!(
            r#"{{"iat":1795370000,"jti":"j1","iss":"Vonage","payload_hash":"{}","api_key":"a1b2c3d4","application_id":"app"}}"#,
            hex::encode(Sha256::digest(body))
        ));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("{header}.{claims}").as_bytes());
        let signature = B64URL.encode(mac.finalize().into_bytes());
        format!("Bearer {header}.{claims}.{signature}")
    }

    #[test]
    fn messages_api_tokens_verify_only_with_the_secret_alg_and_body() {
        let body = br#"{"message_uuid":"m1"}"#;
        let good = jwt("s3cret", "HS256", body);
        assert_eq!(verify_jwt_at("s3cret", Some(&good), body, ISSUED), Ok(()));
        assert_eq!(
            verify_jwt_at("other", Some(&good), body, ISSUED),
            Err(JwtError::Signature)
        );
        assert_eq!(
            verify_jwt_at("s3cret", Some(&good), br#"{"message_uuid":"m2"}"#, ISSUED),
            Err(JwtError::PayloadHash)
        );
        let none = jwt("s3cret", "none", body);
        assert_eq!(
            verify_jwt_at("s3cret", Some(&none), body, ISSUED),
            Err(JwtError::Algorithm)
        );
        assert_eq!(
            verify_jwt_at("s3cret", None, body, ISSUED),
            Err(JwtError::Missing)
        );
        assert_eq!(
            verify_jwt_at("s3cret", Some("Bearer a.b"), body, ISSUED),
            Err(JwtError::Malformed)
        );
        assert_eq!(
            verify_jwt_at("s3cret", Some("Bearer !.!.!"), body, ISSUED),
            Err(JwtError::Malformed)
        );
        // Signed a day ago (a retry) is taken; a day and a bit, or from the future, is not.
        for (now, taken) in [
            (ISSUED + JWT_MAX_AGE_SECS, true),
            (ISSUED + JWT_MAX_AGE_SECS + 1, false),
            (ISSUED - JWT_MAX_SKEW_SECS, true),
            (ISSUED - JWT_MAX_SKEW_SECS - 1, false),
        ] {
            let verdict = verify_jwt_at("s3cret", Some(&good), body, now);
            assert_eq!(verdict.is_ok(), taken, "{now}: {verdict:?}");
        }
    }

    #[test]
    fn messages_api_images_texts_and_statuses_parse() {
        let image = br#"{"channel":"mms","message_uuid":"u1","to":"18445550001",
            "from":"14155552671","timestamp":"2026-11-22T18:10:02Z","message_type":"image",
            "image":{"url":"https://api-us.nexmo.com/v3/media/abc.jpg","caption":"Harbour"}}"#;
        let WebhookEvent::Message(m) = parse_messages(image).expect("parses") else {
            panic!("not a message");
        };
        assert_eq!(
            (m.from.as_str(), m.text.as_str()),
            ("+14155552671", "Harbour")
        );
        assert_eq!(m.media[0].content_type, "image/jpeg");
        let status = br#"{"message_uuid":"u2","to":"14155552671","status":"rejected",
            "error":{"type":"x","title":"1320","detail":"Invalid recipient"}}"#;
        assert_eq!(
            parse_messages(status).expect("parses"),
            WebhookEvent::Status(StatusReport {
                provider: NAME,
                provider_message_id: "u2".into(),
                state: MessageState::Error,
                error: Some("vonage rejected: Invalid recipient".into()),
                recipient_opted_out: false,
            })
        );
        assert!(parse_messages(br#"{"message_uuid":"u3","message_type":"text"}"#).is_err());
        assert_eq!(
            announced_type("image", "https://m/v3/media/uuid"),
            "image/*"
        );
    }

    #[test]
    fn a_signed_body_that_is_not_json_is_refused_as_unreadable_and_bad_json_shapes_are_malformed() {
        use crate::providers::vonage::{authenticate, SignatureMethod, SignatureSecret, Webhook};
        let secret = SignatureSecret {
            secret: "s3cret".into(),
            method: SignatureMethod::HmacSha256,
        };
        let verdict = |body: &[u8]| {
            let token = jwt("s3cret", "HS256", body);
            let webhook = Webhook {
                method: "POST",
                query: "",
                content_type: Some("application/json"),
                authorization: Some(&token),
                body,
            };
            authenticate(&secret, &webhook, ISSUED)
        };
        assert_eq!(verdict(b"{not json"), Err(WebhookError::Unreadable));
        assert_eq!(verdict(b""), Err(WebhookError::Unreadable));
        assert!(matches!(verdict(b"[1]"), Err(WebhookError::Malformed(_))));
        assert!(matches!(
            verdict(br#"{"message_uuid":"u3","message_type":"text"}"#),
            Err(WebhookError::Malformed(_))
        ));
        assert!(verdict(br#"{"message_uuid":"u4","status":"delivered"}"#).is_ok());
    }
}
