//! `GET /`: the links to what this server serves, as JSON or as a page for a browser.

use serde_json::Value;

use crate::helpers::*;

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn hrefs(app: &TestApp) -> Vec<String> {
    let response = app.get_keyless("/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_of(&response, "content-type"),
        Some("application/json")
    );
    let index: Value = response.json().await.expect("json");
    assert_eq!(index["service"], "momentline");
    index["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|link| link["href"].as_str().expect("an href").to_owned())
        .collect()
}

#[tokio::test]
async fn the_index_links_the_document_the_metrics_and_the_health_check() {
    let app = spawn_app().await;
    assert_eq!(
        hrefs(&app).await,
        ["/openapi.json", "/metrics", "/healthz", "/readyz"]
    );
    let index = app
        .get_keyless("/")
        .await
        .json::<Value>()
        .await
        .expect("json");
    crate::openapi::conforms(&crate::openapi::document(&app).await, "Index", &index);
}

#[tokio::test]
async fn the_index_links_the_dev_phone_when_it_is_on_and_the_metrics_only_when_they_are() {
    let app = spawn_app_with_env(
        &[("MOMENTLINE_DEV_PHONE", "1"), ("MOMENTLINE_METRICS", "0")],
        |_| {},
    )
    .await;
    let links = hrefs(&app).await;
    assert_eq!(
        links,
        ["/dev/phone", "/openapi.json", "/healthz", "/readyz"]
    );
    // Each link answers.
    for href in links {
        let status = app.get_keyless(&href).await.status();
        assert_eq!(status, 200, "{href}");
    }
}

#[tokio::test]
async fn a_browser_gets_the_index_as_a_page_of_links() {
    let app = spawn_app_with_env(&[("MOMENTLINE_DEV_PHONE", "1")], |_| {}).await;
    let response = send(app.http.get(app.url("/")).header("accept", BROWSER)).await;
    assert_eq!(response.status(), 200);
    assert!(
        header_of(&response, "content-type").is_some_and(|v| v.starts_with("text/html")),
        "{response:?}"
    );
    let page = response.text().await.expect("text");
    for href in [
        "/dev/phone",
        "/openapi.json",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            page.contains(&format!("<a href=\"{href}\">")),
            "{href}: {page}"
        );
    }
    let head = send(app.http.head(app.url("/"))).await;
    assert_eq!(head.status(), 200);
}
