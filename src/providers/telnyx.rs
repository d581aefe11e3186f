//! Telnyx Messaging v2: Ed25519-signed webhooks in, `POST /v2/messages` out.

use crate::domain::secret::Secret;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::json;

use super::{call, Accepted, InboundMessage, OutboundText, SendError, StatusReport, WebhookEvent};
use crate::domain::moment::MediaItem;
use crate::domain::MessageState;
use crate::vars::{invalid, ConfigError, Variable, Vars};

/// Telnyx's variables.
pub const VARIABLES: &[Variable] = &[
    ("TELNYX_API_KEY", "", "Telnyx: API v2 key"),
    ("TELNYX_FROM_NUMBER", "", "Telnyx: the sender number"),
    (
        "TELNYX_MESSAGING_PROFILE_ID",
        "",
        "Telnyx: or the sending messaging profile",
    ),
    (
        "TELNYX_PUBLIC_KEY",
        "",
        "Telnyx: webhook Ed25519 public key",
    ),
    (
        "TELNYX_API_BASE",
        "https://api.telnyx.com",
        "Telnyx: API base",
    ),
];

impl TelnyxConfig {
    /// Telnyx's sending settings, when it is the provider.
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let from_number = vars.get("TELNYX_FROM_NUMBER");
        let messaging_profile_id = vars.get("TELNYX_MESSAGING_PROFILE_ID");
        vars.need_one_of("TELNYX_FROM_NUMBER", "TELNYX_MESSAGING_PROFILE_ID", NAME)?;
        Ok(Self {
            api_key: vars.need("TELNYX_API_KEY", NAME)?.into(),
            from_number,
            messaging_profile_id,
            api_base: vars.base_url("TELNYX_API_BASE", "https://api.telnyx.com")?,
        })
    }
}

/// The key Telnyx webhooks are verified with (`TELNYX_PUBLIC_KEY`); `None` refuses them all.
pub fn read_public_key(vars: &Vars) -> Result<Option<VerifyingKey>, ConfigError> {
    vars.get("TELNYX_PUBLIC_KEY")
        .map(|k| parse_public_key(&k))
        .transpose()
        .map_err(|p| invalid("TELNYX_PUBLIC_KEY", p))
}

pub const NAME: &str = "telnyx";
/// Telnyx's SDKs reject webhooks whose timestamp is further than this from now.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;
/// The error code Telnyx answers with when the recipient texted STOP.
const OPTED_OUT_CODE: &str = "40300";

#[derive(Debug, Clone)]
pub struct TelnyxConfig {
    pub api_key: Secret,
    pub from_number: Option<String>,
    pub messaging_profile_id: Option<String>,
    pub api_base: String,
}

pub struct Telnyx {
    config: TelnyxConfig,
    http: reqwest::Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing telnyx-signature-ed25519 or telnyx-timestamp header")]
    Missing,
    #[error("telnyx-timestamp is not a Unix time")]
    BadTimestamp,
    #[error("telnyx-timestamp is more than 300 s from now")]
    Stale,
    #[error("signature is not base64 of 64 bytes")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

/// Parses `TELNYX_PUBLIC_KEY`: base64 of a 32-byte Ed25519 public key.
pub fn parse_public_key(b64: &str) -> Result<VerifyingKey, String> {
    let bytes = BASE64
        .decode(b64.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "not 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 key: {e}"))
}

/// Checks `signature` over `{timestamp}|{body}`, the raw bytes as received, and that the
/// timestamp is within the tolerance of `now` (Unix seconds).
pub fn verify(
    key: &VerifyingKey,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let sent_at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if now.abs_diff(sent_at) > TIMESTAMP_TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let bytes: [u8; 64] = BASE64
        .decode(signature.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureError::Malformed)?;
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    key.verify_strict(&signed, &Signature::from_bytes(&bytes))
        .map_err(|_| SignatureError::Mismatch)
}

#[derive(Deserialize)]
struct Envelope {
    data: Event,
}

/// The payload is read only for the event types acted on, so any other event is acknowledged
/// whatever its shape.
#[derive(Deserialize)]
struct Event {
    event_type: String,
    #[serde(default)]
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct Payload {
    id: String,
    #[serde(default)]
    from: Option<Endpoint>,
    #[serde(default, deserialize_with = "null_as_empty")]
    to: Vec<Endpoint>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    media: Vec<Media>,
    #[serde(default, deserialize_with = "null_as_empty")]
    errors: Vec<ApiError>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct Endpoint {
    phone_number: String,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct Media {
    url: String,
    #[serde(default)]
    content_type: Option<String>,
    /// Telnyx's own MMS example names the content type `type`.
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl ApiError {
    fn describe(&self) -> String {
        let code = self.code.as_deref().unwrap_or("?");
        let text = self
            .detail
            .as_deref()
            .or(self.title.as_deref())
            .unwrap_or("");
        format!("{code} {text}").trim().to_owned()
    }
}

/// Parses an authenticated webhook body.
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, serde_json::Error> {
    let event = serde_json::from_slice::<Envelope>(body)?.data;
    let payload = || Payload::deserialize(&event.payload);
    Ok(match event.event_type.as_str() {
        "message.received" => {
            let payload = payload()?;
            let from = payload
                .from
                .map(|f| f.phone_number)
                .ok_or_else(|| serde::de::Error::missing_field("payload.from"))?;
            let to = payload
                .to
                .into_iter()
                .next()
                .map(|t| t.phone_number)
                .unwrap_or_default();
            WebhookEvent::Message(InboundMessage {
                provider: NAME,
                provider_message_id: payload.id,
                from,
                to,
                text: payload.text.unwrap_or_default(),
                subject: payload.subject,
                media: payload
                    .media
                    .into_iter()
                    .map(|m| MediaItem {
                        url: m.url,
                        content_type: m.content_type.or(m.kind).unwrap_or_default(),
                    })
                    .collect(),
                part: None,
            })
        }
        "message.sent" | "message.finalized" => {
            let payload = payload()?;
            let status = payload.to.first().and_then(|t| t.status.as_deref());
            match status.and_then(delivery_state) {
                Some(state) => WebhookEvent::Status(StatusReport {
                    provider: NAME,
                    provider_message_id: payload.id,
                    state,
                    recipient_opted_out: payload
                        .errors
                        .iter()
                        .any(|e| e.code.as_deref() == Some(OPTED_OUT_CODE)),
                    error: payload.errors.first().map(ApiError::describe).or_else(|| {
                        (state == MessageState::Error)
                            .then(|| status.unwrap_or_default().to_owned())
                    }),
                }),
                None => WebhookEvent::Ignored(format!(
                    "{} with status {}",
                    event.event_type,
                    status.unwrap_or("none")
                )),
            }
        }
        other => WebhookEvent::Ignored(other.to_owned()),
    })
}

/// What a Telnyx delivery status means for an outbound text; `None` for in-flight words.
fn delivery_state(status: &str) -> Option<MessageState> {
    match status {
        "sent" | "delivery_unconfirmed" => Some(MessageState::Sent),
        "delivered" => Some(MessageState::Delivered),
        "sending_failed" | "delivery_failed" | "expired" => Some(MessageState::Error),
        _ => None,
    }
}

#[derive(Deserialize)]
struct SendResponse {
    data: SentMessage,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize, Default)]
struct ErrorResponse {
    #[serde(default)]
    errors: Vec<ApiError>,
}

impl Telnyx {
    pub fn new(config: TelnyxConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    pub fn from_number(&self) -> Option<&str> {
        self.config.from_number.as_deref()
    }

    pub async fn send(&self, text: &OutboundText<'_>) -> Result<Accepted, SendError> {
        let mut body = json!({ "to": text.to, "text": text.body });
        if let Some(from) = text.from.or(self.config.from_number.as_deref()) {
            body["from"] = json!(from);
        }
        if let Some(profile) = &self.config.messaging_profile_id {
            body["messaging_profile_id"] = json!(profile);
        }
        let url = format!("{}/v2/messages", self.config.api_base.trim_end_matches('/'));
        let request = self
            .http
            .post(url)
            .bearer_auth(self.config.api_key.expose())
            .json(&body);
        let answer = call(NAME, request).await?;
        let status = answer.status;
        if status.is_success() {
            return Ok(Accepted {
                provider_message_id: answer.accepted::<SendResponse>(NAME).map(|a| a.data.id),
            });
        }
        let errors = serde_json::from_slice::<ErrorResponse>(&answer.body).unwrap_or_default();
        let reason = match errors.errors.first() {
            Some(e) => format!("telnyx {}: {}", status.as_u16(), e.describe()),
            None => format!("telnyx {}", status.as_u16()),
        };
        if errors
            .errors
            .iter()
            .any(|e| e.code.as_deref() == Some(OPTED_OUT_CODE))
        {
            return Err(SendError::RecipientOptedOut { reason });
        }
        Err(answer.failure(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const VECTOR_BODY: &str = r#"{"data":{"event_type":"message.received","id":"bf6307bd-884d-4c1f-b6ea-c62b8c495d3c","payload":{"id":"7ee4241c-f127-47e5-9c34-3aac291f8058","text":"Hello, World!"}}}"#;
    const VECTOR_SIG: &str =
        "uCtbQsWRiJ3/ke4tYIDZLxX2jPNmfxZ3z0qGT70a5ii6g0NL+rcOidnxYObG5ep005vifvGsi8yBJvEiYe4aCQ==";

    fn key() -> VerifyingKey {
        parse_public_key(VECTOR_KEY).expect("vector key")
    }

    /// The published vector, checked at `now`.
    fn vector_at(now: i64) -> Result<(), SignatureError> {
        verify(
            &key(),
            Some("1700000000"),
            Some(VECTOR_SIG),
            VECTOR_BODY.as_bytes(),
            now,
        )
    }

    #[test]
    fn the_published_test_vector_verifies_at_its_time() {
        for now in [1_700_000_000, 1_700_000_300] {
            assert_eq!(vector_at(now), Ok(()), "{now}");
        }
    }

    #[test]
    fn the_vector_is_stale_more_than_300_seconds_away() {
        for now in [1_700_000_301, 1_699_999_699] {
            assert_eq!(vector_at(now), Err(SignatureError::Stale), "{now}");
        }
    }

    #[test]
    fn any_change_to_body_timestamp_or_signature_is_refused() {
        let now = 1_700_000_000;
        let tampered = VECTOR_BODY.replace("Hello", "Jello");
        assert_eq!(
            verify(
                &key(),
                Some("1700000000"),
                Some(VECTOR_SIG),
                tampered.as_bytes(),
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &key(),
                Some("1700000001"),
                Some(VECTOR_SIG),
                VECTOR_BODY.as_bytes(),
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &key(),
                Some("1700000000"),
                Some("AAAA"),
                VECTOR_BODY.as_bytes(),
                now
            ),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&key(), None, Some(VECTOR_SIG), VECTOR_BODY.as_bytes(), now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(
                &key(),
                Some("soon"),
                Some(VECTOR_SIG),
                VECTOR_BODY.as_bytes(),
                now
            ),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn bad_public_keys_are_refused() {
        assert!(parse_public_key("not base64!").is_err());
        assert!(parse_public_key("AAAA").is_err());
    }

    #[test]
    fn media_items_may_name_their_type_either_way() {
        let body = br#"{"data":{"event_type":"message.received","payload":{"id":"m1",
            "from":{"phone_number":"+14155552671"},"to":[{"phone_number":"+18445550001"}],
            "text":null,"media":[{"url":"https://a/1.jpg","content_type":"image/jpeg"},
            {"url":"https://a/2.png","type":"image/png"}]}}}"#;
        let WebhookEvent::Message(m) = parse_event(body).expect("parses") else {
            panic!("not a message");
        };
        assert_eq!(m.text, "");
        assert_eq!(m.media[0].content_type, "image/jpeg");
        assert_eq!(m.media[1].content_type, "image/png");
    }

    #[test]
    fn optional_fields_may_be_null_doubled_or_missing() {
        let body = br#"{"data":{"event_type":"message.received","payload":{"id":"m1",
            "from":{"phone_number":"+14155552671"},"to":null,"media":null,"errors":null,
            "extra":{"anything":[1,2]}}}}"#;
        let WebhookEvent::Message(m) = parse_event(body).expect("parses") else {
            panic!("not a message");
        };
        assert!(m.media.is_empty());
        assert_eq!(m.to, "");
        let both = br#"{"data":{"event_type":"message.received","payload":{"id":"m2",
            "from":{"phone_number":"+14155552671"},
            "media":[{"url":"https://a/1.jpg","content_type":"image/jpeg","type":"image/jpeg"}]}}}"#;
        let WebhookEvent::Message(m) = parse_event(both).expect("parses") else {
            panic!("not a message");
        };
        assert_eq!(m.media[0].content_type, "image/jpeg");
    }

    #[test]
    fn events_we_do_not_act_on_need_no_payload() {
        for body in [
            &br#"{"data":{"event_type":"number_order.complete"}}"#[..],
            br#"{"data":{"event_type":"call.hangup","payload":{"call_control_id":"x"}}}"#,
        ] {
            assert!(matches!(parse_event(body), Ok(WebhookEvent::Ignored(_))));
        }
    }

    #[test]
    fn delivery_events_become_status_reports_and_others_are_ignored() {
        let body = br#"{"data":{"event_type":"message.finalized","payload":{"id":"o1",
            "to":[{"phone_number":"+14155552671","status":"delivery_failed"}],
            "errors":[{"code":"40008","title":"Undeliverable"}]}}}"#;
        assert_eq!(
            parse_event(body).expect("parses"),
            WebhookEvent::Status(StatusReport {
                provider: NAME,
                provider_message_id: "o1".into(),
                state: MessageState::Error,
                error: Some("40008 Undeliverable".into()),
                recipient_opted_out: false,
            })
        );
        let queued = br#"{"data":{"event_type":"message.sent","payload":{"id":"o1",
            "to":[{"phone_number":"+1","status":"queued"}]}}}"#;
        assert!(matches!(parse_event(queued), Ok(WebhookEvent::Ignored(_))));
        let other = br#"{"data":{"event_type":"call.initiated","payload":{"id":"c1"}}}"#;
        assert_eq!(
            parse_event(other).expect("parses"),
            WebhookEvent::Ignored("call.initiated".into())
        );
    }
}
