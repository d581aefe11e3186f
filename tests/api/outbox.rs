//! Sending through Telnyx when it fails: retried on the schedule, failed for good with the
//! reason kept, never lost and never sent twice.

use std::time::Duration;

use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use crate::helpers::*;

async fn prompt_message(app: &TestApp) -> Value {
    let messages = app.get_json("/api/messages").await;
    messages["messages"][0].clone()
}

/// The app with the prompt to `PHONE` queued, and Telnyx answering every text with `answer`.
async fn prompt_answered_with(answer: ResponseTemplate) -> TestApp {
    let app = spawn_app().await;
    answer_posts(&app.provider_api, "/v2/messages", answer).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app
}

#[tokio::test]
async fn a_server_error_is_retried_until_telnyx_accepts() {
    let app = spawn_app().await;
    telnyx_accepts_texts_after_first(&app.provider_api, ResponseTemplate::new(503)).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);

    let first = app.send_round().await;
    assert_eq!(first.retrying, 1);
    let waiting = prompt_message(&app).await;
    assert_eq!(waiting["state"], "unconfirmed");
    assert_eq!(waiting["error"], "telnyx 503");

    let rounds = app.drain().await;
    assert_eq!(rounds.done, 1);
    let sent = prompt_message(&app).await;
    assert_eq!(sent["state"], "sent");
    assert_eq!(sent["attempts"], 2);
    assert_eq!(sent["error"], Value::Null);
    assert_eq!(
        app.sent_to_telnyx().await.len(),
        2,
        "one failed try, one success"
    );
}

#[tokio::test]
async fn a_text_that_always_fails_ends_in_error_after_the_last_attempt() {
    let app = prompt_answered_with(ResponseTemplate::new(500)).await;
    let rounds = app.drain().await;
    assert_eq!((rounds.retrying, rounds.failed), (2, 1));
    let message = prompt_message(&app).await;
    assert_eq!(message["state"], "error");
    assert_eq!(
        message["attempts"], 3,
        "the schedule 0,0 allows three attempts"
    );
    assert_eq!(message["error"], "telnyx 500");
    assert_eq!(app.sent_to_telnyx().await.len(), 3);
    assert_eq!(app.drain().await.claimed(), 0, "nothing more is tried");
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let app = spawn_app_with(|s| s.provider_timeout = Duration::from_millis(300)).await;
    telnyx_accepts_texts_after_first(
        &app.provider_api,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(2)),
    )
    .await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let first = app.send_round().await;
    assert_eq!(first.retrying, 1);
    assert!(prompt_message(&app).await["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("telnyx timed out")));
    assert_eq!(app.drain().await.done, 1);
}

#[tokio::test]
async fn rate_limiting_honours_retry_after() {
    let app = prompt_answered_with(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "120")
            .set_body_json(fixture("telnyx/send.error.rate_limited.json")),
    )
    .await;
    let rounds = app.drain().await;
    assert_eq!((rounds.retrying, rounds.done, rounds.failed), (1, 0, 0));
    let message = prompt_message(&app).await;
    assert_eq!(message["state"], "unconfirmed");
    assert_eq!(
        message["error"],
        "telnyx 429: 10011 You have exceeded the maximum number of allowed requests."
    );
    let wait = app.count(&format!(
        "SELECT {} FROM jobs",
        secs_until_sql(app.engine(), "run_after")
    ));
    assert!((110..=121).contains(&wait), "next attempt in {wait} s");
    assert_eq!(
        message["attempts"], 0,
        "being asked to slow down spends no attempt"
    );
    assert_eq!(app.count("SELECT attempts FROM jobs"), 0);
}

#[tokio::test]
async fn an_invalid_number_fails_at_once_with_telnyxs_reason() {
    let app = prompt_answered_with(
        ResponseTemplate::new(422).set_body_json(fixture("telnyx/send.error.invalid_number.json")),
    )
    .await;
    let rounds = app.drain().await;
    assert_eq!(rounds.failed, 1);
    let message = prompt_message(&app).await;
    assert_eq!(message["state"], "error");
    assert_eq!(message["attempts"], 1);
    assert_eq!(
        message["error"],
        "telnyx 422: 40310 The 'to' address is not a valid phone number."
    );
}

#[tokio::test]
async fn telnyx_saying_the_recipient_opted_out_opts_the_number_out() {
    let app = prompt_answered_with(
        ResponseTemplate::new(400).set_body_json(fixture("telnyx/send.error.opted_out.json")),
    )
    .await;
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    assert_eq!(
        app.count("SELECT count(*) FROM number_state_changes WHERE cause = 'provider'"),
        1
    );
    assert_eq!(app.connect(PHONE).await.status(), 409);
    assert_eq!(app.sent_to_telnyx().await.len(), 1);
}

#[tokio::test]
async fn a_text_queued_while_telnyx_is_unreachable_stays_queued() {
    // Nothing listens on port 9: Telnyx is unreachable.
    let down = spawn_app_with_env(&[("TELNYX_API_BASE", "http://127.0.0.1:9")], |_| {}).await;
    assert_eq!(down.connect(PHONE).await.status(), 200);
    let round = down.send_round().await;
    assert_eq!(round.retrying, 1);
    let message = prompt_message(&down).await;
    assert_eq!(message["state"], "unconfirmed");
    assert!(message["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("telnyx could not be reached")));
}

#[tokio::test]
async fn a_success_whose_answer_cannot_be_read_counts_as_sent_and_is_never_resent() {
    let app =
        prompt_answered_with(ResponseTemplate::new(200).set_body_string("<html>gateway</html>"))
            .await;
    assert_eq!(app.drain().await.done, 1);
    let message = prompt_message(&app).await;
    assert_eq!(message["state"], "sent");
    assert_eq!(message["provider_message_id"], Value::Null);
    assert_eq!(app.sent_to_telnyx().await.len(), 1);
}

/// What the stand-in answered one send.
#[derive(Debug, Clone)]
struct Answered {
    to: String,
    status: u16,
    /// Answered after momentline had stopped waiting: not a definite answer.
    late: bool,
}

#[tokio::test]
async fn through_an_outage_every_text_is_delivered_and_none_twice_after_a_definite_success() {
    use std::sync::Mutex;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, Request};

    let app = spawn_app_with(|s| {
        s.run_workers = true;
        s.retry_schedule = vec![Duration::ZERO; 12];
        s.provider_timeout = Duration::from_millis(300);
    })
    .await;
    // The provider fails, asks us to wait, hangs past the timeout, then recovers.
    let log: std::sync::Arc<Mutex<Vec<Answered>>> = std::sync::Arc::default();
    let answers = std::sync::Arc::clone(&log);
    Mock::given(method("POST"))
        .and(path("/v2/messages"))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            let to = body["to"].as_str().unwrap_or_default().to_owned();
            let mut answers = answers.lock().unwrap_or_else(|e| e.into_inner());
            let (status, late, template) = match answers.len() {
                0..=5 => (503, false, ResponseTemplate::new(503)),
                6..=8 => (
                    429,
                    false,
                    ResponseTemplate::new(429).insert_header("retry-after", "1"),
                ),
                9..=11 => (
                    200,
                    true,
                    ResponseTemplate::new(200)
                        .set_body_json(fixture("telnyx/send.response.json"))
                        .set_delay(Duration::from_secs(1)),
                ),
                n => {
                    let mut ok = fixture("telnyx/send.response.json");
                    ok["data"]["id"] = json!(format!("40385f64-0000-4000-8000-{n:012}"));
                    (200, false, ResponseTemplate::new(200).set_body_json(ok))
                }
            };
            answers.push(Answered { to, status, late });
            template
        })
        .mount(&app.provider_api)
        .await;

    let phones: Vec<String> = (0..10)
        .map(|i| format!("+1415555{:04}", 4100 + i))
        .collect();
    for phone in &phones {
        assert_eq!(app.connect(phone).await.status(), 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.count("SELECT count(*) FROM messages WHERE state = 'sent'") < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "not every text was delivered: {:?}",
            log.lock().map(|l| l.len())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answered = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for phone in &phones {
        let to_it: Vec<&Answered> = answered.iter().filter(|a| &a.to == phone).collect();
        let definite = to_it
            .iter()
            .position(|a| a.status == 200 && !a.late)
            .unwrap_or_else(|| panic!("{phone} never got a definite success: {to_it:?}"));
        assert_eq!(
            definite,
            to_it.len() - 1,
            "{phone} was sent again after a definite success: {to_it:?}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE state = 'error'"),
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM jobs"), 0);
}
