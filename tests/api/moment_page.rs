//! A Moment's public page, as an artist shares it: the Moment once, its artist, date and price,
//! link-preview tags with absolute URLs, everything escaped, and a 404 a browser can read.

use serde_json::Value;

use crate::helpers::*;
use crate::media::{hash_name, serve, text_mms, PNG};

/// Texts `text`, posts the Moment it makes, and answers it as the API shows it.
async fn posted(app: &TestApp, text: &str) -> Value {
    app.text_and_drain(PHONE, text).await;
    app.newest_moment().await
}

fn set_created_at(app: &TestApp, id: i64, at: &str) {
    app.execute(
        "UPDATE moments SET created_at = ?2 WHERE id = ?1",
        params![id, at],
    );
}

fn id_of(moment: &Value) -> i64 {
    moment["id"].as_i64().expect("id")
}

/// What a reader sees: the page without its `<head>`.
fn body_of(html: &str) -> &str {
    let start = html.find("<body>").expect("a body");
    let end = html.rfind("</body>").expect("the body's end");
    &html[start..end]
}

/// The `content` of the `<meta>` whose `attribute` (`property` or `name`) is `key`, as written.
fn meta<'a>(html: &'a str, attribute: &str, key: &str) -> Option<&'a str> {
    let tag = format!("<meta {attribute}=\"{key}\" content=\"");
    let start = html.find(&tag)? + tag.len();
    let end = start + html[start..].find('"')?;
    Some(&html[start..end])
}

fn og<'a>(html: &'a str, key: &str) -> Option<&'a str> {
    meta(html, "property", &format!("og:{key}"))
}

fn twitter<'a>(html: &'a str, key: &str) -> Option<&'a str> {
    meta(html, "name", &format!("twitter:{key}"))
}

/// An attribute value as a browser reads it (the page writes numeric references).
fn unescape(value: &str) -> String {
    value
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
}

async fn page_as(app: &TestApp, path: &str, accept: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("accept", accept)
        .send()
        .await
        .expect("request")
}

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn the_page_shows_the_title_once_a_description_that_adds_something_the_artist_date_and_price()
{
    let app = spawn_verified_app().await;
    let m = posted(&app, "title: Night swim\nThe lake at 2am\nprice: 5").await;
    set_created_at(&app, id_of(&m), "2026-03-05T22:10:00.000Z");
    let html = app.page(&format!("/moments/{}", id_of(&m))).await;
    let body = body_of(&html);
    assert_eq!(body.matches("Night swim").count(), 1, "{body}");
    assert!(body.contains("<h1>Night swim</h1>"), "{body}");
    assert_eq!(body.matches("The lake at 2am").count(), 1, "{body}");
    assert!(body.contains("by Sweetman"), "{body}");
    assert!(
        body.contains("<time datetime=\"2026-03-05T22:10:00.000Z\">5 March 2026</time>"),
        "{body}"
    );
    assert!(body.contains("Collect for 5 USDC"), "{body}");
    assert!(
        html.contains("<title>Night swim by Sweetman</title>"),
        "{html}"
    );
    assert_eq!(meta(&html, "name", "description"), Some("The lake at 2am"));
}

#[tokio::test]
async fn a_description_that_only_repeats_the_title_is_not_shown_and_free_says_so() {
    let app = spawn_verified_app().await;
    let same = posted(&app, "Night swim\nprice: free").await;
    assert_eq!(
        (&same["title"], &same["description"]),
        (&"Night swim".into(), &"Night swim".into())
    );
    set_created_at(&app, id_of(&same), "2026-12-31T23:59:59.999Z");
    let html = app.page(&format!("/moments/{}", id_of(&same))).await;
    let body = body_of(&html);
    assert_eq!(body.matches("Night swim").count(), 1, "{body}");
    assert!(!body.contains("class=\"description\""), "{body}");
    assert!(body.contains("Free to collect"), "{body}");
    assert!(!body.contains("USDC"), "{body}");
    assert_eq!(
        meta(&html, "name", "description"),
        Some("A Moment by Sweetman, 31 December 2026.")
    );

    // The first line is the title: the rest is the description.
    let more = posted(&app, "Night swim.\nThe lake at 2am\nprice: 2.5").await;
    let html = app.page(&format!("/moments/{}", id_of(&more))).await;
    let body = body_of(&html);
    assert_eq!(body.matches("Night swim").count(), 1, "{body}");
    assert!(
        body.contains("<p class=\"description\">The lake at 2am</p>"),
        "{body}"
    );
    assert!(body.contains("Collect for 2.5 USDC"), "{body}");
}

#[tokio::test]
async fn a_text_moment_has_preview_tags_with_its_absolute_url_and_no_image() {
    let app = spawn_verified_app().await;
    let m = posted(&app, "title: Night swim\nThe lake at 2am").await;
    let html = app.page(&format!("/moments/{}", id_of(&m))).await;
    let url = format!("{PUBLIC_URL}/moments/{}", id_of(&m));
    assert_eq!(m["url"], url.as_str());
    assert_eq!(og(&html, "title"), Some("Night swim"));
    assert_eq!(og(&html, "description"), Some("The lake at 2am"));
    assert_eq!(og(&html, "type"), Some("article"));
    assert_eq!(og(&html, "url"), Some(url.as_str()));
    assert_eq!(og(&html, "site_name"), Some("momentline"));
    assert_eq!(og(&html, "image"), None, "{html}");
    assert_eq!(twitter(&html, "card"), Some("summary"));
    assert_eq!(twitter(&html, "title"), Some("Night swim"));
    assert_eq!(twitter(&html, "description"), Some("The lake at 2am"));
    assert_eq!(twitter(&html, "image"), None, "{html}");
    assert!(html.contains(&format!("<link rel=\"canonical\" href=\"{url}\">")));
    let head = app
        .http
        .head(app.url(&format!("/moments/{}", id_of(&m))))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(
        head.status(),
        200,
        "link-preview fetchers may ask with HEAD"
    );
    assert!(header_of(&head, "content-type").is_some_and(|v| v.starts_with("text/html")));
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(
        !html.contains("<link rel=\"stylesheet\""),
        "no external CSS"
    );
}

#[tokio::test]
async fn an_image_moment_previews_its_kept_image_by_absolute_url() {
    let app = spawn_verified_app().await;
    serve(&app, "/media/b.png", "image/png", PNG).await;
    text_mms(&app, &[("/media/b.png", "image/png")]).await;
    app.drain_media().await;
    app.drain().await;
    let m = app.newest_moment().await;
    assert_eq!(m["state"], "created");
    let html = app.page(&format!("/moments/{}", id_of(&m))).await;
    let image = format!("{PUBLIC_URL}/media/{}", hash_name(PNG, "png"));
    let url = format!("{PUBLIC_URL}/moments/{}", id_of(&m));
    assert_eq!(og(&html, "image"), Some(image.as_str()), "{html}");
    assert_eq!(og(&html, "url"), Some(url.as_str()));
    assert_eq!(og(&html, "title"), Some("Studio light"));
    assert_eq!(twitter(&html, "card"), Some("summary_large_image"));
    assert_eq!(twitter(&html, "image"), Some(image.as_str()));
    let body = body_of(&html);
    assert!(
        body.contains(&format!("<img src=\"{image}\" alt=\"Studio light\">")),
        "{body}"
    );
    // The MMS's text is its title and its description: shown once.
    assert_eq!(
        body.matches("Studio light").count(),
        2,
        "heading and alt text: {body}"
    );
    assert!(!body.contains("class=\"description\""), "{body}");
    assert!(body.contains("Collect for 5 USDC"), "{body}");
}

#[tokio::test]
async fn titles_and_descriptions_are_escaped_in_the_page_and_in_its_tags() {
    let app = spawn_verified_app().await;
    let title = r#"<script>alert("x")</script> & 'friends'"#;
    let description = r#"Says "hi" <b>loud</b>"#;
    let m = posted(&app, &format!("title: {title}\n{description}")).await;
    assert_eq!(m["title"], title);
    let html = app.page(&format!("/moments/{}", id_of(&m))).await;
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    let body = body_of(&html);
    assert!(
        body.contains(
            "<h1>&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;friends&#39;</h1>"
        ),
        "{body}"
    );
    assert!(
        body.contains("Says &#34;hi&#34; &#60;b&#62;loud&#60;/b&#62;"),
        "{body}"
    );
    for (key, value) in [
        (og(&html, "title"), title),
        (twitter(&html, "title"), title),
        (og(&html, "description"), description),
        (twitter(&html, "description"), description),
        (meta(&html, "name", "description"), description),
    ] {
        let written = key.expect("the tag");
        assert!(
            !written.contains(['<', '>', '"', '\'']),
            "unescaped: {written}"
        );
        assert_eq!(unescape(written), value);
    }
}

#[tokio::test]
async fn a_missing_removed_or_unposted_moment_is_a_404_page_for_browsers_and_json_for_clients() {
    let app = spawn_verified_app().await;
    let kept = posted(&app, "Kept").await;
    let undone = posted(&app, "Undone").await;
    app.text_and_drain(PHONE, "UNDO").await;
    // Not yet dispatched: a photo's Moment is pending until its file is kept (a text's is
    // posted in the write that records it).
    serve(&app, "/media/later.png", "image/png", PNG).await;
    text_mms(&app, &[("/media/later.png", "image/png")]).await;
    let pending = app.count("SELECT max(id) FROM moments");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM moments WHERE id = {pending} AND state = 'pending'"
        )),
        1
    );
    assert_eq!(
        page_as(&app, &format!("/moments/{}", id_of(&kept)), BROWSER)
            .await
            .status(),
        200
    );
    for path in [
        "/moments/999".to_owned(),
        "/moments/abc".to_owned(),
        format!("/moments/{}", id_of(&undone)),
        format!("/moments/{pending}"),
    ] {
        let response = page_as(&app, &path, BROWSER).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            header_of(&response, "content-type").is_some_and(|v| v.starts_with("text/html")),
            "{path}"
        );
        let html = response.text().await.expect("html");
        assert!(html.contains("<h1>Moment not found</h1>"), "{path}: {html}");
        assert!(!html.contains("Undone"), "{html}");

        for accept in ["application/json", "*/*"] {
            let response = page_as(&app, &path, accept).await;
            assert_eq!(response.status(), 404, "{path} {accept}");
            assert!(
                header_of(&response, "content-type")
                    .is_some_and(|v| v.starts_with("application/json")),
                "{path} {accept}"
            );
            let body: Value = response.json().await.expect("json");
            assert_eq!(
                body,
                serde_json::json!({"error": "not_found", "message": "Moment not found"})
            );
        }
    }
}

#[tokio::test]
async fn an_unknown_path_is_a_404_page_for_browsers_and_json_for_clients() {
    let app = spawn_app().await;
    let response = page_as(&app, "/nothing-here", BROWSER).await;
    assert_eq!(response.status(), 404);
    assert!(header_of(&response, "content-type").is_some_and(|v| v.starts_with("text/html")));
    assert!(response
        .text()
        .await
        .expect("html")
        .contains("<h1>Not found</h1>"));
    let response = page_as(&app, "/nothing-here", "application/json").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"error": "not_found", "message": "Not found"})
    );
}
