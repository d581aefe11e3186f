//! `/api/moments` for the artist, and the public page of each Moment.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use serde::Serialize;
use utoipa::ToSchema;

use super::{blocking, conn, ApiError, AppState, Authenticated, ErrorBody, Page};
use crate::db::moments::{self, MomentView};
use crate::db::DbError;
use crate::domain::moment::MediaKind;
use crate::domain::MediaState;

/// A page of the artist's Moments, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MomentPage {
    pub moments: Vec<MomentView>,
    pub offset: u32,
    pub limit: u32,
}

#[utoipa::path(
    get,
    path = "/api/moments",
    tag = "moments",
    summary = "The artist's Moments, newest first",
    params(
        ("offset" = Option<u32>, Query, description = "How many to skip (default 0)"),
        ("limit" = Option<u32>, Query, description = "How many at most, 1 to 1000 (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of Moments", body = MomentPage),
        (status = 400, description = "offset or limit is not a whole number in range", body = ErrorBody),
        (status = 401, description = "No key, a malformed, unknown or revoked key", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    Authenticated(artist): Authenticated,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (offset, limit) = Page::parse(req.query_string())?;
    let app = state.clone();
    let found = blocking("Failed to list moments", move || {
        let public_url = &app.settings.public_url;
        moments::for_artist(&*conn(&app.pool)?, artist.id, offset, limit, public_url)
            .map_err(DbError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(MomentPage {
        moments: found,
        offset,
        limit,
    }))
}

#[utoipa::path(
    get,
    path = "/moments/{id}",
    tag = "public",
    summary = "A created Moment's public page (HTML)",
    description = "momentline's own page for a Moment, when no host is set: its media, link \
        and description. Public; no key.",
    params(("id" = i64, Path, description = "The Moment's id")),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 404, description = "No such created Moment", body = ErrorBody),
    )
)]
pub async fn page(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("Moment not found".into());
    let id: i64 = path.parse().map_err(|_| not_found())?;
    let app = state.clone();
    let moment = blocking("Failed to read moment", move || {
        moments::created(&*conn(&app.pool)?, id, &app.settings.public_url).map_err(DbError::from)
    })
    .await?
    .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(render(&moment)))
}

/// Only http(s) links are ever put in an attribute.
fn safe_url(url: &str) -> Option<&str> {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

fn render(m: &MomentView) -> String {
    let mut body = String::new();
    if let Some(media) = &m.media {
        match media.url.as_deref().and_then(safe_url) {
            Some(url) => {
                let url = attr(url);
                body.push_str(&match MediaKind::of(&media.content_type) {
                    MediaKind::Image => {
                        format!("<img src=\"{url}\" alt=\"{}\">", attr(&m.title))
                    }
                    MediaKind::Audio => format!("<audio controls src=\"{url}\"></audio>"),
                    _ => format!("<p><a href=\"{url}\">Open the file</a></p>"),
                });
            }
            None if media.state == MediaState::Fetching => {
                body.push_str("<p class=\"meta\">The media is on its way; reload in a moment.</p>");
            }
            None => body.push_str("<p class=\"meta\">The media could not be kept.</p>"),
        }
    }
    if let Some(link) = m.link.as_deref().and_then(safe_url) {
        body.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            attr(link),
            text(link)
        ));
    }
    if !m.description.is_empty() {
        body.push_str(&format!(
            "<p class=\"description\">{}</p>",
            text(&m.description).replace('\n', "<br>")
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} by {artist}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;\
         padding:0 1rem;line-height:1.5}}img,audio{{max-width:100%}}\
         .meta{{color:#555}}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n\
         <p class=\"meta\">by {artist} &middot; {price} USDC</p>\n{body}\n</main>\n</body>\n</html>\n",
        title = text(&m.title),
        artist = text(&m.artist),
        price = text(&m.price),
    )
}
