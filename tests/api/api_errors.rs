//! Every error the API answers with: the status, a JSON `message`, and nothing changed.

use serde_json::{json, Value};

use momentline::domain::api_key::ApiKey;

use crate::helpers::*;

async fn message_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error bodies are JSON");
    body["message"].as_str().expect("a message").to_owned()
}

async fn error_of(response: reqwest::Response) -> Value {
    response.json().await.expect("error bodies are JSON")
}

/// `POST /api/phones` of `body` as it is, said to be JSON, as the test artist.
async fn post_json_text(app: &TestApp, body: &'static str) -> reqwest::Response {
    let request = app.keyed(Method::POST, "/api/phones");
    send(
        request
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

#[tokio::test]
async fn missing_malformed_and_unknown_keys_are_unauthorized_and_say_which() {
    let app = spawn_app().await;
    let unknown = format!("art_sk_{}", "0".repeat(64));
    let missing = json!({
        "error": "missing_key",
        "message": "Missing API key: send your key in the x-api-key header",
    });
    let malformed = json!({
        "error": "malformed_key",
        "message": "Malformed API key: a key is art_sk_ followed by 64 lowercase hex characters; \
                    check that the x-api-key header holds the whole key",
    });
    let unknown_answer = json!({
        "error": "unknown_key",
        "message": "Unknown API key: no artist has this key; check that it was copied whole",
    });
    let short = format!("art_sk_{}", "0".repeat(63));
    let upper = format!("art_sk_{}", "A".repeat(64));
    for (key, expected) in [
        (None, &missing),
        (Some(""), &missing),
        (Some("nonsense"), &malformed),
        (Some(short.as_str()), &malformed),
        (Some(upper.as_str()), &malformed),
        (Some(unknown.as_str()), &unknown_answer),
    ] {
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
            let response = send(request).await;
            assert_eq!(response.status(), 401, "{path} with {key:?}");
            assert_eq!(&error_of(response).await, expected, "{path} with {key:?}");
        }
    }
    let keyless = app.http.post(app.url("/api/phones"));
    let response = send(keyless.json(&json!({"phone_number": PHONE}))).await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn a_revoked_key_is_unauthorized_and_says_it_was_revoked() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/phones").await.status(), 200);
    let key = ApiKey::parse(&app.api_key).expect("the test key");
    assert!(app.with_db(|c| momentline::db::artists::revoke_key(c, &key, chrono::Utc::now())));
    let response = app.get("/api/phones").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        error_of(response).await,
        json!({
            "error": "revoked_key",
            "message": "This API key was revoked; ask the operator for a new one",
        })
    );
    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_say_so_and_show_the_shape() {
    let app = spawn_app().await;
    let shape = r#"send JSON like {"phone_number": "+14155552671", "method": "prompt"}"#;
    for (body, message) in [
        ("", format!("The request body is empty; {shape}")),
        ("  \n", format!("The request body is empty; {shape}")),
        (
            "{",
            format!(
                "The request body is not valid JSON (EOF while parsing an object at line 1, \
                 column 1); {shape}"
            ),
        ),
        (
            "\u{0}\u{1}binary",
            format!("The request body is not valid JSON (expected value at line 1, column 1); {shape}"),
        ),
        (
            "{\"phone_number\":\"+14155552671\"} trailing",
            format!(
                "The request body is not valid JSON (trailing characters at line 1, column 33); \
                 {shape}"
            ),
        ),
        (
            "[]",
            r#"The request body must be a JSON object like {"phone_number": "+14155552671", "method": "prompt"}; got an array"#.to_owned(),
        ),
        (
            "\"+14155552671\"",
            r#"The request body must be a JSON object like {"phone_number": "+14155552671", "method": "prompt"}; got a string"#.to_owned(),
        ),
    ] {
        let response = post_json_text(&app, body).await;
        assert_eq!(response.status(), 400, "{body:?}");
        assert_eq!(
            error_of(response).await,
            json!({"error": "invalid_body", "message": message}),
            "{body:?}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

const E164: &str = "a phone number in E.164 form (a + then the country code and number, no \
                    spaces), such as \"+14155552671\"";

#[tokio::test]
async fn a_missing_or_mistyped_field_is_named_with_what_it_must_be() {
    let app = spawn_app().await;
    for (body, field, message) in [
        (
            "{\"phone\":\"+14155552671\"}",
            "phone_number",
            format!("phone_number is missing: it must be {E164}"),
        ),
        (
            "{}",
            "phone_number",
            format!("phone_number is missing: it must be {E164}"),
        ),
        (
            "{\"phone_number\":14155552671}",
            "phone_number",
            format!("phone_number must be {E164}; got integer `14155552671`"),
        ),
        (
            "{\"phone_number\":null}",
            "phone_number",
            format!("phone_number must be {E164}; got null"),
        ),
        (
            "{\"phone_number\":\"+14155552671\",\"method\":3}",
            "method",
            "method must be \"prompt\" (reply 'yes') or \"code\" (enter a texted code); got \
             integer `3`"
                .to_owned(),
        ),
        (
            "{\"phone_number\":\"+14155552671\",\"method\":\"sms\"}",
            "method",
            "method must be \"prompt\" (reply 'yes') or \"code\" (enter a texted code); got \
             `sms`"
                .to_owned(),
        ),
    ] {
        let response = post_json_text(&app, body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            error_of(response).await,
            json!({"error": "invalid_field", "field": field, "message": message}),
            "{body}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn a_verify_body_names_the_code_field() {
    let app = spawn_app().await;
    for (body, field, message) in [
        (
            r#"{"phone_number":"+14155552671"}"#,
            "code",
            "code is missing: it must be the code texted to the number, as a string such as \
             \"123456\"",
        ),
        (
            r#"{"phone_number":"+14155552671","code":123456}"#,
            "code",
            "code must be the code texted to the number, as a string such as \"123456\"; got \
             integer `123456`",
        ),
    ] {
        let response = send(app.keyed(Method::POST, "/api/phones/verify").body(body)).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            error_of(response).await,
            json!({"error": "invalid_field", "field": field, "message": message}),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_disconnect_body_that_is_not_the_json_asked_for_is_invalid() {
    let app = spawn_app().await;
    for (body, error) in [
        ("{", "invalid_body"),
        ("{\"phone_number\":1}", "invalid_field"),
        ("[]", "invalid_body"),
        ("\t", "invalid_body"),
        ("nul", "invalid_body"),
    ] {
        let response = send(app.keyed(Method::DELETE, "/api/phones").body(body)).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(error_of(response).await["error"], error, "{body}");
    }
}

#[tokio::test]
async fn a_disconnect_with_a_json_null_body_releases_every_number() {
    let app = spawn_verified_app().await;
    // The first releases the verified number, the second finds none left.
    for (body, released) in [("null", 1), (" null\n", 0)] {
        let response = send(
            app.keyed(Method::DELETE, "/api/phones")
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(response.status(), 200, "{body:?}");
        let answer: Value = response.json().await.expect("json");
        assert_eq!(answer["disconnected"], released, "{body:?}");
    }
}

#[tokio::test]
async fn numbers_not_in_e164_or_not_valid_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let not_e164 = format!("phone_number must be {E164}");
    let invalid = "phone_number is not a valid phone number: it is in E.164 form, but its \
                   country has no such numbers";
    for (number, reason) in [
        ("4155552671", not_e164.as_str()),
        ("+1 415 555 2671", not_e164.as_str()),
        ("", not_e164.as_str()),
        ("+11234567890", invalid),
    ] {
        let response = app.connect(number).await;
        assert_eq!(response.status(), 400, "{number}");
        assert_eq!(
            error_of(response).await,
            json!({"error": "invalid_field", "field": "phone_number", "message": reason}),
            "{number}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM phone_numbers"), 0);
}

#[tokio::test]
async fn numbers_from_countries_not_allowed_are_forbidden_naming_the_countries() {
    let app = spawn_app().await;
    for (number, country) in [
        ("+442079460958", "the United Kingdom"),
        ("+4930901820", "Germany"),
    ] {
        let response = app.connect(number).await;
        assert_eq!(response.status(), 403, "{number}");
        assert_eq!(
            error_of(response).await,
            json!({
                "error": "country_not_allowed",
                "message": format!(
                    "Numbers in {country} cannot be connected; allowed: United States, Canada"
                ),
            })
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn a_country_missing_from_the_names_is_named_by_its_code() {
    let app = spawn_app_with_env(&[("MOMENTLINE_ALLOWED_COUNTRIES", "US")], |_| {}).await;
    let response = app.connect("+37251234567").await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        message_of(response).await,
        "Numbers in EE cannot be connected; allowed: United States"
    );
}

#[tokio::test]
async fn an_opted_out_number_is_a_conflict_and_is_never_texted() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    app.text_and_drain(PHONE, "STOP").await;
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
    let response = send(app.keyed(Method::POST, "/api/phones").json(&huge)).await;
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
    let response = send(app.keyed(Method::PUT, "/api/phones")).await;
    assert_eq!(response.status(), 405);
    assert_eq!(
        header_of(&response, "allow"),
        Some("POST, DELETE, GET, HEAD")
    );
    assert_eq!(message_of(response).await, "Method not allowed");
    for (method, path, allow) in [
        (Method::GET, "/webhooks/telnyx", "POST"),
        (Method::GET, "/webhooks/twilio", "POST"),
        (Method::DELETE, "/webhooks/vonage", "GET, HEAD, POST"),
        (Method::POST, "/moments/1", "GET, HEAD"),
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::TRACE, "/api/phones/verify", "POST"),
        (Method::OPTIONS, "/openapi.json", "GET, HEAD"),
    ] {
        let response = send(app.http.request(method.clone(), app.url(path))).await;
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            header_of(&response, "allow"),
            Some(allow),
            "{method} {path}"
        );
        assert_eq!(message_of(response).await, "Method not allowed");
    }
}

#[tokio::test]
async fn every_path_answers_405_with_the_methods_it_takes() {
    let app = spawn_app().await;
    for (path, methods) in momentline::routes::registered_routes() {
        let path = path.replace("{id}", "1").replace("{file}", "x.png");
        let mut allowed: Vec<&str> = Vec::new();
        for method in &methods {
            allowed.push(method.as_str());
            if method.as_str() == "GET" {
                allowed.push("HEAD");
            }
        }
        let response = send(app.http.request(Method::PATCH, app.url(&path))).await;
        assert_eq!(response.status(), 405, "PATCH {path}");
        assert_eq!(
            header_of(&response, "allow"),
            Some(allowed.join(", ").as_str()),
            "PATCH {path}"
        );
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
    app.with_db(|c| c.execute_batch("ALTER TABLE messages RENAME TO messages_elsewhere"));
    let response = app.connect(PHONE).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": "internal", "message": "Failed to connect phone number"})
    );
}

#[tokio::test]
async fn health_is_ok_while_the_database_answers() {
    let app = spawn_app().await;
    let response = app.get_keyless("/healthz").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn one_artist_cannot_read_anothers_messages() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let other = create_artist(&app.store, "Other").await;
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
        .get_keyless("/webhooks/vonage?msisdn=%FF&text=%E2%28&sig=zz")
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
    assert_eq!(app.get_keyless("/healthz").await.status(), 200);
}
