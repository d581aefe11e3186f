//! A request id on every request: the caller's own `x-request-id` when it is sane, a new one
//! otherwise. Everything the request does runs in a `request` span that carries it, its
//! writes and the jobs it queues carry it on, and the answer echoes it in `x-request-id`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::telemetry::RequestId;

const HEADER: HeaderName = HeaderName::from_static("x-request-id");

pub async fn tag(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::from_caller)
        .unwrap_or_default();
    // The path without its query: Vonage puts phone numbers in query strings.
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let mut response = RequestId::scope(Some(id.clone()), next.call(req).instrument(span)).await?;
    // A sane id is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(HEADER, value);
    }
    Ok(response)
}
