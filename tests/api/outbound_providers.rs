//! TextFlow and Phonify: the exact request each API documents, and their error shapes. Neither
//! brings replies back, so these texts are queued as momentline queues its own.

use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use crate::helpers::*;

const PROMPT: &str = "Someone is trying to connect this phone number to the artist profile for \
                      Sweetman on In Process. If this was you, please reply 'yes'. If this was \
                      not you, please ignore this message.";

/// The one queued text, as the database shows it (no artist's conversation holds it).
fn first_message(app: &TestApp) -> Value {
    app.with_db(|c| {
        c.query_row(
            "SELECT state, provider, provider_message_id, attempts, last_error FROM messages",
            params![],
            |r| {
                Ok(json!({
                    "state": r.get::<_, String>(0)?,
                    "provider": r.get::<_, String>(1)?,
                    "provider_message_id": r.get::<_, Option<String>>(2)?,
                    "attempts": r.get::<_, i64>(3)?,
                    "error": r.get::<_, Option<String>>(4)?,
                }))
            },
        )
    })
}

#[tokio::test]
async fn textflow_gets_a_bearer_json_request_and_the_text_is_kept_by_our_id() {
    let app = spawn_app_sending_with("textflow").await;
    answer_posts(
        &app.provider_api,
        "/api/send-sms",
        ResponseTemplate::new(200).set_body_json(fixture("textflow/send.response.json")),
    )
    .await;
    app.queue_text("textflow", PHONE, PROMPT).await;
    assert_eq!(app.drain().await.done, 1);
    let requests = requests_to(&app.provider_api, "/api/send-sms").await;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        request_header(&requests[0], "authorization"),
        Some(format!("Bearer {TEXTFLOW_API_KEY}").as_str())
    );
    let body: Value = serde_json::from_slice(&requests[0].body).expect("json");
    assert_eq!(body, json!({"phone_number": PHONE, "text": PROMPT}));
    let message = first_message(&app);
    assert_eq!(message["state"], "sent");
    assert_eq!(message["provider"], "textflow");
    assert_eq!(message["provider_message_id"], Value::Null);
}

#[tokio::test]
async fn textflow_ok_false_is_a_permanent_failure_with_its_message() {
    let app = spawn_app_sending_with("textflow").await;
    answer_posts(
        &app.provider_api,
        "/api/send-sms",
        ResponseTemplate::new(200).set_body_json(fixture("textflow/send.error.api_key.json")),
    )
    .await;
    app.queue_text("textflow", PHONE, PROMPT).await;
    assert_eq!(app.drain().await.failed, 1);
    let message = first_message(&app);
    assert_eq!(message["state"], "error");
    assert_eq!(message["attempts"], 1);
    assert_eq!(message["error"], "textflow 400: Invalid API key");
}

#[tokio::test]
async fn textflow_server_errors_are_retried() {
    let app = spawn_app_sending_with("textflow").await;
    answer_first_post(
        &app.provider_api,
        "/api/send-sms",
        ResponseTemplate::new(502),
    )
    .await;
    answer_posts(
        &app.provider_api,
        "/api/send-sms",
        ResponseTemplate::new(200).set_body_json(fixture("textflow/send.response.json")),
    )
    .await;
    app.queue_text("textflow", PHONE, PROMPT).await;
    let rounds = app.drain().await;
    assert_eq!((rounds.retrying, rounds.done), (1, 1));
    assert_eq!(first_message(&app)["attempts"], 2);
}

#[tokio::test]
async fn phonify_gets_basic_auth_json_and_its_id_is_stored() {
    let app = spawn_app_sending_with("phonify").await;
    answer_posts(
        &app.provider_api,
        "/v1/messages",
        ResponseTemplate::new(201).set_body_json(fixture("phonify/message.json")),
    )
    .await;
    app.queue_text("phonify", PHONE, PROMPT).await;
    assert_eq!(app.drain().await.done, 1);
    let requests = requests_to(&app.provider_api, "/v1/messages").await;
    let basic = basic_auth(PHONIFY_API_KEY, "");
    assert_eq!(
        request_header(&requests[0], "authorization"),
        Some(basic.as_str())
    );
    let body: Value = serde_json::from_slice(&requests[0].body).expect("json");
    assert_eq!(
        body,
        json!({"app": PHONIFY_APP, "to": PHONE, "body": PROMPT})
    );
    let message = first_message(&app);
    assert_eq!(message["provider_message_id"], "msg_2k8d7f6a5s4d3f2g");
}

#[tokio::test]
async fn phonify_402_errors_fail_at_once_with_their_titles() {
    let app = spawn_app_sending_with("phonify").await;
    answer_posts(
        &app.provider_api,
        "/v1/messages",
        ResponseTemplate::new(402).set_body_json(fixture("phonify/error.payment.json")),
    )
    .await;
    app.queue_text("phonify", PHONE, PROMPT).await;
    assert_eq!(app.drain().await.failed, 1);
    let message = first_message(&app);
    assert_eq!(message["state"], "error");
    assert_eq!(
        message["error"],
        "phonify 402: payment_required: Your Phonify balance is too low to send this message"
    );
}

#[tokio::test]
async fn phonify_rate_limits_are_retried_after_the_wait_it_asks() {
    let app = spawn_app_sending_with("phonify").await;
    answer_posts(
        &app.provider_api,
        "/v1/messages",
        ResponseTemplate::new(429).insert_header("retry-after", "600"),
    )
    .await;
    app.queue_text("phonify", PHONE, PROMPT).await;
    let rounds = app.drain().await;
    assert_eq!((rounds.retrying, rounds.failed), (1, 0));
    assert_eq!(first_message(&app)["state"], "unconfirmed");
}
