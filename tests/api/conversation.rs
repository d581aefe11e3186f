//! The story over Telnyx webhooks: yes, Moments, keywords, expiry and takeover.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn a_signed_yes_verifies_the_number_and_confirms_by_text() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    // Texted to a second number of ours: the reply must come from that one.
    let mut yes: Value = serde_json::from_str(&app.sms_event(PHONE, "Yes!")).expect("json");
    yes["data"]["payload"]["to"][0]["phone_number"] = json!(OTHER_NUMBER);
    assert_eq!(app.telnyx_webhook(&yes.to_string()).await.status(), 200);
    app.drain().await;

    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    let texts = app.texts_to(PHONE).await;
    assert_eq!(texts.len(), 2);
    assert_eq!(
        texts[1],
        "Connected to Sweetman on In Process. Text a photo, link or words to post a Moment. \
         Reply HELP for help, STOP to opt out."
    );
    let sent = app.sent_to_telnyx().await;
    assert_eq!(
        sent[0]["from"], OUR_NUMBER,
        "the prompt comes from the configured sender"
    );
    assert_eq!(sent[1]["from"], OTHER_NUMBER);
    let history = app.count(
        "SELECT count(*) FROM number_state_changes
         WHERE e164 = '+14155552671' AND to_state = 'verified' AND cause = 'inbound'
           AND message_id IS NOT NULL",
    );
    assert_eq!(history, 1);
}

#[tokio::test]
async fn a_photo_mms_becomes_one_moment_per_image_with_links_texted_back() {
    let app = spawn_verified_app().await;

    let event = fixture("telnyx/message.received.mms.json")
        .to_string()
        .replace("https://media.telnyx.example", &app.provider_api.uri());
    assert_eq!(app.telnyx_webhook(&event).await.status(), 200);
    app.drain().await;

    // Until the media keeper has a copy, there is no URL of momentline's to give, and the
    // Moment is not posted: it waits for its file.
    let moments = app.get_json("/api/moments").await;
    let moments = moments["moments"].as_array().expect("moments").clone();
    assert_eq!(moments.len(), 2, "SMIL is not a Moment");
    // Newest first: the PNG came second.
    let jpg = &moments[1];
    assert_eq!(jpg["kind"], "media");
    let source = format!("{}/9b2f/IMG_0001.jpg", app.provider_api.uri());
    assert_eq!(
        jpg["media"],
        json!({"url": null, "source_url": source, "content_type": "image/jpeg", "state": "fetching"})
    );
    assert_eq!(jpg["state"], "pending");
    let page = app.get_keyless(&format!("/moments/{}", jpg["id"])).await;
    assert_eq!(page.status(), 404, "not posted until its file is kept");

    crate::media::serve(&app, "/9b2f/IMG_0001.jpg", "image/jpeg", crate::media::JPEG).await;
    crate::media::serve(&app, "/9b2f/IMG_0002.png", "image/png", crate::media::PNG).await;
    app.drain_all().await;
    let moments = app.get_json("/api/moments").await;
    let moments = moments["moments"].as_array().expect("moments").clone();
    let (png, jpg) = (&moments[0], &moments[1]);
    assert_eq!(png["media"]["content_type"], "image/png");
    assert_eq!(jpg["media"]["state"], "kept");
    for m in [png, jpg] {
        assert_eq!(m["title"], "Studio light");
        assert_eq!(m["description"], "Studio light");
        assert_eq!(m["price"], "5");
        assert_eq!(m["state"], "created");
        assert_eq!(m["artist"], ARTIST);
    }
    let jpg_url = format!("{PUBLIC_URL}/moments/{}", jpg["id"]);
    let png_url = format!("{PUBLIC_URL}/moments/{}", png["id"]);
    assert_eq!(jpg["url"], jpg_url.as_str());
    let texts = app.texts_to(PHONE).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some(format!("2 Moments posted: {jpg_url} {png_url}").as_str())
    );

    let page = app
        .http
        .get(app.url(&format!("/moments/{}", jpg["id"])))
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), 200);
    assert!(header_of(&page, "content-type").is_some_and(|v| v.starts_with("text/html")));
    let html = page.text().await.expect("html");
    assert!(html.contains("<h1>Studio light</h1>"), "{html}");
    assert!(html.contains("by Sweetman"));
    assert!(html.contains("5 USDC"));
    assert!(html.contains(&format!("{PUBLIC_URL}/media/")), "{html}");
    assert!(
        !html.contains(&app.provider_api.uri()),
        "provider URLs are not published"
    );
}

#[tokio::test]
async fn a_text_with_a_url_becomes_a_link_moment() {
    let app = spawn_verified_app().await;
    app.text_and_drain(PHONE, "title: New film\nwatch https://youtu.be/abc123.")
        .await;

    let m = &app.newest_moment().await;
    assert_eq!(m["kind"], "link");
    assert_eq!(m["link"], "https://youtu.be/abc123");
    assert_eq!(m["title"], "New film");
    assert_eq!(m["description"], "watch https://youtu.be/abc123.");
    assert_eq!(m["price"], "1");
    let url = m["url"].as_str().expect("url");
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some(format!("Moment posted: {url}").as_str())
    );
    let html = app
        .http
        .get(url.replace(PUBLIC_URL, &app.address))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("html");
    assert!(html.contains("<a href=\"https://youtu.be/abc123\">"));
}

#[tokio::test]
async fn a_plain_text_becomes_a_text_moment_and_html_is_escaped_on_its_page() {
    let app = spawn_verified_app().await;
    app.text_and_drain(PHONE, "<script>alert(1)</script> & friends\nprice: free")
        .await;
    let m = &app.newest_moment().await;
    assert_eq!(m["kind"], "text");
    assert_eq!(m["price"], "0");
    let id = m["id"].as_i64().expect("id");
    let html = app.page(&format!("/moments/{id}")).await;
    assert!(!html.contains("<script>"));
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; friends"));
}

#[tokio::test]
async fn a_video_only_mms_is_refused_with_a_pointer_to_links() {
    let app = spawn_verified_app().await;
    let mut event = fixture("telnyx/message.received.mms.json");
    event["data"]["payload"]["media"] = json!([
        {"url": "https://media.telnyx.example/v/clip.mp4", "content_type": "video/mp4", "size": 9}
    ]);
    assert_eq!(app.telnyx_webhook(&event.to_string()).await.status(), 200);
    app.drain().await;
    assert_eq!(app.count("SELECT count(*) FROM moments"), 0);
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some("Videos are not supported. Text a link to the video instead.")
    );
}

#[tokio::test]
async fn a_photo_with_a_video_is_posted_then_the_video_refused_in_that_order() {
    let app = spawn_verified_app().await;
    let mut event = fixture("telnyx/message.received.mms.json");
    let stand_in = app.provider_api.uri();
    event["data"]["payload"]["media"] = json!([
        {"url": format!("{stand_in}/p/a.jpg"), "content_type": "image/jpeg", "size": 9},
        {"url": format!("{stand_in}/v/clip.mp4"), "content_type": "video/mp4", "size": 9}
    ]);
    crate::media::serve(&app, "/p/a.jpg", "image/jpeg", crate::media::JPEG).await;
    assert_eq!(app.telnyx_webhook(&event.to_string()).await.status(), 200);
    app.drain_all().await;
    assert_eq!(app.count("SELECT count(*) FROM moments"), 1);
    let texts = app.texts_to(PHONE).await;
    let last_two: Vec<&str> = texts[texts.len() - 2..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        last_two,
        [
            format!("Moment posted: {PUBLIC_URL}/moments/1").as_str(),
            "Videos are not supported. Text a link to the video instead."
        ]
    );
}

#[tokio::test]
async fn an_unknown_number_is_welcomed_once_a_day() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    app.text(PHONE, "hello?").await;
    app.text_and_drain(PHONE, "anyone?").await;
    let welcome = "This number is not connected to an In Process artist. Connect it at \
                   https://inprocess.world/manage Reply STOP to opt out.";
    assert_eq!(app.texts_to(PHONE).await, [welcome]);
    assert_eq!(app.count("SELECT count(*) FROM moments"), 0);

    // Twenty-three hours later: still no second welcome.
    app.backdate_messages(23 * 3600);
    app.text_and_drain(PHONE, "hello again").await;
    assert_eq!(app.texts_to(PHONE).await.len(), 1);

    // A day and more later: welcomed again.
    app.backdate_messages(2 * 3600);
    app.text_and_drain(PHONE, "and again").await;
    assert_eq!(app.texts_to(PHONE).await, [welcome, welcome]);
}

#[tokio::test]
async fn texts_from_a_number_that_has_not_said_yes_stay_private() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.text_and_drain(PHONE, "who is this? my address is 1 Main St")
        .await;
    let messages = app.get_json("/api/messages").await;
    let bodies = texts_at(&messages["messages"], "body");
    assert_eq!(bodies.len(), 1, "only the prompt: {bodies:?}");
    assert!(bodies[0].starts_with("Someone is trying"));
}

#[tokio::test]
async fn stop_silences_the_number_until_start() {
    let app = spawn_verified_app().await;

    app.text_and_drain(PHONE, "stop").await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    let after_stop = app.texts_to(PHONE).await;
    assert_eq!(
        after_stop.last().map(String::as_str),
        Some("You are unsubscribed and will get no more texts from In Process. Reply START to resubscribe.")
    );

    for text in ["a new drawing", "HELP", "STOP", "yes"] {
        app.text(PHONE, text).await;
    }
    app.drain().await;
    assert_eq!(app.texts_to(PHONE).await, after_stop, "silence");
    assert_eq!(app.count("SELECT count(*) FROM moments"), 0);

    app.text_and_drain(PHONE, "Start").await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some("You are resubscribed to In Process texts. Reply HELP for help, STOP to opt out.")
    );

    app.text_and_drain(PHONE, "help").await;
    assert!(app.texts_to(PHONE).await.last().is_some_and(
        |t| t.starts_with("Text a photo, audio, PDF, link or words to post a Moment.")
    ));
    assert_eq!(app.count("SELECT count(*) FROM moments"), 0);
}

#[tokio::test]
async fn a_reply_queued_before_stop_is_never_sent() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.text_and_drain(PHONE, "STOP").await;
    let texts = app.texts_to(PHONE).await;
    assert_eq!(texts.len(), 1, "only the opt-out confirmation: {texts:?}");
    assert!(texts[0].starts_with("You are unsubscribed"));
    let messages = app.get_json("/api/messages").await;
    let prompt = messages["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["body"].as_str().is_some_and(|b| b.starts_with("Someone")))
        .cloned()
        .expect("the prompt");
    assert_eq!(prompt["state"], "error");
    assert_eq!(prompt["error"], "recipient opted out");
}

#[tokio::test]
async fn a_pending_number_is_reminded_a_few_times_an_hour() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    for text in ["what?", "who is this", "hm", "??", "HELP"] {
        app.text(PHONE, text).await;
    }
    app.drain().await;
    let texts = app.texts_to(PHONE).await;
    assert_eq!(texts.len(), 1 + 3, "prompt and three reminders: {texts:?}");
    assert_eq!(
        texts[1],
        "Reply 'yes' to connect this phone to Sweetman on In Process, or ignore this message. \
         Reply STOP to opt out."
    );
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("pending"));
}

#[tokio::test]
async fn a_yes_after_the_request_expired_is_told_to_connect_again() {
    let app = spawn_app_with_env(&[("MOMENTLINE_PENDING_TTL_SECS", "0")], |_| {}).await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.text_and_drain(PHONE, "yes").await;
    assert_eq!(app.number_state(PHONE).await, None, "unknown again");
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some("This connect request expired. Please connect your phone again from In Process.")
    );
}

#[tokio::test]
async fn a_verified_number_moves_to_another_artist_only_on_its_owners_yes() {
    // The per-number prompt cooldown would hold the rival's prompt back for a minute.
    let app = spawn_app_with(|s| s.connect_limits.prompt_cooldown = chrono::Duration::zero()).await;
    telnyx_accepts_texts(&app.provider_api).await;
    app.verified(PHONE).await;
    let rival = create_artist(&app.store, "Rival").await;

    let response = app.connect_as(&rival, PHONE).await;
    assert_eq!(response.status(), 200);
    app.drain().await;
    assert!(app
        .texts_to(PHONE)
        .await
        .last()
        .is_some_and(|t| t.contains("artist profile for Rival")));
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    assert_eq!(
        app.number_state_as(&rival, PHONE).await.as_deref(),
        Some("pending")
    );

    // Until the yes, Moments still go to the owner.
    app.text_and_drain(PHONE, "still mine").await;
    let moments = app.get_json("/api/moments").await;
    assert_eq!(moments["moments"].as_array().map(Vec::len), Some(1));

    app.text_and_drain(PHONE, "yes").await;
    assert_eq!(app.number_state(PHONE).await, None);
    assert_eq!(
        app.number_state_as(&rival, PHONE).await.as_deref(),
        Some("verified")
    );
    assert!(app
        .texts_to(PHONE)
        .await
        .last()
        .is_some_and(|t| t.starts_with("Connected to Rival")));

    app.text(PHONE, "now for Rival").await;
    let theirs: Value = app
        .get_as(&rival, "/api/moments")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["moments"][0]["title"], "now for Rival");
}

#[tokio::test]
async fn a_takeover_request_that_expired_leaves_the_owner_in_place() {
    let app = spawn_app_with_env(&[("MOMENTLINE_PENDING_TTL_SECS", "0")], |s| {
        s.connect_limits.prompt_cooldown = chrono::Duration::zero();
    })
    .await;
    telnyx_accepts_texts(&app.provider_api).await;
    // With no time to answer, verify the owner directly.
    app.execute(
        "INSERT INTO phone_numbers (e164, state, owner_id, updated_at)
         VALUES ('+14155552671', 'verified', 1, '2026-01-01T00:00:00.000Z')",
        params![],
    );
    let rival = create_artist(&app.store, "Rival").await;
    assert_eq!(app.connect_as(&rival, PHONE).await.status(), 200);
    assert_eq!(
        app.number_state_as(&rival, PHONE).await,
        None,
        "expired at once"
    );
    app.text_and_drain(PHONE, "yes").await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some("This connect request expired. Please connect your phone again from In Process.")
    );
}

#[tokio::test]
async fn the_same_webhook_delivered_twice_has_one_effect() {
    let app = spawn_verified_app().await;
    let event = app.sms_event(PHONE, "one moment only");
    for _ in 0..2 {
        let response = app.telnyx_webhook(&event).await;
        assert_eq!(response.status(), 200);
    }
    app.drain().await;
    assert_eq!(app.count("SELECT count(*) FROM moments"), 1);
    let posted = app
        .texts_to(PHONE)
        .await
        .iter()
        .filter(|t| t.starts_with("Moment posted"))
        .count();
    assert_eq!(posted, 1);
}

#[tokio::test]
async fn the_same_webhook_delivered_concurrently_has_one_effect() {
    let app = spawn_verified_app().await;
    let event = app.sms_event(PHONE, "raced moment");
    let now = chrono::Utc::now().timestamp();
    let signature = telnyx_signature(now, &event);
    send_at_once_each_ok((0..8).map(|_| {
        app.http
            .post(app.url("/webhooks/telnyx"))
            .header("telnyx-timestamp", now.to_string())
            .header("telnyx-signature-ed25519", signature.clone())
            .body(event.clone())
    }))
    .await;
    app.drain().await;
    app.assert_one_moment_posted();
}

#[tokio::test]
async fn delivery_reports_move_outbound_texts_forward_only() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.drain().await;
    let provider_id = "40385f64-0000-4000-8000-000000000000";

    let mut delivered = fixture("telnyx/message.finalized.json");
    delivered["data"]["payload"]["id"] = json!(provider_id);
    assert_eq!(
        app.telnyx_webhook(&delivered.to_string()).await.status(),
        200
    );
    let mut late_sent = delivered.clone();
    late_sent["data"]["event_type"] = json!("message.sent");
    late_sent["data"]["payload"]["to"][0]["status"] = json!("sent");
    assert_eq!(
        app.telnyx_webhook(&late_sent.to_string()).await.status(),
        200
    );

    let messages = app.get_json("/api/messages").await;
    assert_eq!(messages["messages"][0]["state"], "delivered");
}

#[tokio::test]
async fn a_delivery_report_that_beats_the_send_record_is_applied_when_it_lands() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    // Telnyx reports delivery of the id it is about to hand out before the worker writes it.
    let mut delivered = fixture("telnyx/message.finalized.json");
    delivered["data"]["payload"]["id"] = json!("40385f64-0000-4000-8000-000000000000");
    let response = app.telnyx_webhook(&delivered.to_string()).await;
    assert_eq!(response.status(), 200);
    app.drain().await;
    let messages = app.get_json("/api/messages").await;
    assert_eq!(messages["messages"][0]["state"], "delivered");
    assert_eq!(app.count("SELECT count(*) FROM early_status_reports"), 0);
}

/// Telnyx's delivery report on the text it gave `id`: not sent, the recipient opted out.
fn opted_out_report(id: &str) -> String {
    let mut report = fixture("telnyx/message.finalized.json");
    report["data"]["payload"]["id"] = json!(id);
    report["data"]["payload"]["to"][0]["status"] = json!("sending_failed");
    report["data"]["payload"]["errors"] =
        fixture("telnyx/send.error.opted_out.json")["errors"].clone();
    report.to_string()
}

#[tokio::test]
async fn a_delivery_report_saying_the_recipient_opted_out_opts_the_number_out() {
    let app = spawn_verified_app().await;
    let blocked = opted_out_report("40385f64-0000-4000-8000-000000000001");
    assert_eq!(app.telnyx_webhook(&blocked).await.status(), 200);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    assert_eq!(app.connect(PHONE).await.status(), 409);
}

#[tokio::test]
async fn an_opt_out_report_that_beats_the_send_record_still_opts_the_number_out() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let blocked = opted_out_report("40385f64-0000-4000-8000-000000000000");
    assert_eq!(app.telnyx_webhook(&blocked).await.status(), 200);
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    let messages = app.get_json("/api/messages").await;
    assert_eq!(messages["messages"][0]["state"], "error");
}

#[tokio::test]
async fn a_redelivered_opt_out_report_does_not_undo_a_later_start() {
    let app = spawn_verified_app().await;
    // The confirmation of the verification, the second text sent.
    let blocked = opted_out_report("40385f64-0000-4000-8000-000000000001");
    assert_eq!(app.telnyx_webhook(&blocked).await.status(), 200);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("opted_out"));
    app.text(PHONE, "START").await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
    assert_eq!(app.telnyx_webhook(&blocked).await.status(), 200);
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));
}

#[tokio::test]
async fn a_failed_delivery_report_marks_the_text_as_error_with_its_reason() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.drain().await;
    let mut failed = fixture("telnyx/message.finalized.json");
    failed["data"]["payload"]["id"] = json!("40385f64-0000-4000-8000-000000000000");
    failed["data"]["payload"]["to"][0]["status"] = json!("delivery_failed");
    failed["data"]["payload"]["errors"] =
        json!([{"code": "40008", "title": "Undeliverable", "detail": "Carrier rejected"}]);
    assert_eq!(app.telnyx_webhook(&failed.to_string()).await.status(), 200);
    let messages = app.get_json("/api/messages").await;
    assert_eq!(messages["messages"][0]["state"], "error");
    assert_eq!(messages["messages"][0]["error"], "40008 Carrier rejected");
}
