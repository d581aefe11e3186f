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

/// A provider momentline sends texts through, and where its API takes them.
#[derive(Clone, Copy)]
struct Provider {
    name: &'static str,
    send_path: &'static str,
}

const TEXTFLOW: Provider = Provider {
    name: "textflow",
    send_path: "/api/send-sms",
};
const PHONIFY: Provider = Provider {
    name: "phonify",
    send_path: "/v1/messages",
};

/// The app sending through `provider`, whose API answers every text with `answer`, with one
/// text queued.
async fn one_text_queued(provider: Provider, answer: ResponseTemplate) -> TestApp {
    let app = spawn_app_sending_with(provider.name).await;
    answer_posts(&app.provider_api, provider.send_path, answer).await;
    app.queue_text(provider.name, PHONE, PROMPT).await;
    app
}

/// One provider's answer to a text, and what momentline must have sent and kept.
struct Sends {
    provider: Provider,
    answer: ResponseTemplate,
    authorization: String,
    body: Value,
    /// The id the provider gave, or null where momentline keeps the text by its own id.
    provider_message_id: Value,
}

#[tokio::test]
async fn every_provider_sends_a_text_in_its_own_request_shape_and_keeps_its_id() {
    let cases = [
        // TextFlow: a bearer JSON request; the text is kept by our id.
        Sends {
            provider: TEXTFLOW,
            answer: ResponseTemplate::new(200)
                .set_body_json(fixture("textflow/send.response.json")),
            authorization: format!("Bearer {TEXTFLOW_API_KEY}"),
            body: json!({"phone_number": PHONE, "text": PROMPT}),
            provider_message_id: Value::Null,
        },
        // Phonify: basic auth and JSON; its id is stored.
        Sends {
            provider: PHONIFY,
            answer: ResponseTemplate::new(201).set_body_json(fixture("phonify/message.json")),
            authorization: basic_auth(PHONIFY_API_KEY, ""),
            body: json!({"app": PHONIFY_APP, "to": PHONE, "body": PROMPT}),
            provider_message_id: json!("msg_2k8d7f6a5s4d3f2g"),
        },
    ];
    for case in cases {
        let name = case.provider.name;
        let app = one_text_queued(case.provider, case.answer).await;
        assert_eq!(app.drain().await.done, 1, "{name}");
        let requests = requests_to(&app.provider_api, case.provider.send_path).await;
        assert_eq!(requests.len(), 1, "{name}");
        assert_eq!(
            request_header(&requests[0], "authorization"),
            Some(case.authorization.as_str()),
            "{name}"
        );
        let body: Value = serde_json::from_slice(&requests[0].body).expect("json");
        assert_eq!(body, case.body, "{name}");
        let message = first_message(&app);
        assert_eq!(message["state"], "sent", "{name}");
        assert_eq!(message["provider"], name, "{name}");
        assert_eq!(
            message["provider_message_id"], case.provider_message_id,
            "{name}"
        );
    }
}

/// One provider refusing a text for good, and the error momentline keeps.
struct Refuses {
    provider: Provider,
    error: &'static str,
    answer: ResponseTemplate,
}

#[tokio::test]
async fn every_providers_refusal_is_a_permanent_failure_with_its_message() {
    let cases = [
        // TextFlow says `ok: false` with a 200.
        Refuses {
            provider: TEXTFLOW,
            error: "textflow 400: Invalid API key",
            answer: ResponseTemplate::new(200)
                .set_body_json(fixture("textflow/send.error.api_key.json")),
        },
        // Phonify's 402s fail at once with their titles.
        Refuses {
            provider: PHONIFY,
            error: "phonify 402: payment_required: Your Phonify balance is too low to send this \
                    message",
            answer: ResponseTemplate::new(402).set_body_json(fixture("phonify/error.payment.json")),
        },
    ];
    for case in cases {
        let name = case.provider.name;
        let app = one_text_queued(case.provider, case.answer).await;
        assert_eq!(app.drain().await.failed, 1, "{name}");
        let message = first_message(&app);
        assert_eq!(message["state"], "error", "{name}");
        assert_eq!(message["attempts"], 1, "{name}");
        assert_eq!(message["error"], case.error, "{name}");
    }
}

#[tokio::test]
async fn textflow_server_errors_are_retried() {
    let app = spawn_app_sending_with(TEXTFLOW.name).await;
    answer_first_post_then(
        &app.provider_api,
        TEXTFLOW.send_path,
        ResponseTemplate::new(502),
        ResponseTemplate::new(200).set_body_json(fixture("textflow/send.response.json")),
    )
    .await;
    app.queue_text(TEXTFLOW.name, PHONE, PROMPT).await;
    let rounds = app.drain().await;
    assert_eq!((rounds.retrying, rounds.done), (1, 1));
    assert_eq!(first_message(&app)["attempts"], 2);
}

#[tokio::test]
async fn phonify_rate_limits_are_retried_after_the_wait_it_asks() {
    let app = one_text_queued(
        PHONIFY,
        ResponseTemplate::new(429).insert_header("retry-after", "600"),
    )
    .await;
    let rounds = app.drain().await;
    assert_eq!((rounds.retrying, rounds.failed), (1, 0));
    assert_eq!(first_message(&app)["state"], "unconfirmed");
}
