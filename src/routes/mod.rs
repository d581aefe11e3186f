//! The HTTP surface: thin handlers that parse, call the domain, persist and answer.

mod auth;
mod dev_phone;
mod health;
mod html;
mod media;
mod messages;
mod metrics;
mod moment_page;
mod moments;
mod phones;
mod webhooks;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{guard, web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::config::Settings;
use crate::connect::ConnectSettings;
use crate::db::{DbError, Pool};
use crate::inbound::ReceiveSettings;
use crate::jobs::Runner;
use crate::metrics::Metrics;
use crate::store::{Store, WriteError};
use crate::telemetry::error_chain;

pub use auth::Authenticated;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    /// The store's read pool.
    pub pool: Pool,
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

/// The largest API request body.
const API_BODY_LIMIT: usize = 16 * 1024;
/// The largest webhook body (an MMS notification with many media items stays far below).
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, post};
    cfg.service(resource("/healthz", [get().to(health::healthz)]))
        .service(resource("/metrics", [get().to(metrics::metrics)]))
        .service(resource(
            "/api/phones",
            [
                post().to(phones::connect),
                delete().to(phones::disconnect),
                get().to(phones::list),
            ],
        ))
        .service(resource("/api/phones/verify", [post().to(phones::verify)]))
        .service(resource("/api/messages", [get().to(messages::list)]))
        .service(resource("/api/messages/{id}", [get().to(messages::one)]))
        .service(resource("/api/moments", [get().to(moments::list)]))
        // Some link-preview fetchers ask with HEAD first.
        .service(resource("/moments/{id}", [get().to(moments::page)]))
        .service(resource("/media/{file}", [get().to(media::file)]))
        .service(resource("/webhooks/telnyx", [post().to(webhooks::telnyx)]))
        .service(resource("/webhooks/twilio", [post().to(webhooks::twilio)]))
        .service(resource(
            "/webhooks/twilio/status",
            [post().to(webhooks::twilio_status)],
        ))
        .service(resource(
            "/webhooks/vonage",
            [get().to(webhooks::vonage), post().to(webhooks::vonage)],
        ));
}

/// A route for GET and HEAD: actix-web does not answer HEAD from GET routes by itself. Its
/// answer to HEAD carries the GET's status and headers, and no body.
fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The dev phone's page and endpoints (`MOMENTLINE_DEV_PHONE`); without them, 404.
pub fn configure_dev_phone(cfg: &mut web::ServiceConfig) {
    dev_phone::configure(cfg);
}

/// A path with its routes; any other method is answered 405 in JSON.
fn resource<const N: usize>(path: &str, routes: [actix_web::Route; N]) -> actix_web::Resource {
    routes
        .into_iter()
        .fold(web::resource(path), |resource, route| resource.route(route))
        .default_service(web::to(method_not_allowed))
}

/// Any other path: a 404 page for a browser, JSON for everyone else.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    html::not_found(&req, "Not found", "There is no page at this address.")
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Every error a handler answers with: JSON `{"message": …}` and the right status. Causes go
/// to the log, never to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("Request body too large")]
    PayloadTooLarge,
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("Busy; try again shortly")]
    Unavailable { retry_after: u64 },
    #[error("{public}")]
    Internal {
        public: &'static str,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
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
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
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
        match self {
            Self::TooManyRequests { retry_after, .. } => {
                response.json(json!({ "message": self.to_string(), "retry_after": retry_after }))
            }
            _ => response.json(json!({ "message": self.to_string() })),
        }
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

/// A write's failure as an answer: a full write queue is 503 with `Retry-After` (providers
/// redeliver, clients come back); anything else is a 500 saying only `public`.
pub fn write_failed(public: &'static str) -> impl FnOnce(WriteError) -> ApiError {
    move |e| match e {
        WriteError::Busy => {
            tracing::warn!("{public}: the write queue is full; answered 503");
            ApiError::Unavailable {
                retry_after: BUSY_RETRY_AFTER_SECS,
            }
        }
        other => ApiError::internal(public)(Box::new(other)),
    }
}

/// A pooled connection, as a boxed error for `blocking`.
pub fn conn(
    pool: &Pool,
) -> Result<r2d2::PooledConnection<r2d2_sqlite::SqliteConnectionManager>, DbError> {
    Ok(pool.get()?)
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

/// `offset` and `limit` of a listing.
#[derive(Debug, serde::Deserialize)]
pub struct Page {
    offset: Option<u32>,
    limit: Option<u32>,
}

pub const MAX_PAGE: u32 = 1000;

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
        Ok((page.offset.unwrap_or(0), limit))
    }
}
