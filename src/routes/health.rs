//! `GET /healthz`: 200 when the database answers.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{blocking, ApiError, AppState, ErrorBody};
use crate::db::{params, DbError};

/// The database answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "public",
    summary = "Whether the service and its database answer",
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 500, description = "The database does not answer", body = ErrorBody),
    )
)]
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    blocking("Database unavailable", move || -> Result<i64, DbError> {
        pool.with(|c| c.query_value("SELECT 1", params![]))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
    }))
}
