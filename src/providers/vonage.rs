//! Vonage SMS API: signed inbound messages and delivery receipts in (GET, form or JSON),
//! `/sms/json` out.

use crate::domain::secret::Secret;
use hmac::{Hmac, Mac};
use md5::Md5;
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{
    call, Accepted, InboundMessage, OutboundText, Part, SendError, StatusReport, WebhookEvent,
};
use crate::domain::moment::MediaItem;
use crate::domain::segments::{Encoding, Segments};
use crate::domain::MessageState;

pub const NAME: &str = "vonage";

/// Parameters as received, repeated names kept.
pub type Params = Vec<(String, String)>;

/// How Vonage signs webhooks (the dashboard's setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    /// `md5(params + secret)`: Vonage's "MD5 hash".
    Md5Hash,
    HmacMd5,
    HmacSha1,
    HmacSha256,
    HmacSha512,
}

impl SignatureMethod {
    /// `md5hash`, `md5`, `sha1`, `sha256` or `sha512`.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "md5hash" => Self::Md5Hash,
            "md5" => Self::HmacMd5,
            "sha1" => Self::HmacSha1,
            "sha256" => Self::HmacSha256,
            "sha512" => Self::HmacSha512,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SignatureSecret {
    pub secret: Secret,
    pub method: SignatureMethod,
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(secret: &str, data: &str) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The string Vonage signs: `&k=v` for every parameter but `sig`, sorted by name, with `&`
/// and `=` in values replaced by `_`.
fn signing_string(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sig").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("&{k}={}", v.replace(['&', '='], "_")))
        .collect()
}

/// The lowercase hex signature of `params`.
pub fn signature(secret: &SignatureSecret, params: &[(String, String)]) -> String {
    let data = signing_string(params);
    let key = secret.secret.expose();
    match secret.method {
        SignatureMethod::Md5Hash => hex::encode(Md5::digest(format!("{data}{key}").as_bytes())),
        SignatureMethod::HmacMd5 => hmac_hex::<Hmac<Md5>>(key, &data),
        SignatureMethod::HmacSha1 => hmac_hex::<Hmac<Sha1>>(key, &data),
        SignatureMethod::HmacSha256 => hmac_hex::<Hmac<Sha256>>(key, &data),
        SignatureMethod::HmacSha512 => hmac_hex::<Hmac<Sha512>>(key, &data),
    }
}

/// Checks `sig` against the other parameters, ignoring case, in constant time.
pub fn verify(secret: &SignatureSecret, params: &[(String, String)]) -> bool {
    let Some(presented) = param(params, "sig") else {
        return false;
    };
    let expected = signature(secret, params);
    expected
        .as_bytes()
        .ct_eq(presented.trim().to_ascii_lowercase().as_bytes())
        .into()
}

/// A JSON body's top-level fields as parameters (numbers and booleans as Vonage writes them
/// in forms).
pub fn params_from_json(body: &[u8]) -> Result<Params, serde_json::Error> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)?;
    Ok(object
        .into_iter()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some((k, text))
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadParams(pub String);

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, BadParams> {
    param(params, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| BadParams(format!("missing parameter {name}")))
}

/// Vonage writes numbers without the `+`.
fn e164(number: &str) -> String {
    if number.starts_with('+') {
        number.to_owned()
    } else {
        format!("+{number}")
    }
}

/// An inbound message (or one part of one), or a delivery receipt.
pub fn parse(params: &[(String, String)]) -> Result<WebhookEvent, BadParams> {
    if param(params, "text").is_none() && param(params, "status").is_some() {
        return parse_receipt(params);
    }
    if param(params, "type") == Some("binary") {
        return Ok(WebhookEvent::Ignored("binary message".into()));
    }
    let part = if param(params, "concat") == Some("true") {
        let number = |name| {
            required(params, name)?
                .parse::<u32>()
                .map_err(|_| BadParams(format!("{name} is not a number")))
        };
        let (part, total) = (number("concat-part")?, number("concat-total")?);
        if part == 0 || part > total || total > 255 {
            return Err(BadParams(format!("part {part} of {total} is impossible")));
        }
        Some(Part {
            reference: required(params, "concat-ref")?.to_owned(),
            number: part,
            total,
        })
    } else {
        None
    };
    Ok(WebhookEvent::Message(InboundMessage {
        provider: NAME,
        provider_message_id: required(params, "messageId")?.to_owned(),
        from: e164(required(params, "msisdn")?),
        to: param(params, "to").map(e164).unwrap_or_default(),
        text: param(params, "text").unwrap_or_default().to_owned(),
        subject: None,
        media: Vec::new(),
        part,
    }))
}

fn parse_receipt(params: &[(String, String)]) -> Result<WebhookEvent, BadParams> {
    let status = required(params, "status")?;
    let state = match status {
        "accepted" | "buffered" => MessageState::Sent,
        "delivered" => MessageState::Delivered,
        "expired" | "failed" | "rejected" => MessageState::Error,
        other => return Ok(WebhookEvent::Ignored(format!("receipt status {other}"))),
    };
    let error = (state == MessageState::Error).then(|| match param(params, "err-code") {
        Some(code) => format!("vonage {status}: err-code {code}"),
        None => format!("vonage {status}"),
    });
    Ok(WebhookEvent::Status(StatusReport {
        provider: NAME,
        provider_message_id: required(params, "messageId")?.to_owned(),
        state,
        error,
        recipient_opted_out: false,
    }))
}

// Vonage's Messages API is how MMS reaches a Vonage number: JSON webhooks, one media item
// each, signed with a JWT (HS256, keyed with the same signature secret) whose `payload_hash`
// claim is the SHA-256 of the body. The JWT is checked here with the HMAC and SHA-256 crates
// already in use: a JWT library would bring RSA and elliptic-curve code that HS256 never needs.

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

#[derive(Debug, Clone)]
pub struct VonageConfig {
    pub api_key: String,
    pub api_secret: Secret,
    pub from: String,
    pub api_base: String,
}

pub struct Vonage {
    config: VonageConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<SentPart>,
}

#[derive(Deserialize)]
struct SentPart {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

/// Vonage's status codes worth another attempt: internal error.
const RETRYABLE_STATUSES: &[&str] = &["5"];
/// "Throttled": sending faster than the account allows.
const THROTTLED: &str = "1";
/// "Invalid credentials": the API key or secret is wrong.
const BAD_CREDENTIALS: &str = "4";

impl Vonage {
    pub fn new(config: VonageConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    pub fn from_number(&self) -> Option<&str> {
        Some(&self.config.from)
    }

    pub async fn send(&self, text: &OutboundText<'_>) -> Result<Accepted, SendError> {
        let from = text.from.unwrap_or(&self.config.from);
        let mut form = vec![
            ("api_key", self.config.api_key.as_str()),
            ("api_secret", self.config.api_secret.expose()),
            ("from", from.trim_start_matches('+')),
            ("to", text.to.trim_start_matches('+')),
            ("text", text.body),
        ];
        if Segments::of(text.body).encoding == Encoding::Ucs2 {
            form.push(("type", "unicode"));
        }
        let request = self
            .http
            .post(format!("{}/sms/json", self.config.api_base))
            .form(&form);
        let reply = call(NAME, request).await?;
        if !reply.status.is_success() {
            return Err(reply.failure(format!("vonage {}", reply.status.as_u16())));
        }
        let Some(answer) = reply.accepted::<SendResponse>(NAME) else {
            return Ok(Accepted {
                provider_message_id: None,
            });
        };
        // A long text goes out as several messages. Once any is accepted the text counts as
        // sent: trying again would send that part twice.
        if let Some(sent) = answer.messages.iter().find(|m| m.status == "0") {
            for failed in answer.messages.iter().filter(|m| m.status != "0") {
                tracing::warn!(status = %failed.status, error = failed.error_text.as_deref().unwrap_or(""),
                    "vonage refused one part of a text whose other parts it took");
            }
            return Ok(Accepted {
                provider_message_id: sent.message_id.clone(),
            });
        }
        let Some(failed) = answer.messages.first() else {
            return Err(SendError::Permanent {
                reason: "vonage answered with no message".into(),
            });
        };
        let reason = format!(
            "vonage status {}: {}",
            failed.status,
            failed.error_text.as_deref().unwrap_or("no error text")
        );
        Err(if failed.status == THROTTLED {
            SendError::Throttled {
                reason,
                retry_after: reply.retry_after,
            }
        } else if failed.status == BAD_CREDENTIALS {
            SendError::Unauthorized { reason }
        } else if RETRYABLE_STATUSES.contains(&failed.status.as_str()) {
            SendError::Retryable {
                reason,
                retry_after: reply.retry_after,
            }
        } else {
            SendError::Permanent { reason }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector() -> Params {
        [
            ("message-timestamp", "2013-11-21 15:27:30"),
            ("messageId", "020000001B0FE827"),
            ("msisdn", "14843472194"),
            ("text", "Test again"),
            ("timestamp", "1385047698"),
            ("to", "13239877404"),
            ("type", "text"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn secret(method: SignatureMethod) -> SignatureSecret {
        SignatureSecret {
            secret: "my_secret_key_for_testing".into(),
            method,
        }
    }

    #[test]
    fn the_sdk_test_vectors_sign_as_published() {
        assert_eq!(
            signature(&secret(SignatureMethod::Md5Hash), &vector()),
            "d2e7b1dc968737c5998ad624e02f90b7"
        );
        assert_eq!(
            signature(&secret(SignatureMethod::HmacSha256), &vector()),
            "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330".to_lowercase()
        );
        assert_eq!(
            signature(&secret(SignatureMethod::HmacSha1), &vector()),
            "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A".to_lowercase()
        );
    }

    #[test]
    fn verification_ignores_case_and_the_sig_parameter_itself() {
        let mut params = vector();
        params.push((
            "sig".into(),
            "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330".into(),
        ));
        assert!(verify(&secret(SignatureMethod::HmacSha256), &params));
        assert!(!verify(&secret(SignatureMethod::HmacSha512), &params));
        params[3].1 = "Test agaim".into();
        assert!(!verify(&secret(SignatureMethod::HmacSha256), &params));
        assert!(
            !verify(&secret(SignatureMethod::HmacSha256), &vector()),
            "no sig"
        );
    }

    #[test]
    fn every_method_signs_differently_and_verifies_its_own() {
        for method in [
            SignatureMethod::Md5Hash,
            SignatureMethod::HmacMd5,
            SignatureMethod::HmacSha1,
            SignatureMethod::HmacSha256,
            SignatureMethod::HmacSha512,
        ] {
            let mut params = vector();
            params.push(("sig".into(), signature(&secret(method), &vector())));
            assert!(verify(&secret(method), &params), "{method:?}");
        }
        assert_eq!(
            SignatureMethod::parse("SHA512"),
            Some(SignatureMethod::HmacSha512)
        );
        assert_eq!(SignatureMethod::parse("crc32"), None);
    }

    #[test]
    fn ampersands_and_equals_in_values_are_signed_as_underscores() {
        let params: Params = vec![("text".into(), "a&b=c".into())];
        assert_eq!(signing_string(&params), "&text=a_b_c");
    }

    #[test]
    fn inbound_parts_and_receipts_are_told_apart() {
        let WebhookEvent::Message(m) = parse(&vector()).expect("parses") else {
            panic!("not a message");
        };
        assert_eq!(m.from, "+14843472194");
        assert_eq!(m.to, "+13239877404");
        assert_eq!(m.part, None);

        let mut part = vector();
        part.extend(
            [
                ("concat", "true"),
                ("concat-ref", "08B5"),
                ("concat-total", "3"),
                ("concat-part", "2"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let WebhookEvent::Message(m) = parse(&part).expect("parses") else {
            panic!("not a message");
        };
        assert_eq!(
            m.part,
            Some(Part {
                reference: "08B5".into(),
                number: 2,
                total: 3
            })
        );
        part.retain(|(k, _)| k != "concat-part");
        part.push(("concat-part".into(), "4".into()));
        assert!(parse(&part).is_err(), "part 4 of 3");

        let receipt: Params = [
            ("msisdn", "14155552671"),
            ("to", "18445550001"),
            ("messageId", "0A0000000123ABCD1"),
            ("status", "failed"),
            ("err-code", "6"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(
            parse(&receipt).expect("parses"),
            WebhookEvent::Status(StatusReport {
                provider: NAME,
                provider_message_id: "0A0000000123ABCD1".into(),
                state: MessageState::Error,
                error: Some("vonage failed: err-code 6".into()),
                recipient_opted_out: false,
            })
        );
    }

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
    fn json_bodies_become_parameters() {
        let params = params_from_json(br#"{"msisdn":"1","n":5,"b":true,"x":null}"#).expect("json");
        assert_eq!(param(&params, "n"), Some("5"));
        assert_eq!(param(&params, "b"), Some("true"));
        assert_eq!(param(&params, "x"), None);
        assert!(params_from_json(b"[1]").is_err());
    }
}
