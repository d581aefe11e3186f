//! The story over Vonage: `/sms/json` out; signed GET, form and JSON webhooks in, with
//! multi-part messages joined.

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

async fn vonage_texts_to(app: &TestApp, phone: &str) -> Vec<Vec<(String, String)>> {
    requests_to(&app.provider_api, "/sms/json")
        .await
        .iter()
        .map(form_of)
        .filter(|f| field(f, "to") == Some(phone.trim_start_matches('+')))
        .collect()
}

async fn vonage_bodies_to(app: &TestApp, phone: &str) -> Vec<String> {
    vonage_texts_to(app, phone)
        .await
        .iter()
        .filter_map(|f| field(f, "text").map(str::to_owned))
        .collect()
}

/// The fixture's parts of one long message, signed, each with the given messageId suffix.
fn concat_parts() -> Vec<Vec<(String, String)>> {
    let parts = fixture("vonage/inbound.concat.parts.json");
    parts
        .as_array()
        .expect("parts")
        .iter()
        .map(|part| {
            let pairs: Vec<(String, String)> = part
                .as_object()
                .expect("object")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let borrowed: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            vonage_signed(&borrowed)
        })
        .collect()
}

#[tokio::test]
async fn the_whole_story_runs_over_vonage() {
    let app = spawn_app_sending_with("vonage").await;
    vonage_accepts_texts(&app.provider_api).await;

    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.drain().await;
    let sent = vonage_texts_to(&app, PHONE).await;
    assert_eq!(sent.len(), 1);
    let mut form = sent[0].clone();
    form.sort();
    let prompt = "Someone is trying to connect this phone number to the artist profile for \
                  Sweetman on In Process. If this was you, please reply 'yes'. If this was not \
                  you, please ignore this message.";
    let expected: Vec<(String, String)> = [
        ("api_key", VONAGE_API_KEY),
        ("api_secret", VONAGE_API_SECRET),
        ("from", "18445550001"),
        ("text", prompt),
        ("to", "14155552671"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(form, expected, "GSM-7 text: no type=unicode");

    // Yes by GET.
    let yes = app.vonage_text(PHONE, "Yes", &[]);
    assert_eq!(app.vonage_webhook(true, &yes).await.status(), 200);
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));

    // A long message in three parts, out of order, one part twice, one of them as JSON.
    let parts = concat_parts();
    assert_eq!(app.vonage_webhook(false, &parts[2]).await.status(), 200);
    assert_eq!(app.vonage_webhook(false, &parts[0]).await.status(), 200);
    assert_eq!(app.vonage_webhook(false, &parts[0]).await.status(), 200);
    assert_eq!(
        app.count("SELECT count(*) FROM moments"),
        0,
        "not before every part is in"
    );
    let as_json: serde_json::Map<String, Value> = parts[1]
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let response = send(app.http.post(app.url("/webhooks/vonage")).json(&as_json)).await;
    assert_eq!(response.status(), 200);
    for part in &parts {
        assert_eq!(
            app.vonage_webhook(false, part).await.status(),
            200,
            "late redelivery"
        );
    }
    app.drain().await;
    let moments = app.get_json("/api/moments").await;
    let moments = moments["moments"].as_array().expect("moments").clone();
    assert_eq!(moments.len(), 1);
    let description = moments[0]["description"].as_str().expect("text");
    assert!(description.starts_with("Tonight at the gallery"));
    assert!(description.contains("started outside in the cold and finished in the studio"));
    assert!(description.ends_with("tell me which one is your favourite."));
    let posted: Vec<String> = vonage_bodies_to(&app, PHONE)
        .await
        .into_iter()
        .filter(|b| b.starts_with("Moment posted"))
        .collect();
    assert_eq!(posted.len(), 1);

    // A delivery receipt for the prompt.
    let mut receipt = fixture_form("vonage/receipt.delivered.form");
    receipt.retain(|(k, _)| k != "messageId");
    receipt.push(("messageId".into(), format!("0B{:014}", 0)));
    let borrowed: Vec<(&str, &str)> = receipt
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        app.vonage_webhook(false, &vonage_signed(&borrowed))
            .await
            .status(),
        200
    );
    let messages = app.get_json("/api/messages?limit=1000").await;
    let prompt_state = messages["messages"]
        .as_array()
        .expect("messages")
        .last()
        .map(|m| m["state"].clone());
    assert_eq!(prompt_state, Some(json!("delivered")));

    // STOP.
    let stop = app.vonage_text(PHONE, "stop", &[]);
    assert_eq!(app.vonage_webhook(false, &stop).await.status(), 200);
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    assert!(vonage_bodies_to(&app, PHONE)
        .await
        .last()
        .is_some_and(|b| b.starts_with("You are unsubscribed")));
}

#[tokio::test]
async fn concurrent_last_parts_make_one_moment() {
    let app = spawn_app_sending_with("vonage").await;
    vonage_accepts_texts(&app.provider_api).await;
    app.verified(PHONE).await;
    let parts = concat_parts();
    assert_eq!(app.vonage_webhook(false, &parts[0]).await.status(), 200);
    let webhook = app.url("/webhooks/vonage");
    send_at_once_each_ok(
        (0..4)
            .flat_map(|_| &parts[1..])
            .map(|part| app.http.post(&webhook).form(part)),
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM moments"), 1);
}

#[tokio::test]
async fn non_gsm_texts_go_out_as_unicode() {
    let app = spawn_app_sending_with("vonage").await;
    vonage_accepts_texts(&app.provider_api).await;
    let key = create_artist(&app.store, "Zoë ✨ Studio").await;
    assert_eq!(app.connect_as(&key, PHONE).await.status(), 200);
    app.drain().await;
    let sent = vonage_texts_to(&app, PHONE).await;
    assert_eq!(field(&sent[0], "type"), Some("unicode"));
    let messages: Value = app
        .get_as(&key, "/api/messages")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(messages["messages"][0]["encoding"], "UCS-2");
    assert_eq!(messages["messages"][0]["segments"], 3);
}

#[tokio::test]
async fn vonage_webhooks_need_a_valid_sig_and_a_secret() {
    let app = spawn_app_sending_with("vonage").await;
    let mut params = app.vonage_text(PHONE, "hi", &[]);
    let unsigned: Vec<(String, String)> =
        params.iter().filter(|(k, _)| k != "sig").cloned().collect();
    assert_eq!(app.vonage_webhook(true, &unsigned).await.status(), 401);
    for (k, v) in &mut params {
        if k == "text" {
            *v = "tampered".into();
        }
    }
    assert_eq!(app.vonage_webhook(false, &params).await.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);

    let no_secret = spawn_app_with_env(&[("VONAGE_SIGNATURE_SECRET", "")], |_| {}).await;
    let signed = no_secret.vonage_text(PHONE, "hi", &[]);
    assert_eq!(no_secret.vonage_webhook(true, &signed).await.status(), 401);
}

#[tokio::test]
async fn a_signed_vonage_message_missing_its_fields_is_a_bad_request() {
    let app = spawn_app_sending_with("vonage").await;
    let no_sender = vonage_signed(&[("to", "18445550001"), ("messageId", "X1"), ("text", "hi")]);
    assert_eq!(app.vonage_webhook(false, &no_sender).await.status(), 400);
    let bad_part = app.vonage_text(
        PHONE,
        "hi",
        &[
            ("concat", "true"),
            ("concat-ref", "1"),
            ("concat-total", "2"),
            ("concat-part", "3"),
        ],
    );
    assert_eq!(app.vonage_webhook(false, &bad_part).await.status(), 400);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn a_vonage_body_that_cannot_be_read_cannot_be_signed() {
    let app = spawn_app_sending_with("vonage").await;
    let unreadable = app.http.post(app.url("/webhooks/vonage")).body("{not json");
    let response = send(unreadable.header("content-type", "application/json")).await;
    assert_eq!(response.status(), 401);
    // The Messages API's token may be good over such a body; it is refused all the same.
    let response = app
        .http
        .post(app.url("/webhooks/vonage"))
        .header("authorization", vonage_jwt("{not json"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn the_same_vonage_message_delivered_twice_has_one_effect() {
    let app = spawn_app_sending_with("vonage").await;
    vonage_accepts_texts(&app.provider_api).await;
    app.verified(PHONE).await;
    let text = app.vonage_text(PHONE, "one moment", &[]);
    assert_eq!(app.vonage_webhook(true, &text).await.status(), 200);
    assert_eq!(app.vonage_webhook(false, &text).await.status(), 200);
    app.drain().await;
    app.assert_one_moment_posted();
}

#[tokio::test]
async fn vonage_throttling_and_bad_credentials_pause_sending_and_spend_no_attempt() {
    let app = spawn_app_sending_with("vonage").await;
    answer_first_post_then(
        &app.provider_api,
        "/sms/json",
        ResponseTemplate::new(200).set_body_json(fixture("vonage/send.error.throttled.json")),
        ResponseTemplate::new(200).set_body_json(fixture("vonage/send.error.credentials.json")),
    )
    .await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let first = app.send_round().await;
    assert_eq!(first.retrying, 1, "throttled waits");
    let prompt = app.get_json("/api/messages").await["messages"][0].clone();
    assert_eq!(prompt["attempts"], 0, "being throttled spends no attempt");
    assert!(prompt["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("vonage status 1")));

    // Throttled without a Retry-After waits a second.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let second = app.send_round().await;
    assert_eq!(second.retrying, 1, "bad credentials pause sending");
    let prompt = app.get_json("/api/messages").await["messages"][0].clone();
    assert_eq!(
        prompt["state"], "unconfirmed",
        "the text waits for new credentials"
    );
    assert_eq!(prompt["attempts"], 0);
    assert_eq!(prompt["error"], "vonage status 4: Bad Credentials");
    let wait = app.count(&format!(
        "SELECT {} FROM jobs",
        secs_until_sql(app.engine(), "run_after")
    ));
    assert!((55..=60).contains(&wait), "tried again in {wait} s");
}

#[tokio::test]
async fn a_long_text_vonage_took_in_part_is_sent_and_not_repeated() {
    let app = spawn_app_sending_with("vonage").await;
    answer_posts(
        &app.provider_api,
        "/sms/json",
        ResponseTemplate::new(200).set_body_json(json!({
            "message-count": "2",
            "messages": [
                {"to": "14155552671", "message-id": "0B0000000000AAAA", "status": "0"},
                {"status": "1", "error-text": "Throughput Rate Exceeded"}
            ]
        })),
    )
    .await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    assert_eq!(app.drain().await.done, 1);
    let messages = app.get_json("/api/messages").await;
    assert_eq!(messages["messages"][0]["state"], "sent");
    assert_eq!(
        messages["messages"][0]["provider_message_id"],
        "0B0000000000AAAA"
    );
    assert_eq!(requests_to(&app.provider_api, "/sms/json").await.len(), 1);
}

#[tokio::test]
async fn an_mms_with_two_photos_over_vonages_messages_api_becomes_two_kept_moments() {
    let app = spawn_app_sending_with("vonage").await;
    vonage_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let yes = app.vonage_text(PHONE, "yes", &[]);
    assert_eq!(app.vonage_webhook(true, &yes).await.status(), 200);
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));

    // The Messages API delivers each photo of an MMS as a message of its own.
    let photos: [(&str, &[u8]); 2] = [
        ("/v3/media/one.jpg", b"\xff\xd8\xffone"),
        ("/v3/media/two.png", b"\x89PNGtwo"),
    ];
    for (n, (at, bytes)) in photos.iter().enumerate() {
        let content_type = if at.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        Mock::given(method("GET"))
            .and(path(*at))
            .respond_with(ResponseTemplate::new(200).set_body_raw(bytes.to_vec(), content_type))
            .mount(&app.provider_api)
            .await;
        let mut event = fixture("vonage/messages.inbound.image.json");
        event["message_uuid"] = json!(format!("aaaaaaaa-bbbb-4ccc-8ddd-00000000000{n}"));
        event["image"]["url"] = json!(format!("{}{at}", app.provider_api.uri()));
        let response = app
            .vonage_messages_post(&event, &vonage_jwt(&event.to_string()))
            .await;
        assert_eq!(response.status(), 200);
    }
    app.drain().await;
    assert_eq!(app.drain_media().await.done, 2);
    app.drain().await;
    let moments = app.get_json("/api/moments").await;
    let moments = moments["moments"].as_array().expect("moments").clone();
    assert_eq!(moments.len(), 2);
    for m in &moments {
        assert_eq!(m["title"], "Two views of the harbour");
        assert_eq!(m["media"]["state"], "kept");
        assert!(m["media"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(PUBLIC_URL)));
    }
    assert!(moments[0]["media"]["url"]
        .as_str()
        .is_some_and(|u| u.ends_with(".png")));
    let posted = vonage_bodies_to(&app, PHONE)
        .await
        .into_iter()
        .filter(|b| b.starts_with("Moment posted"))
        .count();
    assert_eq!(posted, 2);

    // STOP by the Messages API too.
    let stop = fixture("vonage/messages.inbound.text.json");
    let response = app
        .vonage_messages_post(&stop, &vonage_jwt(&stop.to_string()))
        .await;
    assert_eq!(response.status(), 200);
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
}

#[tokio::test]
async fn messages_api_webhooks_need_a_token_signed_over_this_body() {
    let app = spawn_app_sending_with("vonage").await;
    let event = fixture("vonage/messages.inbound.text.json");
    let other = fixture("vonage/messages.inbound.image.json");
    for authorization in [
        vonage_jwt(&other.to_string()),
        "Bearer not.a.token".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
    ] {
        let response = app.vonage_messages_post(&event, &authorization).await;
        assert_eq!(response.status(), 401, "{authorization}");
    }
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}
