//! TextFlow: outbound texts through `POST /api/send-sms`.

use crate::config::Secret;
use serde::Deserialize;
use serde_json::json;

use super::{call, Accepted, OutboundText, SendError};

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

impl TextFlow {
    pub fn new(config: TextFlowConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// TextFlow documents no message id, so the text stays known by momentline's own id.
    pub async fn send(&self, text: &OutboundText<'_>) -> Result<Accepted, SendError> {
        let request = self
            .http
            .post(format!("{}/api/send-sms", self.config.api_base))
            .bearer_auth(self.config.api_key.expose())
            .json(&json!({ "phone_number": text.to, "text": text.body }));
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
