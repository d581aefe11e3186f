//! `GET /metrics`: the Prometheus text exposition, unless `MOMENTLINE_METRICS=0`.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use chrono::Utc;

use super::{blocking, conn, ApiError, AppState};
use crate::metrics::{content_type, RenderError};

pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.settings.metrics {
        return Err(ApiError::NotFound("Not found".into()));
    }
    let (pool, metrics) = (state.pool.clone(), Arc::clone(&state.metrics));
    let text = blocking(
        "Could not gather the metrics",
        move || -> Result<String, RenderError> { metrics.render(&*conn(&pool)?, Utc::now()) },
    )
    .await?;
    Ok(HttpResponse::Ok().content_type(content_type()).body(text))
}
