//! SMS providers: each file parses and authenticates its webhooks into the types here, and
//! sends one outbound text. Adding a provider touches one file and the matches below.

pub mod console;
pub mod dev;
pub mod phonify;
pub mod telnyx;
pub mod textflow;
pub mod twilio;
pub mod vonage;

use std::time::Duration;

use crate::domain::moment::MediaItem;
use crate::domain::MessageState;
use crate::vars::{invalid, ConfigError, Variable, Vars};

/// An inbound text, whichever provider carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub provider: &'static str,
    /// The provider's id for the message: the dedupe key.
    pub provider_message_id: String,
    pub from: String,
    pub to: String,
    pub text: String,
    pub subject: Option<String>,
    pub media: Vec<MediaItem>,
    /// One part of a message the provider delivers in several (Vonage's `concat`).
    pub part: Option<Part>,
}

/// Which part of a multi-part message this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The sender's id for the whole message; reused over time, so unique only among parts
    /// not yet joined.
    pub reference: String,
    /// From 1.
    pub number: u32,
    pub total: u32,
}

/// A provider's report on an outbound text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub provider: &'static str,
    pub provider_message_id: String,
    pub state: MessageState,
    pub error: Option<String>,
    /// The provider says the recipient has opted out with the carrier.
    pub recipient_opted_out: bool,
}

/// What one webhook call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    Message(InboundMessage),
    Status(StatusReport),
    /// Well-formed, authentic, and of no interest (an event type we do not act on).
    Ignored(String),
}

impl WebhookEvent {
    /// The provider's id for the message the event is about, when it names one.
    pub fn provider_message_id(&self) -> Option<&str> {
        match self {
            Self::Message(message) => Some(&message.provider_message_id),
            Self::Status(report) => Some(&report.provider_message_id),
            Self::Ignored(_) => None,
        }
    }
}

/// One text to send.
#[derive(Debug, Clone)]
pub struct OutboundText<'a> {
    /// Our id for the message.
    pub id: crate::domain::ids::MessageId,
    pub to: &'a str,
    /// Our number to send from; `None` for the provider's configured sender.
    pub from: Option<&'a str>,
    pub body: &'a str,
}

/// A provider accepted a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub provider_message_id: Option<String>,
}

/// Why a provider did not accept a text, in the classes the send_text job acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Timeouts, 5xx: another attempt may succeed (not before `retry_after`, if given).
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// 429: the provider asks us to slow down. Nothing was tried, so no attempt is spent.
    #[error("{reason}")]
    Throttled {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Authentication errors, invalid numbers and the like: no attempt will succeed.
    #[error("{reason}")]
    Permanent { reason: String },
    /// The recipient has opted out with the carrier: never text them again.
    #[error("{reason}")]
    RecipientOptedOut { reason: String },
    /// 401 or 403: the provider refuses our credentials. No text can go until they are
    /// fixed, so sending pauses; no attempt is spent.
    #[error("{reason}")]
    Unauthorized { reason: String },
}

impl SendError {
    /// Classifies an HTTP failure by status: 408 and 5xx are worth another attempt, 429
    /// asks for a slower pace.
    pub fn from_status(
        status: reqwest::StatusCode,
        retry_after: Option<Duration>,
        reason: String,
    ) -> Self {
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            Self::Unauthorized { reason }
        } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Self::Throttled {
                reason,
                retry_after,
            }
        } else if status.is_server_error() || status == reqwest::StatusCode::REQUEST_TIMEOUT {
            Self::Retryable {
                reason,
                retry_after,
            }
        } else {
            Self::Permanent { reason }
        }
    }

    /// A request that got no answer (timeout, refused connection) may succeed later.
    pub fn from_transport(provider: &str, error: &reqwest::Error) -> Self {
        let what = if error.is_timeout() {
            "timed out"
        } else {
            "could not be reached"
        };
        Self::Retryable {
            reason: format!("{provider} {what}: {error}"),
            retry_after: None,
        }
    }
}

/// A provider's answer, read whole.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// Sends a request and reads the whole answer; no answer at all may succeed another time.
pub async fn call(provider: &str, request: reqwest::RequestBuilder) -> Result<Answer, SendError> {
    let transport = |e: reqwest::Error| SendError::from_transport(provider, &e);
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = match response.bytes().await {
        Ok(body) => body.to_vec(),
        // The status already says the text was taken: losing the rest of the answer must not
        // make it go out again.
        Err(e) if status.is_success() => {
            tracing::warn!(provider, error = %e, "the provider's answer broke off after a success status");
            Vec::new()
        }
        Err(e) => return Err(transport(e)),
    };
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

impl Answer {
    /// A success body as `T`, if it can be read. One that cannot still means the provider
    /// took the text: it counts as sent, with no id, and is never sent again.
    pub fn accepted<T: serde::de::DeserializeOwned>(&self, provider: &str) -> Option<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| {
                tracing::warn!(provider, error = %e,
                    "the provider took a text but its answer was unreadable; recorded without an id");
            })
            .ok()
    }

    /// A failure classed by this answer's status.
    pub fn failure(&self, reason: String) -> SendError {
        SendError::from_status(self.status, self.retry_after, reason)
    }
}

/// `Retry-After` in seconds (the form providers use).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The configured outbound provider.
pub enum Sender {
    Console(console::Console),
    Telnyx(telnyx::Telnyx),
    Twilio(twilio::Twilio),
    Vonage(vonage::Vonage),
    TextFlow(textflow::TextFlow),
    Phonify(phonify::Phonify),
}

/// The outbound provider (`MOMENTLINE_SMS_PROVIDER`) and its credentials.
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    Console,
    Telnyx(telnyx::TelnyxConfig),
    Twilio(twilio::TwilioConfig),
    Vonage(vonage::VonageConfig),
    TextFlow(textflow::TextFlowConfig),
    Phonify(phonify::PhonifyConfig),
}

/// The values of `MOMENTLINE_SMS_PROVIDER`.
pub const NAMES: &[&str] = &[
    console::NAME,
    telnyx::NAME,
    twilio::NAME,
    vonage::NAME,
    textflow::NAME,
    phonify::NAME,
];

impl ProviderSettings {
    /// The provider `MOMENTLINE_SMS_PROVIDER` names, each reading its own variables; Twilio's
    /// status reports come back to `public_url`.
    pub fn read(vars: &Vars, public_url: &str) -> Result<Self, ConfigError> {
        let name = vars
            .or("MOMENTLINE_SMS_PROVIDER", "console")
            .to_ascii_lowercase();
        Ok(match name.as_str() {
            console::NAME => Self::Console,
            telnyx::NAME => Self::Telnyx(telnyx::TelnyxConfig::read(vars)?),
            twilio::NAME => Self::Twilio(twilio::TwilioConfig::read(vars, public_url)?),
            vonage::NAME => Self::Vonage(vonage::VonageConfig::read(vars)?),
            textflow::NAME => Self::TextFlow(textflow::TextFlowConfig::read(vars)?),
            phonify::NAME => Self::Phonify(phonify::PhonifyConfig::read(vars)?),
            other => {
                return Err(invalid(
                    "MOMENTLINE_SMS_PROVIDER",
                    format!("'{other}' is not one of {}", NAMES.join(", ")),
                ))
            }
        })
    }
}

/// Every provider's variables, in the order `--help` lists them.
pub fn variables() -> impl Iterator<Item = &'static Variable> {
    [
        telnyx::VARIABLES,
        twilio::VARIABLES,
        vonage::VARIABLES,
        textflow::VARIABLES,
        phonify::VARIABLES,
    ]
    .into_iter()
    .flatten()
}

impl Sender {
    /// The sender for `settings`, sending through `http`.
    pub fn new(settings: &ProviderSettings, http: reqwest::Client) -> Self {
        match settings {
            ProviderSettings::Console => Self::Console(console::Console),
            ProviderSettings::Telnyx(c) => Self::Telnyx(telnyx::Telnyx::new(c.clone(), http)),
            ProviderSettings::Twilio(c) => Self::Twilio(twilio::Twilio::new(c.clone(), http)),
            ProviderSettings::Vonage(c) => Self::Vonage(vonage::Vonage::new(c.clone(), http)),
            ProviderSettings::TextFlow(c) => {
                Self::TextFlow(textflow::TextFlow::new(c.clone(), http))
            }
            ProviderSettings::Phonify(c) => Self::Phonify(phonify::Phonify::new(c.clone(), http)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Console(_) => console::NAME,
            Self::Telnyx(_) => telnyx::NAME,
            Self::Twilio(_) => twilio::NAME,
            Self::Vonage(_) => vonage::NAME,
            Self::TextFlow(_) => textflow::NAME,
            Self::Phonify(_) => phonify::NAME,
        }
    }

    /// The settings that hold this provider's credentials, for an operator to check.
    pub fn credentials(&self) -> &'static str {
        match self {
            Self::Console(_) => "(none)",
            Self::Telnyx(_) => "TELNYX_API_KEY",
            Self::Twilio(_) => "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
            Self::Vonage(_) => "VONAGE_API_KEY and VONAGE_API_SECRET",
            Self::TextFlow(_) => "TEXTFLOW_API_KEY",
            Self::Phonify(_) => "PHONIFY_API_KEY",
        }
    }

    /// The number texts go out from when a message names none, if the provider has one.
    pub fn default_from(&self) -> Option<&str> {
        match self {
            Self::Telnyx(t) => t.from_number(),
            Self::Twilio(t) => t.from_number(),
            Self::Vonage(v) => v.from_number(),
            Self::Console(_) | Self::TextFlow(_) | Self::Phonify(_) => None,
        }
    }

    /// Whether texts to this provider's numbers reach momentline, so a reply 'yes' can
    /// verify a number. TextFlow and Phonify have no inbound webhook: codes only.
    pub fn receives_replies(&self) -> bool {
        !matches!(self, Self::TextFlow(_) | Self::Phonify(_))
    }

    /// The provider's own verification service, when momentline uses it for codes
    /// (TextFlow's send-code and verify-code): the provider makes, texts and checks the code.
    pub fn code_service(&self) -> Option<&textflow::TextFlow> {
        match self {
            Self::TextFlow(t) => Some(t),
            _ => None,
        }
    }

    /// The provider's own bulk path for broadcasts, when it has one (TextFlow's bulk-sms):
    /// a batch of numbers is one call, sent by the provider at its own pace.
    pub fn bulk_service(&self) -> Option<&textflow::TextFlow> {
        match self {
            Self::TextFlow(t) => Some(t),
            _ => None,
        }
    }

    #[tracing::instrument(name = "send", skip_all, fields(
        provider = self.name(),
        message_id = text.id.0,
        to = %crate::domain::phone_number::mask(text.to),
        provider_message_id = tracing::field::Empty,
    ))]
    pub async fn send(&self, text: &OutboundText<'_>) -> Result<Accepted, SendError> {
        let sent = self.send_through(text).await;
        if let Ok(Accepted {
            provider_message_id: Some(id),
        }) = &sent
        {
            tracing::Span::current().record("provider_message_id", id.as_str());
        }
        sent
    }

    async fn send_through(&self, text: &OutboundText<'_>) -> Result<Accepted, SendError> {
        match self {
            Self::Console(c) => Ok(c.send(text)),
            Self::Telnyx(t) => t.send(text).await,
            Self::Twilio(t) => t.send(text).await,
            Self::Vonage(v) => v.send(text).await,
            Self::TextFlow(t) => t.send(text).await,
            Self::Phonify(p) => p.send(text).await,
        }
    }
}
