//! Verification by code: `POST /api/phones` with `"method": "code"` and
//! `POST /api/phones/verify`, through Telnyx, Phonify and TextFlow's own code service.

use serde_json::{json, Value};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// The code in the newest code text Telnyx was asked to send to `phone`.
async fn code_texted_to(app: &TestApp, phone: &str) -> String {
    let texts = app.texts_to(phone).await;
    let text = texts
        .iter()
        .rev()
        .find(|t| t.starts_with("Your In Process code is "))
        .expect("a code text");
    let code = &text["Your In Process code is ".len()..][..6];
    assert_eq!(
        text,
        &format!("Your In Process code is {code}. It expires in 10 minutes.")
    );
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{text}");
    code.to_owned()
}

/// A six-digit code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Asks for a code for `PHONE` as the test artist, sends it, and returns it.
async fn requested_code(app: &TestApp) -> String {
    let response = app.connect_by(&app.api_key, PHONE, "code").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"success": true, "message": "Phone number connected and verification code sent"})
    );
    assert_eq!(app.drain().await.done, 1);
    code_texted_to(app, PHONE).await
}

async fn verify(app: &TestApp, code: &str) -> (u16, Value) {
    let response = app.verify_code_as(&app.api_key, PHONE, code).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn code_app() -> TestApp {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    app
}

#[tokio::test]
async fn the_texted_code_verifies_the_number_for_the_artist_who_asked() {
    let app = code_app().await;
    let code = requested_code(&app).await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("pending"));

    // Neither the database nor the artist's conversation holds the code itself.
    let messages = app.get_json("/api/messages").await;
    assert_eq!(
        messages["messages"][0]["body"],
        "Your In Process code is ******. It expires in 10 minutes."
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM messages WHERE body LIKE '%{code}%'"
        )),
        0
    );

    let (status, body) = verify(&app, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"success": true, "message": "Phone number verified"})
    );
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    assert_eq!(
        app.count(
            "SELECT count(*) FROM number_state_changes
             WHERE cause = 'code' AND from_state = 'pending' AND to_state = 'verified'
               AND artist_id IS NOT NULL"
        ),
        1
    );
    // The number is told, as after its "yes"; the code is used up.
    app.drain().await;
    let texts = app.texts_to(PHONE).await;
    assert!(
        texts[1].starts_with("Connected to Sweetman on In Process."),
        "{texts:?}"
    );
    assert_eq!(verify(&app, &code).await.0, 404);
}

#[tokio::test]
async fn a_wrong_code_says_how_many_tries_are_left() {
    let app = code_app().await;
    let code = requested_code(&app).await;
    let (status, body) = verify(&app, &other_than(&code)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "wrong_code", "message": "Wrong code; 4 tries left", "tries_left": 4})
    );
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("pending"));
    let (status, _) = verify(&app, "12ab56").await;
    assert_eq!(status, 400, "not a code: refused, no try spent");
    assert_eq!(verify(&app, &other_than(&code)).await.1["tries_left"], 3);
    assert_eq!(verify(&app, &code).await.0, 200);
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code_until_it_would_have_expired() {
    let app = code_app().await;
    let code = requested_code(&app).await;
    let wrong = other_than(&code);
    for left in (0..5).rev() {
        let (status, body) = verify(&app, &wrong).await;
        assert_eq!((status, body["tries_left"].as_u64()), (400, Some(left)));
    }
    let response = app.verify_code_as(&app.api_key, PHONE, &code).await;
    assert_eq!(response.status(), 429, "even the right code is refused now");
    let wait = retry_after_secs(&response);
    assert!((590..=600).contains(&wait), "{wait}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["retry_after"], wait);
    assert_eq!(
        body["message"],
        format!("Too many wrong codes; request a new code in {wait} seconds")
    );
    // Nor can a new code be had before then.
    app.backdate_messages(3600);
    let response = app.connect_by(&app.api_key, PHONE, "code").await;
    assert_eq!(response.status(), 429);
    assert!(retry_after_secs(&response) > 500);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("pending"));
}

#[tokio::test]
async fn an_opted_out_number_whose_code_is_locked_is_answered_as_opted_out() {
    let app = code_app().await;
    let code = requested_code(&app).await;
    let wrong = other_than(&code);
    for _ in 0..5 {
        assert_eq!(verify(&app, &wrong).await.0, 400);
    }
    app.text_and_drain(PHONE, "STOP").await;
    let before = app.sent_to_telnyx().await.len();
    app.backdate_messages(3600);
    let response = app.connect_by(&app.api_key, PHONE, "code").await;
    assert_eq!(
        response.status(),
        409,
        "opted out, whatever the code's state"
    );
    app.drain().await;
    assert_eq!(app.sent_to_telnyx().await.len(), before, "nothing sent");
}

#[tokio::test]
async fn an_expired_code_no_longer_verifies() {
    let app = spawn_app_with_env(&[("MOMENTLINE_CODE_TTL_SECS", "1")], |_| {}).await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "code").await.status(),
        200
    );
    app.drain().await;
    let text = app.texts_to(PHONE).await.remove(0);
    assert!(text.ends_with(". It expires in 1 second."), "{text}");
    let code = text["Your In Process code is ".len()..][..6].to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = verify(&app, &code).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(
        body["message"],
        "The code expired; request a new one with POST /api/phones and \"method\": \"code\""
    );
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("pending"));
}

#[tokio::test]
async fn a_new_request_replaces_the_old_code() {
    let app = code_app().await;
    let first = requested_code(&app).await;
    app.backdate_messages(120); // past the prompt cooldown
    let second = requested_code(&app).await;
    if first != second {
        let (status, body) = verify(&app, &first).await;
        assert_eq!((status, body["tries_left"].as_u64()), (400, Some(4)));
    }
    assert_eq!(verify(&app, &second).await.0, 200);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
}

#[tokio::test]
async fn a_code_replaced_before_it_was_sent_is_never_sent() {
    let app = code_app().await;
    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "code").await.status(),
        200
    );
    app.backdate_messages(120);
    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "code").await.status(),
        200
    );
    let round = app.drain().await;
    assert_eq!((round.done, round.failed), (1, 1));
    assert_eq!(app.texts_to(PHONE).await.len(), 1);
    let code = code_texted_to(&app, PHONE).await;
    assert_eq!(verify(&app, &code).await.0, 200);
}

#[tokio::test]
async fn a_code_whose_text_failed_says_so_and_a_code_not_yet_sent_waits() {
    let app = spawn_app().await;
    telnyx_accepts_texts_after_first(
        &app.provider_api,
        ResponseTemplate::new(400).set_body_json(json!({"errors": [{"detail": "bad number"}]})),
    )
    .await;
    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "code").await.status(),
        200
    );
    let (status, body) = verify(&app, "123456").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["message"],
        "The code has not been texted yet; try again in a moment"
    );
    assert_eq!(app.drain().await.failed, 1);
    let (status, body) = verify(&app, "123456").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["message"],
        "The code could not be texted (the SMS provider refused it); request a new one with \
         POST /api/phones and \"method\": \"code\""
    );
    app.backdate_messages(120);
    let code = requested_code(&app).await;
    assert_eq!(verify(&app, &code).await.0, 200);
}

#[tokio::test]
async fn an_opted_out_number_gets_no_code() {
    let app = code_app().await;
    app.text_and_drain(PHONE, "STOP").await;
    let before = app.sent_to_telnyx().await.len();
    let response = app.connect_by(&app.api_key, PHONE, "code").await;
    assert_eq!(response.status(), 409);
    app.drain().await;
    assert_eq!(app.sent_to_telnyx().await.len(), before);
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE purpose = 'code'"),
        0
    );
    assert_eq!(verify(&app, "123456").await.0, 404);
}

#[tokio::test]
async fn codes_and_prompts_share_the_limits_against_pumping() {
    let app = code_app().await;
    requested_code(&app).await;
    let response = app.connect_by(&app.api_key, PHONE, "code").await;
    assert_eq!(response.status(), 429, "within the cooldown");
    assert!(retry_after_secs(&response) > 0);
    let response = app.connect(PHONE).await;
    assert_eq!(
        response.status(),
        429,
        "a prompt counts the code sent before it"
    );
    // Five texts a day to one number, whichever kind.
    for _ in 0..4 {
        app.backdate_messages(120);
        assert_eq!(
            app.connect_by(&app.api_key, PHONE, "code").await.status(),
            200
        );
    }
    app.backdate_messages(120);
    let response = app.connect_by(&app.api_key, PHONE, "code").await;
    assert_eq!(response.status(), 429, "the daily cap");
    assert!(retry_after_secs(&response) > 3600);
}

#[tokio::test]
async fn another_artists_key_cannot_use_the_code() {
    let app = code_app().await;
    let code = requested_code(&app).await;
    let other = create_artist(&app.store, "Someone Else").await;
    let response = app.verify_code_as(&other, PHONE, &code).await;
    assert_eq!(response.status(), 404);
    assert_eq!(app.number_state_as(&other, PHONE).await, None);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("pending"));
    assert_eq!(verify(&app, &code).await.0, 200, "nor did it spend a try");
}

#[tokio::test]
async fn the_right_code_takes_over_a_number_verified_for_another_artist() {
    let app = code_app().await;
    let other = create_artist(&app.store, "Previous Owner").await;
    assert_eq!(app.connect_as(&other, PHONE).await.status(), 200);
    app.text_and_drain(PHONE, "yes").await;
    assert_eq!(
        app.number_state_as(&other, PHONE).await.as_deref(),
        Some("verified")
    );
    app.backdate_messages(120);
    let code = requested_code(&app).await;
    assert_eq!(
        app.number_state_as(&other, PHONE).await.as_deref(),
        Some("verified"),
        "the owner keeps it until the code is entered"
    );
    assert_eq!(verify(&app, &code).await.0, 200);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    assert_eq!(app.number_state_as(&other, PHONE).await, None);
}

#[tokio::test]
async fn a_method_other_than_prompt_or_code_is_refused() {
    let app = code_app().await;
    let response = app.connect_by(&app.api_key, PHONE, "carrier-pigeon").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["message"],
        "method must be \"prompt\" (reply 'yes') or \"code\" (enter a texted code); got \
         `carrier-pigeon`"
    );
    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "prompt").await.status(),
        200
    );
}

#[tokio::test]
async fn providers_without_replies_refuse_the_prompt_and_point_to_codes() {
    for provider in ["textflow", "phonify"] {
        let app = spawn_app_sending_with(provider).await;
        for response in [
            app.connect(PHONE).await,
            app.connect_by(&app.api_key, PHONE, "prompt").await,
        ] {
            assert_eq!(response.status(), 400, "{provider}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(
                body["message"],
                format!(
                    "The SMS provider ({provider}) cannot receive replies, so a reply 'yes' \
                     cannot verify a number; use \"method\": \"code\" and POST the texted code \
                     to /api/phones/verify"
                )
            );
        }
        assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
    }
}

#[tokio::test]
async fn phonify_texts_momentlines_own_code() {
    let app = spawn_app_sending_with("phonify").await;
    answer_posts(
        &app.provider_api,
        "/v1/messages",
        ResponseTemplate::new(201).set_body_json(fixture("phonify/message.json")),
    )
    .await;
    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "code").await.status(),
        200
    );
    assert_eq!(app.drain().await.done, 1);
    let requests = requests_to(&app.provider_api, "/v1/messages").await;
    let sent: Value = serde_json::from_slice(&requests[0].body).expect("json");
    let text = sent["body"].as_str().expect("body");
    let code = &text["Your In Process code is ".len()..][..6];
    assert_eq!(
        sent,
        json!({"app": PHONIFY_APP, "to": PHONE,
               "body": format!("Your In Process code is {code}. It expires in 10 minutes.")})
    );
    assert_eq!(verify(&app, code).await.0, 200);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    app.drain().await;
    assert_eq!(
        requests_to(&app.provider_api, "/v1/messages").await.len(),
        1,
        "no confirmation text: it would say to text Moments, which cannot come back"
    );
}

#[tokio::test]
async fn textflow_makes_sends_and_checks_the_code_itself() {
    let app = spawn_app_sending_with("textflow").await;
    answer_first_post_then(
        &app.provider_api,
        "/api/send-code",
        ResponseTemplate::new(502),
        ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "status": 200, "message": "Verification code sent",
            "data": {"verification_code": "424242", "expires": 1_800_000_600_000_i64}
        })),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/api/verify-code"))
        .and(body_json(json!({"phone_number": PHONE, "code": "424242"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ok": true, "status": 200, "message": "Valid code", "valid": true}),
        ))
        .with_priority(1)
        .mount(&app.provider_api)
        .await;
    answer_posts(
        &app.provider_api,
        "/api/verify-code",
        ResponseTemplate::new(200).set_body_json(
            json!({"ok": true, "status": 200, "message": "Invalid code", "valid": false}),
        ),
    )
    .await;

    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "code").await.status(),
        200
    );
    let rounds = app.drain().await;
    assert_eq!(
        (rounds.retrying, rounds.done),
        (1, 1),
        "the outage is retried"
    );
    let sends = requests_to(&app.provider_api, "/api/send-code").await;
    assert_eq!(sends.len(), 2);
    for request in &sends {
        assert_eq!(
            request_header(request, "authorization"),
            Some(format!("Bearer {TEXTFLOW_API_KEY}").as_str())
        );
        let body: Value = serde_json::from_slice(&request.body).expect("json");
        assert_eq!(
            body,
            json!({"phone_number": PHONE, "service_name": "In Process", "seconds": 600})
        );
    }
    assert!(requests_to(&app.provider_api, "/api/send-sms")
        .await
        .is_empty());

    let (status, body) = verify(&app, "111111").await;
    assert_eq!((status, body["tries_left"].as_u64()), (400, Some(4)));
    let (status, body) = verify(&app, "424242").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    let checks = requests_to(&app.provider_api, "/api/verify-code").await;
    assert_eq!(checks.len(), 2);
    for (request, code) in checks.iter().zip(["111111", "424242"]) {
        assert_eq!(
            request_header(request, "authorization"),
            Some(format!("Bearer {TEXTFLOW_API_KEY}").as_str())
        );
        let body: Value = serde_json::from_slice(&request.body).expect("json");
        assert_eq!(body, json!({"phone_number": PHONE, "code": code}));
    }
}

#[tokio::test]
async fn textflow_codes_keep_local_tries_and_an_outage_spends_none() {
    let app = spawn_app_sending_with("textflow").await;
    answer_posts(
        &app.provider_api,
        "/api/send-code",
        ResponseTemplate::new(200).set_body_json(json!({"ok": true, "status": 200})),
    )
    .await;
    answer_first_post_then(
        &app.provider_api,
        "/api/verify-code",
        ResponseTemplate::new(503),
        ResponseTemplate::new(200).set_body_json(json!({"ok": true, "valid": false})),
    )
    .await;
    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "code").await.status(),
        200
    );
    app.drain().await;
    let (status, body) = verify(&app, "111111").await;
    assert_eq!(status, 502, "{body}");
    for left in (0..5).rev() {
        let (status, body) = verify(&app, "111111").await;
        assert_eq!((status, body["tries_left"].as_u64()), (400, Some(left)));
    }
    let response = app.verify_code_as(&app.api_key, PHONE, "424242").await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        requests_to(&app.provider_api, "/api/verify-code")
            .await
            .len(),
        6,
        "a dead code is not sent to TextFlow"
    );
}

#[tokio::test]
async fn a_code_the_provider_has_not_taken_yet_cannot_be_guessed_at() {
    let app = spawn_app().await;
    // The first attempt meets an outage; the retry is taken.
    telnyx_accepts_texts_after_first(&app.provider_api, ResponseTemplate::new(503)).await;
    assert_eq!(
        app.connect_by(&app.api_key, PHONE, "code").await.status(),
        200
    );
    app.send_round().await;
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE purpose = 'code' AND state = 'unconfirmed'"),
        1,
        "the code text waits for its retry"
    );
    // Nobody has a code yet: a guess is told so, and spends no try.
    for _ in 0..6 {
        let (status, body) = verify(&app, "123456").await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(
            body["message"],
            "The code has not been texted yet; try again in a moment"
        );
    }
    assert_eq!(
        app.count("SELECT tries FROM verification_codes"),
        0,
        "no try spent"
    );
    app.drain().await;
    let code = code_texted_to(&app, PHONE).await;
    let (status, body) = verify(&app, &code).await;
    assert_eq!(status, 200, "{body}");
}
