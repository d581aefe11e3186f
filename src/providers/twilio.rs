//! Twilio Programmable Messaging: signed form posts in, `Messages.json` out.

use crate::domain::secret::Secret;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use super::{call, Accepted, InboundMessage, OutboundText, SendError, StatusReport, WebhookEvent};
use crate::domain::moment::MediaItem;
use crate::domain::MessageState;
use crate::vars::{ConfigError, Variable, Vars};

/// Twilio's variables.
pub const VARIABLES: &[Variable] = &[
    ("TWILIO_ACCOUNT_SID", "", "Twilio: account SID"),
    (
        "TWILIO_AUTH_TOKEN",
        "",
        "Twilio: auth token (also verifies webhooks)",
    ),
    ("TWILIO_FROM_NUMBER", "", "Twilio: the sender number"),
    (
        "TWILIO_MESSAGING_SERVICE_SID",
        "",
        "Twilio: or the sending messaging service",
    ),
    (
        "TWILIO_API_BASE",
        "https://api.twilio.com",
        "Twilio: API base",
    ),
];

/// Where Twilio's API is (`TWILIO_API_BASE`).
pub fn read_api_base(vars: &Vars) -> Result<String, ConfigError> {
    vars.base_url("TWILIO_API_BASE", "https://api.twilio.com")
}

impl TwilioConfig {
    /// Twilio's sending settings, when it is the provider; status reports come back to
    /// `public_url`.
    pub fn read(vars: &Vars, public_url: &str) -> Result<Self, ConfigError> {
        let from_number = vars.get("TWILIO_FROM_NUMBER");
        let messaging_service_sid = vars.get("TWILIO_MESSAGING_SERVICE_SID");
        vars.need_one_of("TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID", NAME)?;
        Ok(Self {
            account_sid: vars.need("TWILIO_ACCOUNT_SID", NAME)?,
            auth_token: vars.need("TWILIO_AUTH_TOKEN", NAME)?.into(),
            from_number,
            messaging_service_sid,
            api_base: read_api_base(vars)?,
            status_callback: format!("{public_url}/webhooks/twilio/status"),
        })
    }
}

pub const NAME: &str = "twilio";
/// Twilio's error for a recipient who texted STOP.
const OPTED_OUT_CODE: i64 = 21610;
const OPTED_OUT_WORD: &str = "21610";
/// What a webhook answers so that Twilio sends nothing back itself.
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: Secret,
    pub from_number: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub api_base: String,
    /// Where Twilio reports delivery: `{MOMENTLINE_PUBLIC_URL}/webhooks/twilio/status`.
    pub status_callback: String,
}

pub struct Twilio {
    config: TwilioConfig,
    http: reqwest::Client,
}

/// Form parameters as posted, in order, repeated names kept.
pub type Params = Vec<(String, String)>;

/// `X-Twilio-Signature` for `url` and `params`: base64 of HMAC-SHA1 over the URL followed by
/// each name and value, sorted by name (then value) in byte order.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac(auth_token, url, params).finalize().into_bytes())
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Checks a signature in constant time against `url` as given and with its default port
/// added or removed, as Twilio's own validator does.
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> bool {
    let Some(presented) = signature.and_then(|s| BASE64.decode(s.trim()).ok()) else {
        return false;
    };
    url_forms(url).iter().any(|candidate| {
        mac(auth_token, candidate, params)
            .verify_slice(&presented)
            .is_ok()
    })
}

/// The URL, and the same URL with its default port toggled.
fn url_forms(url: &str) -> Vec<String> {
    let mut forms = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return forms;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return forms,
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let host_end = authority.rfind(']').unwrap_or(0);
    match authority[host_end..].rfind(':').map(|i| i + host_end) {
        Some(colon) if &authority[colon + 1..] == default_port => {
            forms.push(format!("{scheme}://{}{tail}", &authority[..colon]));
        }
        Some(_) => {}
        None => forms.push(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
    forms
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing parameter {0}")]
pub struct MissingParam(pub &'static str);

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn required<'a>(
    params: &'a [(String, String)],
    name: &'static str,
) -> Result<&'a str, MissingParam> {
    param(params, name).ok_or(MissingParam(name))
}

/// An inbound message post: `MessageSid`, `From`, `To`, `Body` and every `MediaUrl{N}`.
pub fn parse_inbound(params: &[(String, String)]) -> Result<WebhookEvent, MissingParam> {
    let count: usize = param(params, "NumMedia")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    // NumMedia is at most 10; never trust it further than the parameters that exist.
    let media = (0..count.min(100))
        .filter_map(|n| {
            let url = param(params, &format!("MediaUrl{n}"))?;
            Some(MediaItem {
                url: url.to_owned(),
                content_type: param(params, &format!("MediaContentType{n}"))
                    .unwrap_or_default()
                    .to_owned(),
            })
        })
        .collect();
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .ok_or(MissingParam("MessageSid"))?;
    Ok(WebhookEvent::Message(InboundMessage {
        provider: NAME,
        provider_message_id: sid.to_owned(),
        from: required(params, "From")?.to_owned(),
        to: param(params, "To").unwrap_or_default().to_owned(),
        text: param(params, "Body").unwrap_or_default().to_owned(),
        subject: None,
        media,
        part: None,
    }))
}

/// A status callback: `MessageSid` and `MessageStatus`, with `ErrorCode` on failure.
pub fn parse_status(params: &[(String, String)]) -> Result<WebhookEvent, MissingParam> {
    let sid = required(params, "MessageSid")?;
    let status = required(params, "MessageStatus")?;
    let state = match status {
        "sent" => MessageState::Sent,
        "delivered" | "read" => MessageState::Delivered,
        "undelivered" | "failed" | "canceled" => MessageState::Error,
        other => return Ok(WebhookEvent::Ignored(format!("status {other}"))),
    };
    let code = param(params, "ErrorCode").filter(|c| !c.is_empty());
    let error = code
        .map(|code| format!("twilio error {code}"))
        .or_else(|| (state == MessageState::Error).then(|| status.to_owned()));
    Ok(WebhookEvent::Status(StatusReport {
        provider: NAME,
        provider_message_id: sid.to_owned(),
        state,
        error,
        recipient_opted_out: code == Some(OPTED_OUT_WORD),
    }))
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

impl Twilio {
    pub fn new(config: TwilioConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    pub fn from_number(&self) -> Option<&str> {
        self.config.from_number.as_deref()
    }

    /// The credentials Twilio's media URLs may ask for.
    pub fn basic_auth(&self) -> (&str, &str) {
        (&self.config.account_sid, self.config.auth_token.expose())
    }

    pub async fn send(&self, text: &OutboundText<'_>) -> Result<Accepted, SendError> {
        let mut form = vec![("To", text.to), ("Body", text.body)];
        match (
            text.from.or(self.config.from_number.as_deref()),
            &self.config.messaging_service_sid,
        ) {
            (_, Some(service)) => form.push(("MessagingServiceSid", service)),
            (Some(from), None) => form.push(("From", from)),
            (None, None) => {}
        }
        form.push(("StatusCallback", &self.config.status_callback));
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.api_base, self.config.account_sid
        );
        let request = self
            .http
            .post(url)
            .basic_auth(
                &self.config.account_sid,
                Some(self.config.auth_token.expose()),
            )
            .form(&form);
        let answer = call(NAME, request).await?;
        let status = answer.status;
        if status.is_success() {
            return Ok(Accepted {
                provider_message_id: answer.accepted::<Created>(NAME).map(|c| c.sid),
            });
        }
        let error: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
        let reason = match (error.code, &error.message) {
            (Some(code), Some(message)) => format!("twilio {}: {code} {message}", status.as_u16()),
            (Some(code), None) => format!("twilio {}: {code}", status.as_u16()),
            _ => format!("twilio {}", status.as_u16()),
        };
        if error.code == Some(OPTED_OUT_CODE) {
            return Err(SendError::RecipientOptedOut { reason });
        }
        Err(answer.failure(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_params() -> Params {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const URL_443: &str = "https://mycompany.com:443/myapp.php?foo=1&bar=2";

    #[test]
    fn the_sdk_test_vectors_sign_as_published() {
        assert_eq!(
            signature("12345", URL, &vector_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            signature("12345", URL_443, &vector_params()),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
    }

    #[test]
    fn a_signature_verifies_with_or_without_the_default_port() {
        for sig in [
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
        ] {
            assert!(
                verify("12345", URL, &vector_params(), Some(sig)),
                "{sig} against {URL}"
            );
            assert!(
                verify("12345", URL_443, &vector_params(), Some(sig)),
                "{sig} against {URL_443}"
            );
        }
    }

    #[test]
    fn wrong_token_params_or_signature_fail() {
        let sig = Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(!verify("54321", URL, &vector_params(), sig));
        let mut params = vector_params();
        params[2].1 = "9999".into();
        assert!(!verify("12345", URL, &params, sig));
        assert!(!verify("12345", URL, &vector_params(), None));
        assert!(!verify("12345", URL, &vector_params(), Some("%%%")));
        assert!(!verify(
            "12345",
            "https://mycompany.com/other",
            &vector_params(),
            sig
        ));
    }

    #[test]
    fn url_forms_toggle_only_the_default_port() {
        assert_eq!(url_forms("http://h/p"), ["http://h/p", "http://h:80/p"]);
        assert_eq!(url_forms("https://h:443"), ["https://h:443", "https://h"]);
        assert_eq!(url_forms("https://h:8443/p"), ["https://h:8443/p"]);
        assert_eq!(
            url_forms("https://[::1]/p"),
            ["https://[::1]/p", "https://[::1]:443/p"]
        );
    }

    #[test]
    fn inbound_posts_carry_every_media_item() {
        let params: Params = [
            ("MessageSid", "MM1"),
            ("From", "+14155552671"),
            ("To", "+18445550001"),
            ("Body", "two"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/m/0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://api.twilio.com/m/1"),
            ("MediaContentType1", "image/png"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let WebhookEvent::Message(m) = parse_inbound(&params).expect("parses") else {
            panic!("not a message");
        };
        assert_eq!(m.media.len(), 2);
        assert_eq!(m.media[1].content_type, "image/png");
        assert!(parse_inbound(&params[1..]).is_err(), "no MessageSid");
    }

    #[test]
    fn status_callbacks_map_to_message_states() {
        let p = |status: &str, code: &str| -> Params {
            vec![
                ("MessageSid".into(), "SM1".into()),
                ("MessageStatus".into(), status.into()),
                ("ErrorCode".into(), code.into()),
            ]
        };
        let state = |params: Params| match parse_status(&params).expect("parses") {
            WebhookEvent::Status(r) => Some((r.state, r.error)),
            _ => None,
        };
        assert_eq!(
            state(p("delivered", "")),
            Some((MessageState::Delivered, None))
        );
        assert_eq!(state(p("sent", "")), Some((MessageState::Sent, None)));
        assert_eq!(
            state(p("undelivered", "30003")),
            Some((MessageState::Error, Some("twilio error 30003".into())))
        );
        assert_eq!(state(p("queued", "")), None);
    }
}
