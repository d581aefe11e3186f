//! The Telnyx webhook's authenticity checks: nothing unsigned, stale or tampered has an effect.

use chrono::Utc;
use serde_json::Value;

use crate::helpers::*;

async fn assert_refused(app: &TestApp, response: reqwest::Response, status: u16) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("json");
    assert!(body["message"].is_string());
    assert_eq!(
        app.count("SELECT count(*) FROM messages"),
        0,
        "nothing recorded"
    );
}

#[tokio::test]
async fn an_unsigned_webhook_is_unauthorized() {
    let app = spawn_app().await;
    let unsigned = app.http.post(app.url("/webhooks/telnyx"));
    let response = send(unsigned.body(app.sms_event(PHONE, "hi"))).await;
    assert_refused(&app, response, 401).await;
}

#[tokio::test]
async fn a_tampered_body_or_wrong_signature_is_unauthorized() {
    let app = spawn_app().await;
    let event = app.sms_event(PHONE, "hi");
    let now = Utc::now().timestamp();
    let signature = telnyx_signature(now, &event);
    let tampered = event.replace("\"hi\"", "\"ho\"");
    let response = app.telnyx_webhook_signed(&tampered, now, &signature).await;
    assert_refused(&app, response, 401).await;
    let response = app
        .telnyx_webhook_signed(&event, now, &telnyx_signature(now, "other"))
        .await;
    assert_refused(&app, response, 401).await;
    let response = app.telnyx_webhook_signed(&event, now, "not base64!").await;
    assert_refused(&app, response, 401).await;
}

#[tokio::test]
async fn a_stale_or_future_timestamp_is_unauthorized() {
    let app = spawn_app().await;
    let event = app.sms_event(PHONE, "hi");
    for offset in [-301, 301, -86_400] {
        let at = Utc::now().timestamp() + offset;
        let response = app
            .telnyx_webhook_signed(&event, at, &telnyx_signature(at, &event))
            .await;
        assert_refused(&app, response, 401).await;
    }
}

#[tokio::test]
async fn the_published_test_vector_is_refused_now_for_its_age() {
    let app = spawn_app().await;
    let body = r#"{"data":{"event_type":"message.received","id":"bf6307bd-884d-4c1f-b6ea-c62b8c495d3c","payload":{"id":"7ee4241c-f127-47e5-9c34-3aac291f8058","text":"Hello, World!"}}}"#;
    let signature =
        "uCtbQsWRiJ3/ke4tYIDZLxX2jPNmfxZ3z0qGT70a5ii6g0NL+rcOidnxYObG5ep005vifvGsi8yBJvEiYe4aCQ==";
    // Our test key signs it the same way, byte for byte.
    assert_eq!(telnyx_signature(1_700_000_000, body), signature);
    let response = app
        .telnyx_webhook_signed(body, 1_700_000_000, signature)
        .await;
    assert_refused(&app, response, 401).await;
}

#[tokio::test]
async fn without_a_public_key_every_telnyx_webhook_is_refused() {
    let app = spawn_app_with_env(&[("TELNYX_PUBLIC_KEY", "")], |_| {}).await;
    let response = app.telnyx_webhook(&app.sms_event(PHONE, "hi")).await;
    assert_refused(&app, response, 401).await;
}

#[tokio::test]
async fn a_signed_but_malformed_body_is_a_bad_request() {
    let app = spawn_app().await;
    for body in [
        "{",
        "[]",
        r#"{"data":{"event_type":"message.received"}}"#,
        r#"{"data":{"event_type":"message.received","payload":{"id":"x"}}}"#,
        r#"{"data":{"event_type":"message.received","payload":{"id":7,"from":{"phone_number":"+14155552671"}}}}"#,
    ] {
        let response = app.telnyx_webhook(body).await;
        assert_refused(&app, response, 400).await;
    }
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged_and_change_nothing() {
    let app = spawn_app().await;
    let body = r#"{"data":{"event_type":"number_order.complete","id":"e1","payload":{"id":"p1"}},"meta":{"attempt":1}}"#;
    let response = app.telnyx_webhook(body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["message"], "Ignored number_order.complete");
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn a_sender_that_is_not_a_phone_number_is_acknowledged_and_ignored() {
    let app = spawn_app().await;
    let response = app.telnyx_webhook(&app.sms_event("22395", "promo")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}
