//! UNDO (or DELETE): a verified number removes its last Moment within 10 minutes of it.

use crate::helpers::*;
use crate::media::{serve, text_mms, PNG};

const REMOVED: &str = "Your last Moment was removed.";
const NOTHING: &str =
    "Nothing to undo: UNDO removes your last Moment within 10 minutes of posting it.";

async fn moment_titles(app: &TestApp) -> Vec<String> {
    app.get_json("/api/moments").await["moments"]
        .as_array()
        .expect("moments")
        .iter()
        .map(|m| m["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Texts `text` from `PHONE` and answers it; the last text `PHONE` was sent.
async fn reply_to(app: &TestApp, text: &str) -> Option<String> {
    app.text_and_drain(PHONE, text).await;
    app.last_text_to(PHONE).await
}

async fn page_status(app: &TestApp, id: i64) -> u16 {
    let page = app.get_keyless(&format!("/moments/{id}")).await;
    page.status().as_u16()
}

#[tokio::test]
async fn undo_removes_the_last_moment_from_the_api_and_its_page_and_says_so() {
    let app = spawn_verified_app().await;
    app.text(PHONE, "First").await;
    app.text_and_drain(PHONE, "Second").await;
    assert_eq!(moment_titles(&app).await, ["Second", "First"]);

    assert_eq!(reply_to(&app, "undo").await.as_deref(), Some(REMOVED));
    assert_eq!(moment_titles(&app).await, ["First"]);
    assert_eq!(page_status(&app, 2).await, 404);
    assert_eq!(page_status(&app, 1).await, 200);

    // Each UNDO takes the one before; then there is nothing left to take.
    app.text(PHONE, "DELETE").await;
    app.text_and_drain(PHONE, "UNDO").await;
    assert!(moment_titles(&app).await.is_empty());
    let texts = app.texts_to(PHONE).await;
    assert_eq!(texts[texts.len() - 2..], [REMOVED, NOTHING]);
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE purpose = 'moment_deleted'"),
        2
    );
}

#[tokio::test]
async fn undo_after_ten_minutes_removes_nothing() {
    let app = spawn_verified_app().await;
    app.text_and_drain(PHONE, "Old news").await;
    app.backdate_messages(11 * 60);
    app.backdate("moments", "created_at", 11 * 60);

    assert_eq!(reply_to(&app, "UNDO").await.as_deref(), Some(NOTHING));
    assert_eq!(moment_titles(&app).await, ["Old news"]);
}

#[tokio::test]
async fn a_moment_undone_before_it_is_posted_is_never_posted() {
    let app = spawn_verified_app().await;
    // A photo's Moment is posted only once its file is kept: UNDO comes before that. (A
    // text's Moment on momentline's own page is posted in the write that records it.)
    serve(&app, "/media/oops.png", "image/png", PNG).await;
    text_mms(&app, &[("/media/oops.png", "image/png")]).await;
    app.text_and_drain(PHONE, "UNDO").await;
    app.assert_told_removed_never_posted(PHONE).await;
    assert!(moment_titles(&app).await.is_empty());
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE deleted_at IS NOT NULL AND url IS NULL"),
        1
    );
}

#[tokio::test]
async fn undo_from_a_number_that_is_not_verified_is_not_a_command() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    app.text_and_drain(PHONE, "UNDO").await;
    let texts = app.texts_to(PHONE).await;
    assert_eq!(texts.len(), 1);
    assert!(
        texts[0].starts_with("This number is not connected"),
        "{texts:?}"
    );
}

#[tokio::test]
async fn help_tells_how_to_undo_in_one_segment() {
    let app = spawn_verified_app().await;
    app.text_and_drain(PHONE, "HELP").await;
    let help = app.texts_to(PHONE).await.pop().expect("help");
    assert!(help.contains("UNDO removes your last Moment"), "{help}");
    assert!(help.len() <= 160, "{} characters", help.len());
}
