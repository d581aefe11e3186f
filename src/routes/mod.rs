//! The HTTP surface: thin handlers that parse, call the domain, persist and answer.

mod auth;
mod dev_phone;
mod health;
mod html;
mod index;
mod media;
mod messages;
mod metadata;
mod metrics;
mod moment_page;
mod moments;
mod openapi;
mod phones;
pub mod request_id;
mod webhooks;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::{guard, web, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Settings;
use crate::db::{Conn, DbError};
use crate::flows::connect::ConnectSettings;
use crate::flows::inbound::ReceiveSettings;
use crate::jobs::Runner;
use crate::metrics::Metrics;
use crate::store::{Reads, Store, WriteError};
use crate::telemetry::error_chain;

pub use auth::Authenticated;
pub use index::{links as index_links, Link};
pub use openapi::ApiDoc;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    /// The store's read connections.
    pub pool: Reads,
    pub settings: Arc<Settings>,
    pub receive: Arc<ReceiveSettings>,
    pub connect: Arc<ConnectSettings>,
    /// Woken when a write queued work.
    pub runner: Runner,
    /// The SMS provider, for the codes it checks itself.
    pub sender: Arc<crate::providers::Sender>,
    pub metrics: Arc<Metrics>,
}

/// How long a client is asked to wait when the write queue is full.
const BUSY_RETRY_AFTER_SECS: u64 = 1;
/// How long a client is asked to wait when the database cannot take a write now.
const DATABASE_RETRY_AFTER_SECS: u64 = 5;

/// The largest API request body.
const API_BODY_LIMIT: usize = 16 * 1024;
/// The largest webhook body (an MMS notification with many media items stays far below).
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

/// One method of a path, with its handler.
pub type Endpoint = (Method, actix_web::Route);

/// A method of a path. A GET route answers HEAD too (actix-web does not by itself): with
/// the GET's status and headers, and no body.
fn on<F, Args>(method: Method, handler: F) -> Endpoint
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let route = if method == Method::GET {
        web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
    } else {
        web::method(method.clone())
    };
    (method, route.to(handler))
}

/// Every path momentline serves, with its methods: `configure` registers exactly these, and
/// the OpenAPI document is checked against them.
fn route_table() -> Vec<(&'static str, Vec<Endpoint>)> {
    use Method as M;
    vec![
        ("/", vec![on(M::GET, index::index)]),
        ("/healthz", vec![on(M::GET, health::healthz)]),
        ("/readyz", vec![on(M::GET, health::readyz)]),
        ("/metrics", vec![on(M::GET, metrics::metrics)]),
        ("/openapi.json", vec![on(M::GET, openapi::document)]),
        (
            "/api/phones",
            vec![
                on(M::POST, phones::connect),
                on(M::DELETE, phones::disconnect),
                on(M::GET, phones::list),
            ],
        ),
        ("/api/phones/verify", vec![on(M::POST, phones::verify)]),
        ("/api/messages", vec![on(M::GET, messages::list)]),
        ("/api/messages/{id}", vec![on(M::GET, messages::one)]),
        ("/api/moments", vec![on(M::GET, moments::list)]),
        ("/moments/{id}", vec![on(M::GET, moments::page)]),
        (
            "/moments/{id}/metadata.json",
            vec![on(M::GET, metadata::metadata)],
        ),
        ("/media/{file}", vec![on(M::GET, media::file)]),
        ("/webhooks/telnyx", vec![on(M::POST, webhooks::telnyx)]),
        ("/webhooks/twilio", vec![on(M::POST, webhooks::twilio)]),
        (
            "/webhooks/twilio/status",
            vec![on(M::POST, webhooks::twilio_status)],
        ),
        (
            "/webhooks/vonage",
            vec![on(M::GET, webhooks::vonage), on(M::POST, webhooks::vonage)],
        ),
    ]
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, endpoints) in route_table() {
        cfg.service(resource(path, endpoints));
    }
}

/// Each registered path and its methods (`GET`, `POST`, …).
pub fn registered_routes() -> Vec<(&'static str, Vec<Method>)> {
    route_table()
        .into_iter()
        .map(|(path, endpoints)| (path, endpoints.into_iter().map(|(m, _)| m).collect()))
        .collect()
}

/// The dev phone's page and endpoints (`MOMENTLINE_DEV_PHONE`); without them, 404.
pub fn configure_dev_phone(cfg: &mut web::ServiceConfig) {
    dev_phone::configure(cfg);
}

/// A path with its routes; any other method is answered 405 in JSON, with the `Allow`
/// header RFC 9110 asks for.
fn resource(path: &str, endpoints: Vec<Endpoint>) -> actix_web::Resource {
    let methods: Vec<Method> = endpoints.iter().map(|(method, _)| method.clone()).collect();
    let allow = allow_header(&methods);
    endpoints
        .into_iter()
        .fold(web::resource(path), |resource, (_, route)| {
            resource.route(route)
        })
        .default_service(web::to(move || method_not_allowed(allow.clone())))
}

/// The `Allow` value of a path's methods: HEAD beside GET, since `on` answers it too.
fn allow_header(methods: &[Method]) -> String {
    let mut allowed: Vec<&str> = Vec::new();
    for method in methods {
        allowed.push(method.as_str());
        if *method == Method::GET {
            allowed.push(Method::HEAD.as_str());
        }
    }
    allowed.join(", ")
}

/// Any other path: a 404 page for a browser, JSON for everyone else.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    html::not_found(&req, "Not found", "There is no page at this address.")
}

async fn method_not_allowed(allow: String) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow })
}

/// Every error a handler answers with: JSON `{"error": code, "message": …}` and the right
/// status. Causes go to the log, never to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A provider webhook whose signature or credentials did not check out.
    #[error("Unauthorized")]
    Unauthorized,
    #[error("Missing API key: send your key in the x-api-key header")]
    MissingKey,
    #[error(
        "Malformed API key: a key is art_sk_ followed by 64 lowercase hex characters; check \
         that the x-api-key header holds the whole key"
    )]
    MalformedKey,
    #[error("Unknown API key: no artist has this key; check that it was copied whole")]
    UnknownKey,
    #[error("This API key was revoked; ask the operator for a new one")]
    RevokedKey,
    #[error("{0}")]
    BadRequest(String),
    /// The body is not the JSON object asked for.
    #[error("{0}")]
    InvalidBody(String),
    /// One field of the body is missing or not what it must be.
    #[error("{message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("{message}")]
    WrongCode { message: String, tries_left: u32 },
    #[error("{0}")]
    CountryNotAllowed(String),
    /// The dev phone's texts come from its own page only.
    #[error("{0}")]
    CrossSite(String),
    #[error("{0}")]
    NotFound(String),
    /// `allow` lists the methods the path takes.
    #[error("Method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("Request body too large")]
    PayloadTooLarge,
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    BadGateway(String),
    #[error("Busy; try again shortly")]
    Unavailable { retry_after: u64 },
    #[error("{public}")]
    Internal {
        public: &'static str,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

crate::domain::text_enum!(
    /// What went wrong, for programs: the `error` of every error body.
    ErrorCode {
        Unauthorized => "unauthorized",
        MissingKey => "missing_key",
        MalformedKey => "malformed_key",
        UnknownKey => "unknown_key",
        RevokedKey => "revoked_key",
        BadRequest => "bad_request",
        InvalidBody => "invalid_body",
        InvalidField => "invalid_field",
        WrongCode => "wrong_code",
        CountryNotAllowed => "country_not_allowed",
        CrossSite => "cross_site",
        NotFound => "not_found",
        MethodNotAllowed => "method_not_allowed",
        Conflict => "conflict",
        CodeExpired => "code_expired",
        PayloadTooLarge => "payload_too_large",
        RateLimited => "rate_limited",
        ProviderUnavailable => "provider_unavailable",
        Busy => "busy",
        Internal => "internal",
    }
);

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// What went wrong and what to do about it, for people.
    pub message: String,
    /// The request body field at fault (`invalid_field`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// Seconds to wait before trying again (`rate_limited`); the `Retry-After` header says
    /// the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Tries left for this code (`wrong_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u32>,
}

impl ApiError {
    /// A failure the client cannot fix; `public` is all it is told.
    pub fn internal(
        public: &'static str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Self {
        move |cause| {
            tracing::error!(error = %error_chain(cause.as_ref()), "{public}");
            Self::Internal { public, cause }
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::MissingKey => ErrorCode::MissingKey,
            Self::MalformedKey => ErrorCode::MalformedKey,
            Self::UnknownKey => ErrorCode::UnknownKey,
            Self::RevokedKey => ErrorCode::RevokedKey,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::InvalidBody(_) => ErrorCode::InvalidBody,
            Self::InvalidField { .. } => ErrorCode::InvalidField,
            Self::WrongCode { .. } => ErrorCode::WrongCode,
            Self::CountryNotAllowed(_) => ErrorCode::CountryNotAllowed,
            Self::CrossSite(_) => ErrorCode::CrossSite,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Gone(_) => ErrorCode::CodeExpired,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::TooManyRequests { .. } => ErrorCode::RateLimited,
            Self::BadGateway(_) => ErrorCode::ProviderUnavailable,
            Self::Unavailable { .. } => ErrorCode::Busy,
            Self::Internal { .. } => ErrorCode::Internal,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code(),
            message: self.to_string(),
            field: match self {
                Self::InvalidField { field, .. } => Some(field),
                _ => None,
            },
            retry_after: match self {
                Self::TooManyRequests { retry_after, .. } => Some(*retry_after),
                _ => None,
            },
            tries_left: match self {
                Self::WrongCode { tries_left, .. } => Some(*tries_left),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized
            | Self::MissingKey
            | Self::MalformedKey
            | Self::UnknownKey
            | Self::RevokedKey => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_)
            | Self::InvalidBody(_)
            | Self::InvalidField { .. }
            | Self::WrongCode { .. } => StatusCode::BAD_REQUEST,
            Self::CountryNotAllowed(_) | Self::CrossSite(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Self::TooManyRequests { retry_after, .. } | Self::Unavailable { retry_after } = self
        {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
        }
        if let Self::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        response.json(self.body())
    }
}

/// Runs blocking database work off the async threads.
pub async fn blocking<T, E>(
    public: &'static str,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    match web::block(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiError::internal(public)(e.into())),
        Err(e) => Err(ApiError::internal(public)(Box::new(e))),
    }
}

/// Runs `read` on one of the read connections, off the async threads; a failure is a 500
/// saying only `public`.
pub async fn read<T: Send + 'static>(
    state: &AppState,
    public: &'static str,
    read: impl FnOnce(&Conn) -> Result<T, DbError> + Send + 'static,
) -> Result<T, ApiError> {
    let pool = state.pool.clone();
    blocking(public, move || pool.with(read)).await
}

/// The 401 of every `/api/` route, as the OpenAPI document says it.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 401,
    description = "No key, a malformed, unknown or revoked key"
)]
pub struct KeyRefused(pub ErrorBody);

/// The 503 of an API write while the write queue is full (`write_failed`), as the OpenAPI
/// document says it.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 503,
    description = "Busy; try again after `Retry-After` seconds",
    headers(("Retry-After" = u64, description = "Seconds to wait"))
)]
pub struct Busy(pub ErrorBody);

/// A write's failure as an answer: a full write queue is 503 with `Retry-After` (providers
/// redeliver, clients come back), and so is a database that cannot take the write now (full,
/// read-only, unreachable: a retry may succeed); anything else is a 500 saying only `public`.
pub fn write_failed(public: &'static str) -> impl FnOnce(WriteError) -> ApiError {
    move |e| match e {
        WriteError::Busy => {
            // Said once an outage by the store; each request only at debug.
            tracing::debug!("{public}: the write queue is full; answered 503");
            ApiError::Unavailable {
                retry_after: BUSY_RETRY_AFTER_SECS,
            }
        }
        ref e if e.may_pass() => {
            tracing::debug!(
                "{public}: the database cannot take the write now ({}); answered 503",
                error_chain(e)
            );
            ApiError::Unavailable {
                retry_after: DATABASE_RETRY_AFTER_SECS,
            }
        }
        other => ApiError::internal(public)(Box::new(other)),
    }
}

/// Reads a whole body up to `limit` bytes.
pub async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(ApiError::BadRequest(format!(
            "Could not read request body: {e}"
        ))),
        Err(_) => Err(ApiError::PayloadTooLarge),
    }
}

/// A field of a request body, and what it must be, for messages that name it.
pub struct Field {
    pub name: &'static str,
    pub expected: &'static str,
}

pub const PHONE_NUMBER: Field = Field {
    name: "phone_number",
    expected: "a phone number in E.164 form (a + then the country code and number, no spaces), \
               such as \"+14155552671\"",
};

/// Parses a JSON body into `T`. A body that is not JSON, or not an object, is `invalid_body`
/// with `example` shown; a field that is missing or of the wrong type is `invalid_field`,
/// named with what it must be (from `fields`).
pub fn parse_json<T: DeserializeOwned>(
    body: &[u8],
    example: &str,
    fields: &[&Field],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidBody(format!(
            "The request body is empty; send JSON like {example}"
        )));
    }
    let not_json = |e: &serde_json::Error| {
        ApiError::InvalidBody(format!(
            "The request body is not valid JSON ({} at line {}, column {}); send JSON like \
             {example}",
            without_position(e),
            e.line(),
            e.column()
        ))
    };
    // A struct would also be read from an array; only an object is asked for.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let got = match serde_json::from_slice::<serde_json::Value>(body) {
            Err(e) => return Err(not_json(&e)),
            Ok(serde_json::Value::Array(_)) => "an array",
            Ok(serde_json::Value::String(_)) => "a string",
            Ok(serde_json::Value::Number(_)) => "a number",
            Ok(serde_json::Value::Bool(_)) => "a boolean",
            Ok(_) => "null",
        };
        return Err(ApiError::InvalidBody(format!(
            "The request body must be a JSON object like {example}; got {got}"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut de);
    let e = match parsed {
        Ok(value) => return de.end().map(|()| value).map_err(|e| not_json(&e)),
        Err(e) => e,
    };
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.classify() != serde_json::error::Category::Data {
        return Err(not_json(&inner));
    }
    let detail = without_position(&inner);
    let known = |name: &str| fields.iter().find(|f| f.name == name);
    if let Some(missing) = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        if let Some(field) = known(missing) {
            return Err(ApiError::InvalidField {
                field: field.name,
                message: format!("{} is missing: it must be {}", field.name, field.expected),
            });
        }
    }
    // "invalid type: integer `3`, expected …" and "unknown variant `sms`, expected …" say
    // what was sent before ", expected".
    let got = detail
        .strip_prefix("invalid type: ")
        .or_else(|| detail.strip_prefix("unknown variant "))
        .and_then(|rest| rest.split(", expected").next())
        .unwrap_or(&detail);
    match known(&path) {
        Some(field) => Err(ApiError::InvalidField {
            field: field.name,
            message: format!("{} must be {}; got {got}", field.name, field.expected),
        }),
        None => Err(ApiError::InvalidBody(format!(
            "The request body must be a JSON object like {example}; got {detail}"
        ))),
    }
}

/// serde_json's message without its " at line 1 column 2" (given separately where it helps).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_owned(),
        None => text,
    }
}

/// `offset` and `limit` of a listing, in the query string. The bounds the document states
/// are the ones `parse` enforces.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many to skip (default 0)
    #[param(minimum = 0, maximum = 2147483647)]
    offset: Option<u32>,
    /// How many at most (default 50)
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

pub const MAX_PAGE: u32 = 1000;
/// The largest offset: the largest 32-bit signed integer, the `int32` a client generated
/// from the document holds.
pub const MAX_OFFSET: u32 = i32::MAX as u32;

impl Page {
    pub fn parse(query: &str) -> Result<(u32, u32), ApiError> {
        let page: Page = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::BadRequest("offset and limit must be whole numbers".into()))?;
        let limit = page.limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        let offset = page.offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(ApiError::BadRequest(format!(
                "offset must be between 0 and {MAX_OFFSET}"
            )));
        }
        Ok((offset, limit))
    }
}
