//! Vonage: the SMS API (`sms.rs`: signed parameters in, `/sms/json` out) and the Messages API
//! (`messages.rs`: JWT-signed JSON webhooks, how MMS arrives), sharing the signature secret
//! and the types here.

mod messages;
mod sms;

pub use messages::{
    parse_messages, verify_jwt, verify_jwt_at, JwtError, JWT_MAX_AGE_SECS, JWT_MAX_SKEW_SECS,
};
pub use sms::{params_from_json, parse, signature, verify, Vonage, VonageConfig};

use super::WebhookEvent;
use crate::domain::secret::Secret;
use crate::vars::{invalid, ConfigError, Variable, Vars};

pub const NAME: &str = "vonage";

/// Vonage's variables.
pub const VARIABLES: &[Variable] = &[
    ("VONAGE_API_KEY", "", "Vonage: API key"),
    ("VONAGE_API_SECRET", "", "Vonage: API secret"),
    ("VONAGE_FROM", "", "Vonage: the sender"),
    (
        "VONAGE_SIGNATURE_SECRET",
        "",
        "Vonage: webhook signature secret",
    ),
    (
        "VONAGE_SIGNATURE_METHOD",
        "sha256",
        "Vonage: md5hash, md5, sha1, sha256 or sha512",
    ),
    (
        "VONAGE_API_BASE",
        "https://rest.nexmo.com",
        "Vonage: API base",
    ),
];

impl VonageConfig {
    /// Vonage's sending settings, when it is the provider.
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            api_key: vars.need("VONAGE_API_KEY", NAME)?,
            api_secret: vars.need("VONAGE_API_SECRET", NAME)?.into(),
            from: vars.need("VONAGE_FROM", NAME)?,
            api_base: vars.base_url("VONAGE_API_BASE", "https://rest.nexmo.com")?,
        })
    }
}

/// The secret Vonage webhooks are verified with, and how they are signed
/// (`VONAGE_SIGNATURE_SECRET`, `VONAGE_SIGNATURE_METHOD`); `None` refuses them all.
pub fn read_signature(vars: &Vars) -> Result<Option<SignatureSecret>, ConfigError> {
    let Some(secret) = vars.get("VONAGE_SIGNATURE_SECRET") else {
        return Ok(None);
    };
    let word = vars.or("VONAGE_SIGNATURE_METHOD", "sha256");
    let method = SignatureMethod::parse(&word).ok_or_else(|| {
        invalid(
            "VONAGE_SIGNATURE_METHOD",
            format!("'{word}' is not one of md5hash, md5, sha1, sha256, sha512"),
        )
    })?;
    Ok(Some(SignatureSecret {
        secret: secret.into(),
        method,
    }))
}

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadParams(pub String);

/// A Vonage webhook as it arrived: what tells which API sent it and how it is signed.
#[derive(Debug, Clone, Copy)]
pub struct Webhook<'a> {
    /// The HTTP method: the SMS API puts a GET's parameters in the query.
    pub method: &'a str,
    pub query: &'a str,
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

/// Why a Vonage webhook was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The parameters or the JSON cannot be read, so nothing shows they are Vonage's: the
    /// same refusal on every scheme.
    #[error("the parameters or body cannot be read")]
    Unreadable,
    #[error("bad or missing sig")]
    BadSignature,
    #[error("Messages API token refused: {0}")]
    BadToken(#[from] JwtError),
    /// Authentic, but not a message or receipt Vonage sends.
    #[error("{0}")]
    Malformed(#[from] BadParams),
}

/// Authenticates a Vonage webhook by the scheme it came with, at the Unix time `now`, and
/// reads it into an event. A bearer token is the Messages API's JWT over the body; anything
/// else is the SMS API's `sig` over its parameters.
pub fn authenticate(
    secret: &SignatureSecret,
    webhook: &Webhook<'_>,
    now: i64,
) -> Result<WebhookEvent, WebhookError> {
    if let Some(authorization) = webhook.authorization {
        verify_jwt_at(
            secret.secret.expose(),
            Some(authorization),
            webhook.body,
            now,
        )?;
        return messages::read(webhook.body);
    }
    let params = sms::params(webhook).ok_or(WebhookError::Unreadable)?;
    if !verify(secret, &params) {
        return Err(WebhookError::BadSignature);
    }
    Ok(parse(&params)?)
}

/// Vonage writes numbers without the `+`.
fn e164(number: &str) -> String {
    if number.starts_with('+') {
        number.to_owned()
    } else {
        format!("+{number}")
    }
}
