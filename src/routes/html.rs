//! Pages for browsers: telling a browser from an API client, and the 404 page a browser gets.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::ApiError;

/// Whether the request's `Accept` ranks `text/html` above `application/json`: a browser's
/// navigation does (`text/html,…,*/*;q=0.8`); curl (`*/*`), API clients and a request with
/// no `Accept` do not, and keep getting JSON.
pub fn prefers_html(req: &HttpRequest) -> bool {
    let accept: Vec<&str> = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .collect();
    accept_prefers_html(&accept.join(","))
}

fn accept_prefers_html(accept: &str) -> bool {
    let html = quality(accept, "text", "html");
    html > 0.0 && html > quality(accept, "application", "json")
}

/// The quality `accept` gives `kind/sub`: that of its most specific matching range, 0 if none
/// matches (RFC 9110 §12.5.1).
fn quality(accept: &str, kind: &str, sub: &str) -> f32 {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((range_kind, range_sub)) = parts.next().and_then(|r| r.trim().split_once('/'))
        else {
            continue;
        };
        let specificity = match (range_kind.trim(), range_sub.trim()) {
            (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(sub) => 2,
            (k, "*") if k.eq_ignore_ascii_case(kind) => 1,
            ("*", "*") => 0,
            _ => continue,
        };
        // A `q` that is not a number makes the range mean nothing.
        let q = parts
            .filter_map(|p| p.trim().split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(0.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage<'a> {
    heading: &'a str,
    explanation: &'a str,
}

/// 404: a small HTML page for a browser, `{"message": message}` for everyone else.
pub fn not_found(req: &HttpRequest, message: &str, explanation: &str) -> HttpResponse {
    let json = || ApiError::NotFound(message.to_owned()).error_response();
    if !prefers_html(req) {
        return json();
    }
    let page = NotFoundPage {
        heading: message,
        explanation,
    };
    match page.render() {
        Ok(body) => HttpResponse::build(StatusCode::NOT_FOUND)
            .content_type(ContentType::html())
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "Failed to render the 404 page; answered JSON");
            json()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::accept_prefers_html;

    #[test]
    fn browsers_prefer_html_and_api_clients_do_not() {
        for browser in [
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "TEXT/HTML",
            "text/*, application/json;q=0.5",
            "application/json;q=0.2, text/html;q=0.3",
        ] {
            assert!(accept_prefers_html(browser), "{browser}");
        }
        for client in [
            "",
            "*/*",
            "application/json",
            "application/json, text/html",
            "text/html;q=0.5, application/json",
            "text/html;q=0",
            "text/html;q=abc",
            "text/html;q=2",
            "image/png",
            "garbage",
        ] {
            assert!(!accept_prefers_html(client), "{client:?}");
        }
    }

    #[test]
    fn the_most_specific_range_sets_the_quality() {
        assert!(!accept_prefers_html("text/html;q=0, */*"));
        assert!(accept_prefers_html("application/*;q=0.1, text/*;q=0.2"));
        assert!(!accept_prefers_html("text/*;q=0.9, application/json"));
    }
}
