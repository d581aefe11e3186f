//! Vonage: the SMS API (`sms.rs`: signed parameters in, `/sms/json` out) and the Messages API
//! (`messages.rs`: JWT-signed JSON webhooks, how MMS arrives), sharing the signature secret
//! and the types here.

mod messages;
mod sms;

pub use messages::{
    parse_messages, verify_jwt, verify_jwt_at, JwtError, JWT_MAX_AGE_SECS, JWT_MAX_SKEW_SECS,
};
pub use sms::{params_from_json, parse, signature, verify, Vonage, VonageConfig};

use crate::domain::secret::Secret;

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadParams(pub String);

/// Vonage writes numbers without the `+`.
fn e164(number: &str) -> String {
    if number.starts_with('+') {
        number.to_owned()
    } else {
        format!("+{number}")
    }
}
