//! Vonage's SMS API: inbound messages and delivery receipts as signed parameters (GET, form
//! or JSON), long messages in parts, and sending through `/sms/json`.

use hmac::{Hmac, Mac};
use md5::Md5;
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{e164, BadParams, Params, SignatureMethod, SignatureSecret, Webhook, NAME};
use crate::domain::secret::Secret;
use crate::domain::segments::{Encoding, Segments};
use crate::domain::MessageState;
use crate::providers::{
    call, Accepted, InboundMessage, OutboundText, Part, SendError, StatusReport, WebhookEvent,
};

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

/// A webhook's parameters: a GET's (or HEAD's) query, else its body as JSON or a form.
/// `None` when they cannot be read.
pub(super) fn params(webhook: &Webhook<'_>) -> Option<Params> {
    if matches!(webhook.method, "GET" | "HEAD") {
        return serde_urlencoded::from_str(webhook.query).ok();
    }
    let json = webhook
        .content_type
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    if json {
        params_from_json(webhook.body).ok()
    } else {
        serde_urlencoded::from_bytes(webhook.body).ok()
    }
}

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

    #[test]
    fn json_bodies_become_parameters() {
        let params = params_from_json(br#"{"msisdn":"1","n":5,"b":true,"x":null}"#).expect("json");
        assert_eq!(param(&params, "n"), Some("5"));
        assert_eq!(param(&params, "b"), Some("true"));
        assert_eq!(param(&params, "x"), None);
        assert!(params_from_json(b"[1]").is_err());
    }

    #[test]
    fn sms_api_parameters_are_read_from_a_gets_query_and_a_posts_body() {
        use crate::providers::vonage::{authenticate, Webhook, WebhookError};
        let mut signed = vector();
        signed.push((
            "sig".into(),
            signature(&secret(SignatureMethod::HmacSha256), &vector()),
        ));
        let form = serde_urlencoded::to_string(&signed).expect("form");
        let json = serde_json::Value::Object(
            signed
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect(),
        )
        .to_string();
        let webhook = |method, query, content_type, body| Webhook {
            method,
            query,
            content_type,
            authorization: None,
            body,
        };
        let json_type = Some("application/json");
        let form_type = Some("application/x-www-form-urlencoded");
        for taken in [
            webhook("GET", &form, None, b""),
            webhook("POST", "", form_type, form.as_bytes()),
            webhook("POST", "", json_type, json.as_bytes()),
        ] {
            let verdict = authenticate(&secret(SignatureMethod::HmacSha256), &taken, 0);
            assert!(matches!(verdict, Ok(WebhookEvent::Message(_))), "{taken:?}");
        }
        for (refused, why) in [
            (
                webhook("GET", "", None, form.as_bytes()),
                WebhookError::BadSignature,
            ),
            (
                webhook("POST", &form, form_type, b""),
                WebhookError::BadSignature,
            ),
            (
                webhook("POST", "", json_type, b"{not json"),
                WebhookError::Unreadable,
            ),
            (
                webhook("POST", "", json_type, b"[1]"),
                WebhookError::Unreadable,
            ),
        ] {
            let verdict = authenticate(&secret(SignatureMethod::HmacSha256), &refused, 0);
            assert_eq!(verdict, Err(why), "{refused:?}");
        }
    }
}
