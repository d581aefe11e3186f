//! `/api/phones`: connect, list and disconnect.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn connecting_a_number_texts_it_the_exact_prompt() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;

    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"success": true, "message": "Phone number connected and verification message sent"})
    );

    assert_eq!(app.drain().await.done, 1);
    let requests = app
        .provider_api
        .received_requests()
        .await
        .expect("recorded");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/v2/messages");
    assert_eq!(
        request_header(request, "authorization"),
        Some(format!("Bearer {TELNYX_API_KEY}").as_str())
    );
    let sent: Value = serde_json::from_slice(&request.body).expect("json");
    assert_eq!(
        sent,
        json!({
            "to": PHONE,
            "from": OUR_NUMBER,
            "text": "Someone is trying to connect this phone number to the artist profile for \
                     Sweetman on In Process. If this was you, please reply 'yes'. If this was \
                     not you, please ignore this message."
        })
    );
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("pending"));

    let messages = app.get_json("/api/messages").await;
    let prompt = &messages["messages"][0];
    assert_eq!(prompt["direction"], "outbound");
    assert_eq!(prompt["to"], PHONE);
    assert_eq!(prompt["from"], OUR_NUMBER);
    assert_eq!(prompt["state"], "sent");
    assert_eq!(prompt["provider"], "telnyx");
    assert_eq!(
        prompt["provider_message_id"],
        "40385f64-0000-4000-8000-000000000000"
    );
}

#[tokio::test]
async fn the_running_worker_sends_the_prompt_without_being_driven() {
    let app = spawn_app_with(|s| s.run_workers = true).await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    for _ in 0..100 {
        if !app.texts_to(PHONE).await.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the worker did not send the prompt within 5 s");
}

#[tokio::test]
async fn connecting_an_already_verified_number_sends_nothing() {
    let app = spawn_verified_app().await;
    let before = app.sent_to_telnyx().await.len();

    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["message"], "Phone number already verified");
    app.drain().await;
    assert_eq!(app.sent_to_telnyx().await.len(), before);
}

#[tokio::test]
async fn a_second_connect_within_the_cooldown_is_told_when_to_retry() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);

    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 429);
    let retry_after = retry_after_secs(&response);
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("json");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Too many verification texts; try again in ")
            && (message.contains("second") || message.contains("minute")),
        "the wait is said, not 'later': {message}"
    );
    app.drain().await;
    assert_eq!(app.texts_to(PHONE).await.len(), 1, "one prompt only");
}

#[tokio::test]
async fn a_resend_after_the_cooldown_prompts_again() {
    let app = spawn_app_with(|s| {
        s.connect_limits.prompt_cooldown = chrono::Duration::zero();
    })
    .await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.drain().await;
    assert_eq!(app.texts_to(PHONE).await.len(), 2);
}

#[tokio::test]
async fn an_artist_cannot_prompt_more_numbers_than_the_hourly_limit() {
    let app = spawn_app_with(|s| s.connect_limits.connects_per_hour = 2).await;
    assert_eq!(app.connect("+14155550101").await.status(), 200);
    assert_eq!(app.connect("+14155550102").await.status(), 200);
    let response = app.connect("+14155550103").await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(app.number_state("+14155550103").await, None);
}

#[tokio::test]
async fn disconnecting_one_number_or_all_releases_them() {
    let app = spawn_verified_app().await;
    assert_eq!(app.connect("+14155550199").await.status(), 200);

    let response = app.disconnect(Some(PHONE)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["disconnected"], 1);
    assert_eq!(app.number_state(PHONE).await, None);
    assert_eq!(
        app.number_state("+14155550199").await.as_deref(),
        Some("pending")
    );

    // Texts from the released number are a stranger's now: no Moment.
    app.text(PHONE, "a new painting").await;
    assert_eq!(app.count("SELECT count(*) FROM moments"), 0);

    let response = app.disconnect(None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["disconnected"], 1);
    let phones = app.get_json("/api/phones").await;
    assert_eq!(phones["phones"], json!([]));
}

#[tokio::test]
async fn disconnecting_a_number_the_artist_does_not_have_is_not_found() {
    let app = spawn_app().await;
    let response = app.disconnect(Some(PHONE)).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["message"],
        "Phone number is not connected to this artist"
    );
}

#[tokio::test]
async fn countries_outside_the_allow_list_can_be_opened_up() {
    let app = spawn_app_with_env(&[("MOMENTLINE_ALLOWED_COUNTRIES", "*")], |_| {}).await;
    assert_eq!(app.connect("+442079460958").await.status(), 200);
}

#[tokio::test]
async fn a_number_gets_at_most_five_prompts_a_day() {
    let app = spawn_app_with(|s| {
        s.connect_limits.prompt_cooldown = chrono::Duration::zero();
    })
    .await;
    for _ in 0..5 {
        assert_eq!(app.connect(PHONE).await.status(), 200);
    }
    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 429);
    let retry_after = retry_after_secs(&response);
    assert!((86_000..=86_400).contains(&retry_after), "{retry_after}");
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE purpose = 'prompt'"),
        5
    );
}
