//! Phonify: outbound texts through `POST /v1/messages`.

use crate::domain::secret::Secret;
use serde::Deserialize;
use serde_json::json;

use super::{call, Accepted, OutboundText, SendError};
use crate::vars::{ConfigError, Variable, Vars};

/// Phonify's variables.
pub const VARIABLES: &[Variable] = &[
    ("PHONIFY_API_KEY", "", "Phonify: API key"),
    ("PHONIFY_APP", "", "Phonify: app id"),
    (
        "PHONIFY_API_BASE",
        "https://api.phonify.io",
        "Phonify: API base",
    ),
];

impl PhonifyConfig {
    /// Phonify's settings, when it is the provider.
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            api_key: vars.need("PHONIFY_API_KEY", NAME)?.into(),
            app: vars.need("PHONIFY_APP", NAME)?,
            api_base: vars.base_url("PHONIFY_API_BASE", "https://api.phonify.io")?,
        })
    }
}

pub const NAME: &str = "phonify";

#[derive(Debug, Clone)]
pub struct PhonifyConfig {
    pub api_key: Secret,
    pub app: String,
    pub api_base: String,
}

pub struct Phonify {
    config: PhonifyConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Created {
    id: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct Errors {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

impl Phonify {
    pub fn new(config: PhonifyConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    pub async fn send(&self, text: &OutboundText<'_>) -> Result<Accepted, SendError> {
        let request = self
            .http
            .post(format!("{}/v1/messages", self.config.api_base))
            .basic_auth(self.config.api_key.expose(), None::<&str>)
            .json(&json!({ "app": self.config.app, "to": text.to, "body": text.body }));
        let answer = call(NAME, request).await?;
        let status = answer.status;
        if status.is_success() {
            let id = answer
                .accepted::<Created>(NAME)
                .map(|created| match created.id {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                });
            return Ok(Accepted {
                provider_message_id: id,
            });
        }
        let errors: Errors = serde_json::from_slice(&answer.body).unwrap_or_default();
        let detail: Vec<String> = errors
            .errors
            .iter()
            .map(|e| match (&e.kind, &e.title) {
                (Some(kind), Some(title)) => format!("{kind}: {title}"),
                (Some(one), None) | (None, Some(one)) => one.clone(),
                (None, None) => String::new(),
            })
            .filter(|d| !d.is_empty())
            .collect();
        let reason = if detail.is_empty() {
            format!("phonify {}", status.as_u16())
        } else {
            format!("phonify {}: {}", status.as_u16(), detail.join("; "))
        };
        Err(answer.failure(reason))
    }
}
