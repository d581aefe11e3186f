//! Standard Webhooks, as momentline sends them to a host's endpoint (Moments to the webhook
//! host, events to `MOMENTLINE_EVENTS_URL`): a `webhook-id` stable across retries, a
//! `webhook-timestamp`, and `webhook-signature: v1,` + base64 HMAC-SHA256 over
//! `id.timestamp.body`.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::answer::{read_capped, retry_after};

/// A Standard Webhooks signing secret: `whsec_` and base64 (the prefix may be left off).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| "not whsec_ followed by base64".to_owned())?;
        if key.len() < 16 {
            return Err("shorter than 16 bytes once decoded".to_owned());
        }
        Ok(Self(key))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The `webhook-signature` header's value for a message.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// Why the host did not take a Moment or an event, in the classes the jobs act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// No answer, 5xx, 429, or a 2xx without a URL: another attempt may succeed (the host
    /// sees the same `webhook-id`, so it never posts twice).
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Any other answer: no attempt will succeed.
    #[error("{reason}")]
    Permanent { reason: String },
}

/// An endpoint that takes signed messages.
#[derive(Debug, Clone)]
pub struct Endpoint {
    http: reqwest::Client,
    url: String,
    secret: WebhookSecret,
}

impl Endpoint {
    /// An endpoint at `url`. Redirects are not followed: a host that moved must be
    /// reconfigured, not guessed at.
    pub fn new(
        url: String,
        secret: WebhookSecret,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            url,
            secret,
        })
    }

    /// Posts one signed event; any 2xx takes it.
    #[tracing::instrument(name = "event_deliver", skip_all, fields(event = id))]
    pub async fn deliver(&self, id: &str, body: Vec<u8>) -> Result<(), DispatchError> {
        self.post(id, body).await.map(|_| ())
    }

    /// Posts one signed message: a 2xx answer, or why it was not taken.
    pub(super) async fn post(&self, id: &str, body: Vec<u8>) -> Result<Answer, DispatchError> {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(&self.secret, id, timestamp, &body);
        let sent = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        // Errors are shown without the URL: it may carry a token.
        let response = sent.map_err(|e| DispatchError::Retryable {
            reason: format!(
                "host could not be reached: {}",
                crate::telemetry::error_chain(&e.without_url())
            ),
            retry_after: None,
        })?;
        let status = response.status();
        let retry_after = retry_after(&response);
        let answer = Answer {
            status,
            text: read_capped(response).await,
        };
        if status.is_success() {
            return Ok(answer);
        }
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
        {
            return Err(DispatchError::Retryable {
                reason: answer.reason(""),
                retry_after,
            });
        }
        Err(DispatchError::Permanent {
            reason: answer.reason(""),
        })
    }
}

/// What the host answered.
pub(super) struct Answer {
    status: reqwest::StatusCode,
    pub(super) text: String,
}

impl Answer {
    /// The answer as a recorded reason: its status, `what`, and the start of its body.
    pub(super) fn reason(&self, what: &str) -> String {
        let shown: String = self.text.chars().take(200).collect();
        format!("host {}{what}: {shown}", self.status.as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        assert_eq!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let bare = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        assert_eq!(bare, secret, "the prefix may be left off");
        assert!(WebhookSecret::parse("whsec_!!!").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err(), "too short");
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }
}
