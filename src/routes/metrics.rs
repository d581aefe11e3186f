//! `GET /metrics`: the Prometheus text exposition, unless `MOMENTLINE_METRICS=0`.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono::Utc;

use super::{blocking, ApiError, AppState, ErrorBody};
use crate::metrics::{content_type, RenderError};

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "public",
    summary = "Prometheus metrics (text exposition format)",
    description = "Meant to be scraped on a private network; `MOMENTLINE_METRICS=0` turns it off.",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain", body = String),
        (status = 404, description = "Metrics are off", body = ErrorBody),
    )
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.settings.metrics {
        return Err(ApiError::NotFound("Not found".into()));
    }
    let (pool, metrics) = (state.pool.clone(), Arc::clone(&state.metrics));
    let text = blocking(
        "Could not gather the metrics",
        move || -> Result<String, RenderError> {
            pool.with(|c| Ok(metrics.render(c, Utc::now())))?
        },
    )
    .await?;
    Ok(HttpResponse::Ok().content_type(content_type()).body(text))
}
