//! `GET /`: what this server serves, as links: a page for a browser, JSON for everyone else.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Serialize;
use utoipa::ToSchema;

use super::{html, ApiError, AppState};
use crate::config::Settings;

/// One thing the server serves.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    /// Its path on this server, such as `/openapi.json`.
    pub href: &'static str,
    /// What it is, for people.
    pub title: &'static str,
}

/// The index: the service, its version, and its links.
#[derive(Debug, Serialize, ToSchema)]
pub struct Index {
    /// Always `momentline`.
    pub service: &'static str,
    pub version: &'static str,
    /// The dev phone (when `MOMENTLINE_DEV_PHONE` is on), the OpenAPI document, the metrics
    /// (unless `MOMENTLINE_METRICS=0`), the health check and the readiness check, in that
    /// order.
    pub links: Vec<Link>,
}

/// The links the index lists, and start-up logs, for these settings.
pub fn links(settings: &Settings) -> Vec<Link> {
    let mut links = Vec::new();
    if settings.dev_phone {
        links.push(Link {
            href: "/dev/phone",
            title: "The dev phone: play an artist's phone in the browser (development only)",
        });
    }
    links.push(Link {
        href: "/openapi.json",
        title: "The OpenAPI 3.1 document of the HTTP API",
    });
    if settings.metrics {
        links.push(Link {
            href: "/metrics",
            title: "Prometheus metrics",
        });
    }
    links.push(Link {
        href: "/healthz",
        title: "Health: 200 while the database answers",
    });
    links.push(Link {
        href: "/readyz",
        title: "Readiness: 200 while this instance would take a webhook",
    });
    links
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    index: &'a Index,
}

#[utoipa::path(
    get,
    path = "/",
    tag = "public",
    summary = "What this server serves, as links",
    description = "JSON for API clients; an HTML page for a browser (an `Accept` ranking \
        `text/html` above `application/json`). Public; no key.",
    responses(
        (status = 200, description = "The links", content(
            (Index = "application/json"),
            (String = "text/html"),
        )),
        (status = 500, description = "The page could not be made", body = super::ErrorBody),
    )
)]
pub async fn index(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let index = Index {
        service: "momentline",
        version: env!("CARGO_PKG_VERSION"),
        links: links(&state.settings),
    };
    if !html::prefers_html(&req) {
        return Ok(HttpResponse::Ok().json(index));
    }
    let page = IndexPage { index: &index }
        .render()
        .map_err(|e| ApiError::internal("Failed to show the index")(Box::new(e)))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(page))
}
