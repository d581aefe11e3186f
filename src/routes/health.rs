//! `GET /healthz`: whether the database answers; `GET /readyz`: whether this instance would
//! take a webhook now (the database answers, and a write can be queued and committed). Each
//! check has a short deadline, so a database that hangs reads as down, not as a hung probe;
//! a load balancer drains an instance that answers `503`.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::{read, AppState};
use crate::db::params;

/// The most a check waits for the database.
const DEADLINE: Duration = Duration::from_secs(2);

/// What a check found.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable`.
    pub status: &'static str,
    /// Whether the database answered a read in time.
    pub database: bool,
    /// Readiness only: whether a write could be queued and committed in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes: Option<bool>,
    /// Readiness only: writes waiting for the writer, and how many may wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_writes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_queue: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "public",
    operation_id = "healthz",
    summary = "Whether the service and its database answer",
    description = "A read of the database, within 2 s. Public; no key; `HEAD` too.",
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 503, description = "The database does not answer in time", body = Health,
            headers(("Retry-After" = u64, description = "Seconds before asking again"))),
    )
)]
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let database = database_answers(&state).await;
    answer(Health {
        status: if database { "ok" } else { "unavailable" },
        database,
        writes: None,
        queued_writes: None,
        write_queue: None,
    })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "public",
    operation_id = "readyz",
    summary = "Whether this instance would take a webhook now",
    description = "The database answers a read, the write queue has room, and an empty write \
        is queued and committed, each within 2 s. Public; no key; `HEAD` too.",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready: the database, or the writer, is down or full", body = Health,
            headers(("Retry-After" = u64, description = "Seconds before asking again"))),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = database_answers(&state).await;
    let queued = state.store.queued_writes();
    let room = queued < state.settings.writer.queue;
    let writes = database && room && write_commits(&state).await;
    answer(Health {
        status: if writes { "ok" } else { "unavailable" },
        database,
        writes: Some(writes),
        queued_writes: Some(queued),
        write_queue: Some(state.settings.writer.queue),
    })
}

/// `200`, or `503` with `Retry-After` when something is down.
fn answer(health: Health) -> HttpResponse {
    if health.status == "ok" {
        return HttpResponse::Ok().json(health);
    }
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "1"))
        .json(health)
}

async fn database_answers(state: &AppState) -> bool {
    let asked = read(state, "Database unavailable", |c| {
        c.query_value::<_, i64>("SELECT 1", params![])
    });
    matches!(tokio::time::timeout(DEADLINE, asked).await, Ok(Ok(1)))
}

async fn write_commits(state: &AppState) -> bool {
    let written = state
        .store
        .probe(|c| c.query_value::<_, i64>("SELECT 1", params![]).map(|_| ()));
    matches!(tokio::time::timeout(DEADLINE, written).await, Ok(Ok(())))
}
