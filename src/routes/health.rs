//! `GET /healthz`: 200 when the database answers.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{read, ApiError, AppState, ErrorBody};
use crate::db::params;

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
    read(&state, "Database unavailable", |c| {
        c.query_value::<_, i64>("SELECT 1", params![])
    })
    .await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
    }))
}
