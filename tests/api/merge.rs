//! Caption merging: a photo and its caption that a carrier split into two messages become one
//! Moment, texted back with one link, in either order, within `MOMENTLINE_MERGE_SECS`.

use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01";
const CAPTION: &str = "Studio wall\nfirst coat\nprice: 5";
/// Another verified number of the test artist's.
const SECOND_PHONE: &str = "+14155550188";

/// The app with `PHONE` verified, halves waiting `secs` for each other, and the provider's
/// stand-in holding a photo at `/media/p.png`.
async fn spawn_merging_app(secs: &str) -> TestApp {
    let app = spawn_verified_app_with_env(&[("MOMENTLINE_MERGE_SECS", secs)]).await;
    serve_photo(&app).await;
    app
}

async fn serve_photo(app: &TestApp) {
    Mock::given(method("GET"))
        .and(path("/media/p.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG.to_vec(), "image/png"))
        .mount(&app.provider_api)
        .await;
}

async fn photo(app: &TestApp, from: &str) {
    let event = app.photo_event(from, "", "/media/p.png");
    assert_eq!(app.telnyx_webhook(&event).await.status(), 200, "photo");
}

/// Keeps media, dispatches Moments and sends texts until nothing is due.
async fn settle(app: &TestApp) {
    app.drain_media().await;
    app.drain().await;
}

/// The "Moment posted" texts `phone` was sent.
async fn posted_texts(app: &TestApp, phone: &str) -> Vec<String> {
    app.texts_to(phone)
        .await
        .into_iter()
        .filter(|t| t.starts_with("Moment posted"))
        .collect()
}

async fn moments(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/moments").await["moments"]
        .as_array()
        .expect("moments")
        .clone()
}

/// One Moment with the caption's words and price and the photo, kept; one text with its link.
async fn assert_one_captioned_photo(app: &TestApp) {
    let moments = moments(app).await;
    assert_eq!(moments.len(), 1, "{moments:#?}");
    let moment = &moments[0];
    assert_eq!(moment["kind"], "media");
    assert_eq!(moment["title"], "Studio wall");
    assert_eq!(moment["description"], "Studio wall\nfirst coat");
    assert_eq!(moment["price"], "5");
    assert_eq!(moment["state"], "created");
    assert_eq!(moment["media"]["state"], "kept");
    assert_eq!(moment["media"]["content_type"], "image/png");
    let id = moment["id"].as_i64().expect("id");
    assert_eq!(
        posted_texts(app, PHONE).await,
        [format!("Moment posted: {PUBLIC_URL}/moments/{id}")]
    );
    // Both messages are in the artist's conversation ("yes" and the two halves).
    assert_eq!(
        app.count(
            "SELECT count(*) FROM messages WHERE direction = 'inbound' AND artist_id IS NOT NULL"
        ),
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM jobs"),
        0,
        "nothing left to do"
    );
}

#[tokio::test]
async fn a_photo_then_its_caption_within_the_window_are_one_moment_with_one_link() {
    let app = spawn_merging_app("5").await;
    photo(&app, PHONE).await;
    settle(&app).await;
    assert!(
        posted_texts(&app, PHONE).await.is_empty(),
        "the photo waits for its caption"
    );
    assert_eq!(moments(&app).await[0]["state"], "pending");

    app.text(PHONE, CAPTION).await;
    // Whole now: posted without waiting out the window.
    settle(&app).await;
    assert_one_captioned_photo(&app).await;
}

#[tokio::test]
async fn a_caption_is_posted_at_once_and_its_photo_within_the_window_joins_its_page() {
    let app = spawn_merging_app("5").await;
    let sent = std::time::Instant::now();
    app.text(PHONE, CAPTION).await;
    settle(&app).await;
    // No wait for a photo that may never come: the words are posted now, their page open to
    // the photo for the window.
    let id = moments(&app).await[0]["id"].as_i64().expect("id");
    let link = format!("{PUBLIC_URL}/moments/{id}");
    assert_eq!(
        posted_texts(&app, PHONE).await,
        [format!("Moment posted: {link}")]
    );
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(moments(&app).await[0]["kind"], "text");

    photo(&app, PHONE).await;
    settle(&app).await;
    assert_one_captioned_photo(&app).await;
    assert_eq!(
        app.last_text_to(PHONE).await,
        Some(format!("Photo added to your Moment: {link}"))
    );
    let page = app.page(&format!("/moments/{id}")).await;
    assert!(page.contains(&format!("{PUBLIC_URL}/media/")), "{page}");
}

#[tokio::test]
async fn a_late_photo_that_cannot_be_kept_leaves_the_caption_as_it_was_posted() {
    let app = spawn_verified_app_with_env(&[("MOMENTLINE_MERGE_SECS", "5")]).await;
    app.text(PHONE, CAPTION).await;
    settle(&app).await;
    // No photo is served: its fetch answers 404.
    photo(&app, PHONE).await;
    settle(&app).await;

    let moments = moments(&app).await;
    assert_eq!(moments.len(), 1);
    assert_eq!(moments[0]["kind"], "text");
    assert_eq!(moments[0]["state"], "created");
    assert!(moments[0]["media"].is_null(), "{}", moments[0]);
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some(
            "Your photo or file could not be received, so it was not posted. Please send it again."
        )
    );
}

/// Two Moments: the caption's text, newest, and the photo titled as a photo.
async fn assert_caption_and_photo_apart(app: &TestApp) {
    let moments = moments(app).await;
    assert_eq!(moments.len(), 2);
    assert_eq!(moments[0]["kind"], "text");
    assert_eq!(moments[0]["title"], "Studio wall");
    assert_eq!(moments[1]["kind"], "media");
    assert!(moments[1]["title"]
        .as_str()
        .is_some_and(|t| t.starts_with("Photo ")));
}

#[tokio::test]
async fn halves_further_apart_than_the_window_are_two_moments() {
    let app = spawn_merging_app("1").await;
    photo(&app, PHONE).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.text(PHONE, CAPTION).await;
    settle(&app).await;
    assert_eq!(
        posted_texts(&app, PHONE).await.len(),
        2,
        "the photo's, on time, and the caption's, at once"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    settle(&app).await;

    assert_caption_and_photo_apart(&app).await;
    assert_eq!(posted_texts(&app, PHONE).await.len(), 2);
}

#[tokio::test]
async fn two_photos_or_two_captions_are_never_joined() {
    let app = spawn_merging_app("1").await;
    photo(&app, PHONE).await;
    photo(&app, PHONE).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.text(PHONE, "First thought").await;
    app.text(PHONE, "Second thought").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    settle(&app).await;

    let shapes: Vec<(String, String)> = moments(&app)
        .await
        .iter()
        .rev()
        .map(|m| {
            let word = |key: &str| m[key].as_str().unwrap_or_default().to_owned();
            (word("kind"), word("title"))
        })
        .collect();
    assert_eq!(shapes.len(), 4, "{shapes:?}");
    assert!(shapes[..2]
        .iter()
        .all(|(kind, title)| kind == "media" && title.starts_with("Photo ")));
    assert_eq!(
        shapes[2..],
        [
            ("text".to_owned(), "First thought".to_owned()),
            ("text".to_owned(), "Second thought".to_owned())
        ]
    );
    assert_eq!(posted_texts(&app, PHONE).await.len(), 4);
}

#[tokio::test]
async fn a_caption_from_another_number_or_a_keyword_does_not_join_a_photo() {
    let app = spawn_merging_app("1").await;
    app.verified(SECOND_PHONE).await;
    photo(&app, PHONE).await;
    app.text(SECOND_PHONE, CAPTION).await;
    app.text(PHONE, "HELP").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    settle(&app).await;

    assert_caption_and_photo_apart(&app).await;
    assert_eq!(posted_texts(&app, PHONE).await.len(), 1);
    assert_eq!(posted_texts(&app, SECOND_PHONE).await.len(), 1);
}

#[tokio::test]
async fn with_merging_off_each_half_is_its_own_moment_posted_at_once() {
    let app = spawn_merging_app("0").await;
    photo(&app, PHONE).await;
    app.text(PHONE, CAPTION).await;
    settle(&app).await;
    assert_eq!(moments(&app).await.len(), 2);
    assert_eq!(posted_texts(&app, PHONE).await.len(), 2);
}
