//! TextFlow: outbound texts through `POST /api/send-sms`; verification codes it makes and
//! checks itself through `POST /api/send-code` and `POST /api/verify-code`.

use crate::domain::secret::Secret;
use serde::Deserialize;
use serde_json::json;

use super::{call, Accepted, OutboundText, SendError};
use crate::vars::{ConfigError, Variable, Vars};

/// TextFlow's variables.
pub const VARIABLES: &[Variable] = &[
    ("TEXTFLOW_API_KEY", "", "TextFlow: API key"),
    (
        "TEXTFLOW_API_BASE",
        "https://textflow.me",
        "TextFlow: API base",
    ),
];

impl TextFlowConfig {
    /// TextFlow's settings, when it is the provider.
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            api_key: vars.need("TEXTFLOW_API_KEY", NAME)?.into(),
            api_base: vars.base_url("TEXTFLOW_API_BASE", "https://textflow.me")?,
        })
    }
}

pub const NAME: &str = "textflow";

#[derive(Debug, Clone)]
pub struct TextFlowConfig {
    pub api_key: Secret,
    pub api_base: String,
}

pub struct TextFlow {
    config: TextFlowConfig,
    http: reqwest::Client,
}

#[derive(Deserialize, Default)]
struct Answer {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
}

/// What `verify-code` says of a code: `valid` at the top level, or inside `data`
/// (`{"ok": true, "data": {"valid": true}}`).
#[derive(Deserialize)]
struct Verdict {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    valid: bool,
    #[serde(default)]
    data: Option<VerdictData>,
}

#[derive(Deserialize)]
struct VerdictData {
    #[serde(default)]
    valid: bool,
}

impl Verdict {
    fn accepts(&self) -> bool {
        let valid = self.valid || self.data.as_ref().is_some_and(|d| d.valid);
        valid && self.ok != Some(false)
    }
}

/// Whether a success answer's body says the code is the one texted.
fn code_accepted(body: &[u8]) -> bool {
    serde_json::from_slice::<Verdict>(body).is_ok_and(|v| v.accepts())
}

/// The name TextFlow's code text gives the service.
pub const SERVICE_NAME: &str = "In Process";

impl TextFlow {
    pub fn new(config: TextFlowConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    fn post(&self, endpoint: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/api/{endpoint}", self.config.api_base))
            .bearer_auth(self.config.api_key.expose())
            .json(body)
    }

    /// TextFlow documents no message id, so the text stays known by momentline's own id.
    pub async fn send(&self, text: &OutboundText<'_>) -> Result<Accepted, SendError> {
        let body = json!({ "phone_number": text.to, "text": text.body });
        self.answered(self.post("send-sms", &body)).await
    }

    /// Asks TextFlow to make a code for `to`, valid for `seconds`, and text it.
    pub async fn send_code(&self, to: &str, seconds: i64) -> Result<Accepted, SendError> {
        let body = json!({ "phone_number": to, "service_name": SERVICE_NAME, "seconds": seconds });
        self.answered(self.post("send-code", &body)).await
    }

    /// Whether `code` is the one TextFlow texted `phone`. A refusal of the code (a success
    /// answer without `valid: true`, or a 4xx other than 401, 403 and 429) is `Ok(false)`;
    /// no answer, a 5xx, a throttle or refused credentials is an error: nothing was decided.
    /// The answer is never logged: it may carry the code.
    pub async fn verify_code(&self, phone: &str, code: &str) -> Result<bool, SendError> {
        let body = json!({ "phone_number": phone, "code": code });
        let reply = call(NAME, self.post("verify-code", &body)).await?;
        let status = reply.status;
        let undecided = status.is_server_error()
            || status == reqwest::StatusCode::UNAUTHORIZED
            || status == reqwest::StatusCode::FORBIDDEN
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT;
        if undecided {
            return Err(reply.failure(format!("textflow verify-code {}", status.as_u16())));
        }
        Ok(status.is_success() && code_accepted(&reply.body))
    }

    async fn answered(&self, request: reqwest::RequestBuilder) -> Result<Accepted, SendError> {
        let reply = call(NAME, request).await?;
        let http_status = reply.status;
        // A success status with an answer that cannot be read still means TextFlow took it.
        let answer: Answer = serde_json::from_slice(&reply.body).unwrap_or(Answer {
            ok: http_status.is_success(),
            ..Answer::default()
        });
        if http_status.is_success() && answer.ok {
            return Ok(Accepted {
                provider_message_id: None,
            });
        }
        // TextFlow may answer 200 with `ok: false`: its own `status` then says what kind of
        // failure it is, and a failure with no kind given is not worth repeating.
        let status = if http_status.is_success() {
            answer
                .status
                .and_then(|s| reqwest::StatusCode::from_u16(s).ok())
                .filter(|s| !s.is_success())
                .unwrap_or(reqwest::StatusCode::BAD_REQUEST)
        } else {
            http_status
        };
        let reason = match &answer.message {
            Some(message) => format!("textflow {}: {message}", status.as_u16()),
            None => format!("textflow {}", status.as_u16()),
        };
        Err(SendError::from_status(status, reply.retry_after, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::code_accepted;

    #[test]
    fn a_verdict_is_read_at_the_top_level_or_inside_data() {
        assert!(code_accepted(br#"{"ok":true,"valid":true}"#));
        assert!(code_accepted(br#"{"valid":true}"#));
        assert!(code_accepted(br#"{"ok":true,"data":{"valid":true}}"#));
        assert!(!code_accepted(br#"{"ok":true,"data":{"valid":false}}"#));
        assert!(!code_accepted(br#"{"ok":false,"data":{"valid":true}}"#));
        assert!(!code_accepted(br#"{"ok":true,"valid":false}"#));
        assert!(!code_accepted(br#"{"ok":true}"#));
        assert!(!code_accepted(br#"{"ok":true,"data":null}"#));
        assert!(!code_accepted(b"not json"));
    }
}
