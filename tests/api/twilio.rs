//! The story over Twilio: Messages.json out, signed form posts in.

use wiremock::ResponseTemplate;

use crate::helpers::*;

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json")
}

async fn twilio_bodies_to(app: &TestApp, phone: &str) -> Vec<String> {
    requests_to(&app.provider_api, &messages_path())
        .await
        .iter()
        .map(form_of)
        .filter(|f| field(f, "To") == Some(phone))
        .filter_map(|f| field(&f, "Body").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_whole_story_runs_over_twilio() {
    let app = spawn_app_sending_with("twilio").await;
    twilio_accepts_texts(&app.provider_api).await;

    // Connect: the prompt goes out through Messages.json exactly as Twilio documents it.
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.drain().await;
    let requests = requests_to(&app.provider_api, &messages_path()).await;
    assert_eq!(requests.len(), 1);
    let basic = basic_auth(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN);
    assert_eq!(
        request_header(&requests[0], "authorization"),
        Some(basic.as_str())
    );
    let mut form = form_of(&requests[0]);
    form.sort();
    let prompt = "Someone is trying to connect this phone number to the artist profile for \
                  Sweetman on In Process. If this was you, please reply 'yes'. If this was not \
                  you, please ignore this message.";
    let expected: Vec<(String, String)> = [
        ("Body", prompt),
        ("From", OUR_NUMBER),
        (
            "StatusCallback",
            "https://moments.example/webhooks/twilio/status",
        ),
        ("To", PHONE),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(form, expected);
    let messages = app.get_json("/api/messages").await;
    assert_eq!(
        messages["messages"][0]["provider_message_id"],
        format!("SM{:032}", 0)
    );
    assert_eq!(messages["messages"][0]["segments"], 2);
    assert_eq!(messages["messages"][0]["encoding"], "GSM-7");

    // Yes: verified, answered with empty TwiML and confirmed by text.
    let response = app.twilio_text(PHONE, "yes", &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_of(&response, "content-type"), Some("text/xml"));
    assert_eq!(
        response.text().await.expect("body"),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
    );
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    assert!(twilio_bodies_to(&app, PHONE).await[1].starts_with("Connected to Sweetman"));

    // An MMS with two photos: two Moments, one reply with both links.
    let mut mms = fixture_form("twilio/inbound.mms.form");
    for (k, v) in &mut mms {
        if k.starts_with("MediaUrl") {
            *v = v.replace("https://api.twilio.com", &app.provider_api.uri());
        }
    }
    let borrowed: Vec<(&str, &str)> = mms.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        app.twilio_post("/webhooks/twilio", &borrowed)
            .await
            .status(),
        200
    );
    // Twilio serves the two photos: each Moment is posted once its file is kept.
    let media = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/\
                 MM5f1c2a3b4c5d6e7f8091a2b3c4d5e6f7/Media";
    for (id, content_type, bytes) in [
        (
            "ME0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "image/jpeg",
            crate::media::JPEG,
        ),
        (
            "ME1b2c3d4e5f60718293a4b5c6d7e8f9a0",
            "image/png",
            crate::media::PNG,
        ),
    ] {
        crate::media::serve(&app, &format!("{media}/{id}"), content_type, bytes).await;
    }
    app.drain_all().await;
    let moments = app.get_json("/api/moments").await;
    let moments = moments["moments"].as_array().expect("moments").clone();
    assert_eq!(moments.len(), 2);
    assert!(moments
        .iter()
        .all(|m| m["title"] == "Two views of the harbour"));
    assert_eq!(moments[1]["media"]["content_type"], "image/jpeg");
    assert_eq!(moments[0]["media"]["content_type"], "image/png");
    assert!(twilio_bodies_to(&app, PHONE)
        .await
        .last()
        .is_some_and(|b| b.starts_with("2 Moments posted: ")));

    // A status callback moves the prompt to delivered.
    let status = fixture_form("twilio/status.delivered.form");
    let borrowed: Vec<(&str, &str)> = status
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = app.twilio_post("/webhooks/twilio/status", &borrowed).await;
    assert_eq!(response.status(), 200);
    let messages = app.get_json("/api/messages?limit=1000").await;
    let prompt = messages["messages"]
        .as_array()
        .expect("messages")
        .last()
        .cloned()
        .expect("the prompt");
    assert_eq!(prompt["state"], "delivered");

    // STOP: opted out, one confirmation, then silence.
    assert_eq!(app.twilio_text(PHONE, "STOP", &[]).await.status(), 200);
    app.twilio_text(PHONE, "another photo?", &[]).await;
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    let bodies = twilio_bodies_to(&app, PHONE).await;
    assert!(bodies
        .last()
        .is_some_and(|b| b.starts_with("You are unsubscribed")));
    assert_eq!(
        bodies.len(),
        4,
        "prompt, confirmation, moments, opt-out: {bodies:?}"
    );
}

/// A post of `form` to Twilio's message webhook, with `signature` as its signature if any.
async fn message_webhook(
    app: &TestApp,
    signature: Option<String>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let request = app.http.post(app.url("/webhooks/twilio")).form(form);
    send(match signature {
        Some(signature) => request.header("x-twilio-signature", signature),
        None => request,
    })
    .await
}

#[tokio::test]
async fn twilio_webhooks_need_a_valid_signature_and_a_token() {
    let app = spawn_app_sending_with("twilio").await;
    let params = [
        ("MessageSid", "SM1"),
        ("From", PHONE),
        ("To", OUR_NUMBER),
        ("Body", "hi"),
    ];
    let unsigned = message_webhook(&app, None, &params).await;
    assert_eq!(unsigned.status(), 401);
    let signed = twilio_signature("/webhooks/twilio", &params);
    let other_body = [
        ("MessageSid", "SM1"),
        ("From", PHONE),
        ("To", OUR_NUMBER),
        ("Body", "bye"),
    ];
    let forged = message_webhook(&app, Some(signed), &other_body).await;
    assert_eq!(forged.status(), 401);
    // Signed for the status path, posted to the message path.
    let for_status = twilio_signature("/webhooks/twilio/status", &params);
    let misdirected = message_webhook(&app, Some(for_status), &params).await;
    assert_eq!(misdirected.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);

    let no_token = spawn_app_with_env(&[("TWILIO_AUTH_TOKEN", "")], |_| {}).await;
    let response = no_token.twilio_post("/webhooks/twilio", &params).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_signed_twilio_post_without_its_fields_is_a_bad_request() {
    let app = spawn_app_sending_with("twilio").await;
    let response = app.twilio_post("/webhooks/twilio", &[("Body", "hi")]).await;
    assert_eq!(response.status(), 400);
    let response = app
        .twilio_post("/webhooks/twilio/status", &[("MessageSid", "SM1")])
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[tokio::test]
async fn a_signed_twilio_post_with_the_default_port_in_the_url_is_accepted() {
    let app = spawn_app_sending_with("twilio").await;
    let params = [
        ("MessageSid", "SM9"),
        ("From", PHONE),
        ("To", OUR_NUMBER),
        ("Body", "hi"),
    ];
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signature = momentline::providers::twilio::signature(
        TWILIO_AUTH_TOKEN,
        "https://moments.example:443/webhooks/twilio",
        &owned,
    );
    let response = message_webhook(&app, Some(signature), &params).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn twilio_saying_the_recipient_unsubscribed_opts_the_number_out() {
    let app = spawn_app_sending_with("twilio").await;
    answer_posts(
        &app.provider_api,
        messages_path(),
        ResponseTemplate::new(400).set_body_json(fixture("twilio/error.unsubscribed.json")),
    )
    .await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    let messages = app.get_json("/api/messages").await;
    assert_eq!(messages["messages"][0]["state"], "error");
    assert_eq!(
        messages["messages"][0]["error"],
        "twilio 400: 21610 Attempt to send to unsubscribed recipient"
    );
}

#[tokio::test]
async fn a_twilio_authentication_error_pauses_sending_and_spends_no_attempt() {
    let app = spawn_app_sending_with("twilio").await;
    answer_posts(
        &app.provider_api,
        messages_path(),
        ResponseTemplate::new(401).set_body_json(fixture("twilio/error.authenticate.json")),
    )
    .await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let round = app.drain().await;
    assert_eq!((round.failed, round.retrying), (0, 1));
    let prompt = app.get_json("/api/messages").await["messages"][0].clone();
    assert_eq!(
        prompt["state"], "unconfirmed",
        "the text waits for new credentials"
    );
    assert_eq!(prompt["error"], "twilio 401: 20003 Authenticate");
    assert_eq!(prompt["attempts"], 0);
    let wait = app.count(&format!(
        "SELECT {} FROM jobs",
        secs_until_sql(app.engine(), "run_after")
    ));
    assert!((55..=60).contains(&wait), "tried again in {wait} s");
    assert_eq!(
        requests_to(&app.provider_api, &messages_path()).await.len(),
        1
    );
}

#[tokio::test]
async fn a_twilio_429_waits_as_told() {
    let app = spawn_app_sending_with("twilio").await;
    answer_posts(
        &app.provider_api,
        messages_path(),
        ResponseTemplate::new(429).insert_header("retry-after", "30"),
    )
    .await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let round = app.drain().await;
    assert_eq!((round.failed, round.retrying), (0, 1));
    let prompt = app.get_json("/api/messages").await["messages"][0].clone();
    assert_eq!(prompt["state"], "unconfirmed");
    assert_eq!(prompt["error"], "twilio 429");
}

#[tokio::test]
async fn the_same_twilio_message_posted_twice_has_one_effect() {
    let app = spawn_app_sending_with("twilio").await;
    twilio_accepts_texts(&app.provider_api).await;
    app.verified(PHONE).await;
    let params = [
        ("MessageSid", "MM0123456789abcdef0123456789abcdef"),
        ("From", PHONE),
        ("To", OUR_NUMBER),
        ("Body", "one moment"),
        ("NumMedia", "0"),
    ];
    for _ in 0..2 {
        assert_eq!(
            app.twilio_post("/webhooks/twilio", &params).await.status(),
            200
        );
    }
    app.drain().await;
    app.assert_one_moment_posted();
}

#[tokio::test]
async fn a_status_callback_saying_the_recipient_unsubscribed_opts_the_number_out() {
    let app = spawn_app_sending_with("twilio").await;
    twilio_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.drain().await;
    let sid = format!("SM{:032}", 0);
    let params = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "failed"),
        ("ErrorCode", "21610"),
        ("To", PHONE),
    ];
    let response = app.twilio_post("/webhooks/twilio/status", &params).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    let messages = app.get_json("/api/messages").await;
    assert_eq!(messages["messages"][0]["state"], "error");
    assert_eq!(messages["messages"][0]["error"], "twilio error 21610");
}
