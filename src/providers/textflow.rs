//! TextFlow: outbound texts through `POST /api/send-sms`; verification codes it makes and
//! checks itself through `POST /api/send-code` and `POST /api/verify-code`; a broadcast's
//! batches through its bulk path, `POST /api/bulk-sms`, and what still waits there through
//! `POST /api/bulk-count`.

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

/// Numbers in one `bulk-sms` call. TextFlow documents no limit; 500 E.164 numbers and the
/// longest broadcast (10 segments) make a body of about 20 kB, a fifth of the 100 kB a JSON
/// API commonly takes by default, and one call is one fan-out write's numbers.
pub const BULK_BATCH: usize = 500;

/// TextFlow took a bulk job: it sends it at its own pace. `rejected` are the numbers its
/// answer names as refused, each with the reason given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkAccepted {
    pub rejected: Vec<(String, String)>,
}

/// The numbers a `bulk-sms` answer names as refused. TextFlow documents no such field: any of
/// `data.invalid_numbers`, `data.rejected`, `data.failed` or `data.invalid` is read, each a
/// list of numbers or of objects with `phone_number` (or `to`) and a `message` (or `error`).
fn rejected_numbers(body: &[u8]) -> Vec<(String, String)> {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let data = &answer["data"];
    let mut rejected = Vec::new();
    for field in ["invalid_numbers", "rejected", "failed", "invalid"] {
        let Some(items) = data[field].as_array() else {
            continue;
        };
        for item in items {
            let number = item
                .as_str()
                .or_else(|| item["phone_number"].as_str())
                .or_else(|| item["to"].as_str());
            let reason = item["message"]
                .as_str()
                .or_else(|| item["error"].as_str())
                .unwrap_or("refused by textflow bulk-sms");
            if let Some(number) = number {
                rejected.push((number.to_owned(), format!("textflow: {reason}")));
            }
        }
    }
    rejected
}

/// The count a `bulk-count` answer gives: `data` itself, or its (or the answer's) `count`,
/// `recipients`, `waiting` or `remaining`. TextFlow documents only what it means: the
/// recipients that should receive the account's bulk texts soon.
fn waiting_count(body: &[u8]) -> Option<u64> {
    let answer = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    let data = &answer["data"];
    if let Some(n) = data.as_u64() {
        return Some(n);
    }
    ["count", "recipients", "waiting", "remaining"]
        .iter()
        .find_map(|field| data[field].as_u64().or_else(|| answer[field].as_u64()))
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

    /// Sends `text` to every one of `numbers` as one TextFlow bulk job.
    pub async fn send_bulk(&self, numbers: &[&str], text: &str) -> Result<BulkAccepted, SendError> {
        let body = json!({ "phone_numbers": numbers, "text": text });
        let reply = call(NAME, self.post("bulk-sms", &body)).await?;
        let rejected = rejected_numbers(&reply.body);
        self.judged(&reply)?;
        Ok(BulkAccepted { rejected })
    }

    /// How many recipients of this account's bulk jobs TextFlow has still to send to.
    pub async fn bulk_waiting(&self) -> Result<u64, SendError> {
        let reply = call(NAME, self.post("bulk-count", &json!({}))).await?;
        self.judged(&reply)?;
        waiting_count(&reply.body).ok_or_else(|| SendError::Permanent {
            reason: "textflow bulk-count answered no count".into(),
        })
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
        self.judged(&reply)?;
        Ok(Accepted {
            provider_message_id: None,
        })
    }

    /// Whether TextFlow took what it was asked, by its answer's status and its `ok`.
    fn judged(&self, reply: &super::Answer) -> Result<(), SendError> {
        let http_status = reply.status;
        // A success status with an answer that cannot be read still means TextFlow took it.
        let answer: Answer = serde_json::from_slice(&reply.body).unwrap_or(Answer {
            ok: http_status.is_success(),
            ..Answer::default()
        });
        if http_status.is_success() && answer.ok {
            return Ok(());
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
    use super::{code_accepted, rejected_numbers, waiting_count};

    #[test]
    fn a_bulk_count_is_read_where_an_answer_may_put_it() {
        assert_eq!(waiting_count(br#"{"ok":true,"data":7}"#), Some(7));
        assert_eq!(waiting_count(br#"{"ok":true,"data":{"count":3}}"#), Some(3));
        assert_eq!(waiting_count(br#"{"ok":true,"count":0}"#), Some(0));
        assert_eq!(
            waiting_count(br#"{"ok":true,"data":{"recipients":12}}"#),
            Some(12)
        );
        assert_eq!(waiting_count(br#"{"ok":true}"#), None);
        assert_eq!(waiting_count(b"not json"), None);
    }

    #[test]
    fn a_bulk_answer_naming_refused_numbers_is_read_as_numbers_and_reasons() {
        let named = rejected_numbers(
            br#"{"ok":true,"data":{"invalid_numbers":["+1555"],
                "failed":[{"phone_number":"+1556","message":"Phone number is invalid"}]}}"#,
        );
        assert_eq!(
            named,
            [
                (
                    "+1555".to_owned(),
                    "textflow: refused by textflow bulk-sms".to_owned()
                ),
                (
                    "+1556".to_owned(),
                    "textflow: Phone number is invalid".to_owned()
                ),
            ]
        );
        assert!(rejected_numbers(br#"{"ok":true,"message":"sent"}"#).is_empty());
    }

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
