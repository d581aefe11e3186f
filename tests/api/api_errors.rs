//! Every error the API answers with: the status, a JSON `message`, and nothing changed.

use serde_json::{json, Value};

use crate::helpers::*;

async fn message_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error bodies are JSON");
    body["message"].as_str().expect("a message").to_owned()
}

#[tokio::test]
async fn missing_unknown_and_malformed_keys_are_unauthorized() {
    let app = spawn_app().await;
    let unknown = format!("art_sk_{}", "0".repeat(64));
    for key in [None, Some("nonsense"), Some(unknown.as_str()), Some("")] {
        for path in [
            "/api/phones",
            "/api/messages",
            "/api/moments",
            "/api/messages/1",
        ] {
            let mut request = app.http.get(app.url(path));
            if let Some(key) = key {
                request = request.header("x-api-key", key);
            }
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), 401, "{path} with {key:?}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body, json!({"message": "Unauthorized"}));
        }
    }
    let response = app
        .http
        .post(app.url("/api/phones"))
        .json(&json!({"phone_number": PHONE}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn bodies_that_are_not_the_json_asked_for_are_invalid() {
    let app = spawn_app().await;
    for body in [
        "",
        "{",
        "[]",
        "{\"phone\":\"+14155552671\"}",
        "{\"phone_number\":14155552671}",
        "{\"phone_number\":null}",
        "\u{0}\u{1}binary",
    ] {
        let response = app
            .http
            .post(app.url("/api/phones"))
            .header("x-api-key", &app.api_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 400, "{body:?}");
        assert_eq!(message_of(response).await, "Invalid request body");
    }
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn a_disconnect_body_that_is_not_the_json_asked_for_is_invalid() {
    let app = spawn_app().await;
    for body in ["{", "{\"phone_number\":1}", "[]"] {
        let response = app
            .http
            .delete(app.url("/api/phones"))
            .header("x-api-key", &app.api_key)
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(message_of(response).await, "Invalid request body");
    }
}

#[tokio::test]
async fn numbers_not_in_e164_or_not_valid_are_refused_with_a_reason() {
    let app = spawn_app().await;
    for (number, reason) in [
        (
            "4155552671",
            "Phone number must be in E.164 format, like +14155552671",
        ),
        (
            "+1 415 555 2671",
            "Phone number must be in E.164 format, like +14155552671",
        ),
        (
            "",
            "Phone number must be in E.164 format, like +14155552671",
        ),
        ("+11234567890", "Phone number is not a valid phone number"),
    ] {
        let response = app.connect(number).await;
        assert_eq!(response.status(), 400, "{number}");
        assert_eq!(message_of(response).await, reason);
    }
    assert_eq!(app.count("SELECT count(*) FROM phone_numbers"), 0);
}

#[tokio::test]
async fn numbers_from_countries_not_allowed_are_forbidden() {
    let app = spawn_app().await;
    let response = app.connect("+442079460958").await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        message_of(response).await,
        "Phone numbers from GB cannot be connected"
    );
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn an_opted_out_number_is_a_conflict_and_is_never_texted() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    app.text(PHONE, "STOP").await;
    app.drain().await;
    let texts_before = app.sent_to_telnyx().await.len();

    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 409);
    assert!(message_of(response).await.contains("opted out"));
    app.drain().await;
    assert_eq!(app.sent_to_telnyx().await.len(), texts_before);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let huge = json!({ "phone_number": PHONE, "pad": "x".repeat(64 * 1024) });
    let response = app
        .http
        .post(app.url("/api/phones"))
        .header("x-api-key", &app.api_key)
        .json(&huge)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    assert_eq!(message_of(response).await, "Request body too large");
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);

    let event = "x".repeat(300 * 1024);
    let response = app.telnyx_webhook(&event).await;
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_json() {
    let app = spawn_app().await;
    let response = app.get("/api/nothing-here").await;
    assert_eq!(response.status(), 404);
    assert_eq!(message_of(response).await, "Not found");
    let response = app
        .http
        .put(app.url("/api/phones"))
        .header("x-api-key", &app.api_key)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 405);
    assert_eq!(message_of(response).await, "Method not allowed");
    for (method, path) in [
        (reqwest::Method::GET, "/webhooks/telnyx"),
        (reqwest::Method::GET, "/webhooks/twilio"),
        (reqwest::Method::DELETE, "/webhooks/vonage"),
        (reqwest::Method::POST, "/moments/1"),
        (reqwest::Method::POST, "/healthz"),
    ] {
        let response = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(message_of(response).await, "Method not allowed");
    }
}

#[tokio::test]
async fn listing_limits_are_checked() {
    let app = spawn_app().await;
    for query in ["limit=1001", "limit=0", "limit=ten", "offset=-1"] {
        for list in ["/api/messages", "/api/moments"] {
            let response = app.get(&format!("{list}?{query}")).await;
            assert_eq!(response.status(), 400, "{list}?{query}");
        }
    }
    let body = app.get_json("/api/messages?offset=0&limit=1000").await;
    assert_eq!(body["limit"], 1000);
    let response = app.get("/api/messages/not-a-number").await;
    assert_eq!(response.status(), 404);
    let response = app.get("/api/messages/999").await;
    assert_eq!(response.status(), 404);
    assert_eq!(message_of(response).await, "Message not found");
}

#[tokio::test]
async fn a_database_failure_is_a_plain_500_with_details_only_in_the_log() {
    let app = spawn_app().await;
    app.pool
        .get()
        .expect("connection")
        .execute_batch("ALTER TABLE messages RENAME TO messages_elsewhere")
        .expect("rename");
    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"message": "Failed to connect phone number"}));
}

#[tokio::test]
async fn health_is_ok_while_the_database_answers() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn one_artist_cannot_read_anothers_messages() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let other = create_artist(&app.pool, "Other");
    let mine = app.get_json("/api/messages").await;
    let id = mine["messages"][0]["id"].as_i64().expect("id");
    assert_eq!(app.get(&format!("/api/messages/{id}")).await.status(), 200);
    let response = app.get_as(&other, &format!("/api/messages/{id}")).await;
    assert_eq!(response.status(), 404);
    let theirs: Value = app
        .get_as(&other, "/api/messages")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["messages"], json!([]));
}

#[tokio::test]
async fn garbage_sent_to_any_webhook_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let bodies: [&[u8]; 5] = [
        b"",
        b"\xff\xfe\x00garbage",
        b"%FF%FE=%ZZ&&&==",
        b"{\"data\":",
        b"MessageSid=SM1&From=%2B14155552671&Body=%E2%28%A1",
    ];
    for webhook in [
        "/webhooks/telnyx",
        "/webhooks/twilio",
        "/webhooks/twilio/status",
        "/webhooks/vonage",
    ] {
        for body in bodies {
            for content_type in ["application/json", "application/x-www-form-urlencoded"] {
                let response = app
                    .http
                    .post(app.url(webhook))
                    .header("content-type", content_type)
                    .body(body.to_vec())
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), 401, "{webhook} {body:?}");
                let answer: Value = response.json().await.expect("json");
                assert_eq!(answer["message"], "Unauthorized");
            }
        }
    }
    let response = app
        .http
        .get(app.url("/webhooks/vonage?msisdn=%FF&text=%E2%28&sig=zz"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("up")
            .status(),
        200
    );
}
