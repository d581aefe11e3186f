//! `GET /healthz`: 200 when the database answers.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::{blocking, conn, ApiError, AppState};
use crate::db::DbError;

pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    blocking("Database unavailable", move || -> Result<i64, DbError> {
        Ok(conn(&pool)?.query_row("SELECT 1", [], |r| r.get(0))?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok" })))
}
