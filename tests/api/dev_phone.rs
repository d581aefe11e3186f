//! The dev phone: off unless asked for; its texts go the inbound path as a provider's do.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01";

/// The dev phone on, and media fetches held to public addresses as in production.
async fn spawn_dev_phone_app() -> TestApp {
    let app = spawn_app_with_env(
        &[
            ("MOMENTLINE_DEV_PHONE", "1"),
            ("MOMENTLINE_MEDIA_ALLOW_PRIVATE", ""),
        ],
        |_| {},
    )
    .await;
    telnyx_accepts_texts(&app.provider_api).await;
    app
}

async fn dev_text(app: &TestApp, body: &Value) -> reqwest::Response {
    send(app.http.post(app.url("/dev/phone/messages")).json(body)).await
}

async fn conversation(app: &TestApp, phone: &str) -> Vec<Value> {
    let request = app.http.get(app.url("/dev/phone/messages"));
    let response = send(request.query(&[("number", phone)])).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["number"], phone);
    body["messages"].as_array().expect("messages").clone()
}

#[tokio::test]
async fn without_the_variable_the_dev_phone_is_not_there() {
    let app = spawn_app().await;
    for path in ["/dev/phone", "/dev/phone/messages?number=%2B14155552671"] {
        let response = app.get_keyless(path).await;
        assert_eq!(response.status(), 404, "GET {path}");
    }
    let sent = dev_text(
        &app,
        &json!({ "id": "abcdef0123456789", "from": PHONE, "text": "yes" }),
    )
    .await;
    assert_eq!(sent.status(), 404);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn the_page_is_one_file_that_loads_nothing_from_elsewhere() {
    let app = spawn_dev_phone_app().await;
    let response = app.get_keyless("/dev/phone").await;
    assert_eq!(response.status(), 200);
    assert!(header_of(&response, "content-type").is_some_and(|t| t.starts_with("text/html")));
    let csp = header_of(&response, "content-security-policy").expect("CSP");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = response.text().await.expect("html");
    assert!(html.contains("id=\"compose\"") && html.contains("/dev/phone/messages"));
    for external in ["src=\"http", "href=\"http", "@import", "<link"] {
        assert!(!html.contains(external), "the page loads {external}");
    }
}

#[tokio::test]
async fn the_whole_story_plays_through_the_dev_phone_and_a_double_submit_has_one_effect() {
    let app = spawn_dev_phone_app().await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.drain().await;
    let prompt = conversation(&app, PHONE).await;
    assert_eq!(prompt.len(), 1);
    assert_eq!(prompt[0]["direction"], "outbound");
    assert_eq!(prompt[0]["state"], "sent");

    let yes = json!({ "id": "yes-0123456789", "from": PHONE, "text": "yes" });
    let first = dev_text(&app, &yes).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.json::<Value>().await.expect("json")["message"],
        "Received"
    );
    let again = dev_text(&app, &yes).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.expect("json")["message"],
        "Duplicate ignored"
    );
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE provider = 'dev'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE purpose = 'verified'"),
        1
    );

    let photo = json!({
        "id": "photo-0123456789",
        "from": PHONE,
        "text": "Sunrise",
        "image": { "content_type": "image/png", "data": BASE64.encode(PNG) },
    });
    assert_eq!(dev_text(&app, &photo).await.status(), 200);
    assert_eq!(dev_text(&app, &photo).await.status(), 200);
    let kept = format!("{}.png", hex::encode(Sha256::digest(PNG)));
    assert_eq!(
        std::fs::read(app.media_dir.join(&kept)).expect("kept"),
        PNG,
        "the upload is kept as the keeper keeps files"
    );
    // The keeper finds the upload kept and fetches nothing (its URL names no reachable host).
    app.drain_media().await;
    app.drain().await;
    let moment = app.newest_moment().await;
    assert_eq!(moment["title"], "Sunrise");
    assert_eq!(moment["media"]["state"], "kept");
    assert_eq!(moment["media"]["url"], format!("{PUBLIC_URL}/media/{kept}"));
    app.assert_one_moment_posted();

    let texts = conversation(&app, PHONE).await;
    let shown: Vec<(&str, &str)> = texts
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap_or_default(),
                m["body"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(shown.len(), 5, "{shown:?}");
    assert_eq!(shown[1], ("inbound", "yes"));
    assert_eq!(shown[3], ("inbound", "Sunrise"));
    assert_eq!(texts[3]["media"][0]["content_type"], "image/png");
    assert!(shown[4].1.starts_with("Moment posted: "), "{shown:?}");
    // Every text the page shows went to the number too.
    assert_eq!(app.texts_to(PHONE).await.len(), 3);
}

#[tokio::test]
async fn the_dev_phone_refuses_what_it_cannot_send() {
    let spawned = spawn_dev_phone_app().await;
    let app = &spawned;
    let too_large = json!({
        "id": "big-0123456789",
        "from": PHONE,
        "image": { "content_type": "image/png", "data": BASE64.encode(vec![7u8; 5 * 1024 * 1024 + 1]) },
    });
    let response = dev_text(app, &too_large).await;
    assert_eq!(response.status(), 413);
    let message = response.json::<Value>().await.expect("json")["message"].clone();
    assert_eq!(message, "The image is larger than 5 MB");

    // A body far past the limit is refused as it streams in.
    let huge = format!(
        "{{\"id\":\"huge-0123456789\",\"from\":\"{PHONE}\",\"text\":\"{}\"}}",
        "x".repeat(8 * 1024 * 1024)
    );
    let response = app
        .http
        .post(app.url("/dev/phone/messages"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    let message = response.json::<Value>().await.expect("json")["message"].clone();
    assert_eq!(
        message,
        "The message is too large: an image may be at most 5 MB"
    );

    for (body, words) in [
        (
            json!({ "id": "bad-0123456789", "from": "12", "text": "hi" }),
            "Phone number",
        ),
        (
            json!({ "id": "x", "from": PHONE, "text": "hi" }),
            "id must be",
        ),
        (
            json!({ "id": "empty-0123456789", "from": PHONE, "text": "" }),
            "Type a text or attach an image",
        ),
        (
            json!({ "id": "video-0123456789", "from": PHONE,
                "image": { "content_type": "video/mp4", "data": "AAAA" } }),
            "not an image type",
        ),
    ] {
        let response = dev_text(app, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let message = response.json::<Value>().await.expect("json")["message"].clone();
        assert!(
            message.as_str().is_some_and(|m| m.contains(words)),
            "{body}: {message}"
        );
    }
    let bad_number = app.get_keyless("/dev/phone/messages?number=hello").await;
    assert_eq!(bad_number.status(), 400);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn another_sites_page_cannot_text_through_the_dev_phone() {
    let app = spawn_dev_phone_app().await;
    let body = json!({ "id": "dev-cross-1", "from": PHONE, "text": "yes" }).to_string();
    let post = |content_type: &'static str| {
        app.http
            .post(app.url("/dev/phone/messages"))
            .header("content-type", content_type)
            .body(body.clone())
    };
    // A form or plain-text post needs no browser pre-check: refused by its type.
    let plain = send(post("text/plain")).await;
    assert_eq!(plain.status(), 400);
    // A JSON post from another site: refused by its origin.
    let json = "application/json";
    let foreign = send(post(json).header("origin", "http://evil.example")).await;
    assert_eq!(foreign.status(), 403);
    let fetched = send(post(json).header("sec-fetch-site", "cross-site")).await;
    assert_eq!(fetched.status(), 403);
    assert_eq!(
        app.count("SELECT count(*) FROM messages"),
        0,
        "nothing received"
    );
    // The page's own post is taken.
    let own = post("application/json")
        .header("origin", app.address.clone())
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("request");
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn a_number_in_the_query_is_read_with_its_plus_as_typed_or_escaped() {
    let app = spawn_dev_phone_app().await;
    for query in ["number=+14155552671", "number=%2B14155552671"] {
        let response = app
            .get_keyless(&format!("/dev/phone/messages?{query}"))
            .await;
        assert_eq!(response.status(), 200, "{query}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["number"], PHONE, "{query}");
    }
    let spaced = app
        .get_keyless("/dev/phone/messages?number=1+4155552671")
        .await;
    assert_eq!(
        spaced.status(),
        400,
        "a space inside a number is not a plus"
    );
}

#[tokio::test]
async fn a_queued_text_reads_queued_while_the_api_keeps_its_word() {
    let app = spawn_dev_phone_app().await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let prompt = &conversation(&app, PHONE).await[0];
    assert_eq!(prompt["state"], "unconfirmed");
    assert_eq!(prompt["state_words"], "queued");
    app.drain().await;
    let prompt = &conversation(&app, PHONE).await[0];
    assert_eq!(prompt["state_words"], "sent");
}

#[tokio::test]
async fn a_providers_photo_is_shown_from_momentlines_copy_once_kept() {
    // Media on loopback may be fetched here: the provider's stand-in holds the photo.
    let app = spawn_verified_app_with_env(&[("MOMENTLINE_DEV_PHONE", "1")]).await;
    crate::media::serve(&app, "/media/sunrise.png", "image/png", PNG).await;
    let photo = app.photo_event(PHONE, "Sunrise", "/media/sunrise.png");
    assert_eq!(app.telnyx_webhook(&photo).await.status(), 200);

    let attachment = |texts: &[Value]| {
        let photo = texts
            .iter()
            .find(|m| m["body"] == "Sunrise")
            .expect("photo");
        photo["attachments"][0].clone()
    };
    let fetching = attachment(&conversation(&app, PHONE).await);
    assert_eq!(fetching["state"], "fetching");
    assert_eq!(fetching["kept"], Value::Null);
    assert_eq!(fetching["content_type"], "image/png");

    app.drain_media().await;
    let kept = attachment(&conversation(&app, PHONE).await);
    assert_eq!(kept["state"], "kept");
    let path = kept["kept"].as_str().expect("a path to the kept copy");
    assert_eq!(
        path,
        format!("/media/{}", crate::media::hash_name(PNG, "png"))
    );
    // The page shows it from this server, as it is kept.
    let image = app.get_keyless(path).await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.bytes().await.expect("bytes").as_ref(), PNG);
}
