//! Events to the host: every change of a number or a Moment the host should know of is
//! delivered as a signed Standard Webhook, with an id that stays the same across retries.

use std::time::Duration;

use momentline::domain::JobKind;
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::helpers::*;
use crate::host::{assert_signed, spawn_host_app, SECRET};

/// The app with events going to a stand-in host's `/events`.
async fn spawn_events_app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![("MOMENTLINE_EVENTS_SECRET", SECRET)];
    env.extend_from_slice(extra);
    spawn_app_with_host("/events", "MOMENTLINE_EVENTS_URL", &env).await
}

fn events_answer(template: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/events"))
        .respond_with(template)
}

/// Every event the host was sent (each checked for its signature): its id and its body.
async fn delivered(app: &TestApp, at: &str) -> Vec<(String, Value)> {
    let requests: Vec<Request> = requests_to(app.host.as_ref().expect("a host"), at).await;
    requests
        .iter()
        .map(|request| {
            assert_signed(request);
            let id = request_header(request, "webhook-id").expect("an id");
            let body: Value = serde_json::from_slice(&request.body).expect("json");
            (id.to_owned(), body)
        })
        .collect()
}

fn types(events: &[(String, Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(_, body)| body["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The events whose type starts with `prefix`, in the order they came. Events about one
/// number, or one Moment, come in order; events about different ones may interleave.
fn about(events: &[(String, Value)], prefix: &str) -> Vec<(String, Value)> {
    events
        .iter()
        .filter(|(_, body)| body["type"].as_str().is_some_and(|t| t.starts_with(prefix)))
        .cloned()
        .collect()
}

#[tokio::test]
async fn numbers_and_moments_tell_the_host_what_happened_signed_and_with_stable_ids() {
    let app = spawn_events_app(&[]).await;
    let host = app.host.as_ref().expect("a host");
    events_answer(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(host)
        .await;
    events_answer(ResponseTemplate::new(204)).mount(host).await;

    app.verified(PHONE).await;
    app.drain_events().await;
    let events = delivered(&app, "/events").await;
    assert_eq!(events.len(), 2, "refused once, then taken");
    assert_eq!(events[0], events[1], "a retry sends the same id and body");
    let (id, verified) = &events[1];
    assert!(
        id.starts_with("evt_number_") && id.ends_with("_phone_verified"),
        "{id}"
    );
    assert_eq!(verified["type"], "phone.verified");
    assert_eq!(verified["data"]["phone_number"], PHONE);
    assert_eq!(verified["data"]["artist"]["name"], ARTIST);
    assert!(verified["timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    app.text_and_drain(PHONE, "Sunrise over the bay\nprice: 5")
        .await;
    app.text(PHONE, "UNDO").await;
    app.drain().await;
    app.text(PHONE, "STOP").await;
    app.text_and_drain(PHONE, "START").await;
    let released = app.disconnect(Some(PHONE)).await;
    assert_eq!(released.status(), 200);
    app.drain_events().await;

    let events = delivered(&app, "/events").await;
    let number = about(&events[1..], "phone.");
    assert_eq!(
        types(&number),
        [
            "phone.verified",
            "phone.opted_out",
            "phone.opted_in",
            "phone.disconnected"
        ]
    );
    for (_, body) in &number {
        assert_eq!(body["data"]["phone_number"], PHONE);
        assert_eq!(body["data"]["artist"]["name"], ARTIST);
    }
    let moment = about(&events, "moment.");
    assert_eq!(types(&moment), ["moment.created", "moment.deleted"]);
    let created = &moment[0];
    let stamp = |time: &Value| momentline::events::stamp(time.as_str().expect("a time"));
    let created_at = stamp(&created.1["data"]["moment"]["created_at"]);
    assert_eq!(created.0, format!("evt_moment_1_{created_at}_created"));
    let shown = &created.1["data"]["moment"];
    assert_eq!(shown["title"], "Sunrise over the bay");
    assert_eq!(shown["price"], "5");
    assert_eq!(shown["url"], format!("{PUBLIC_URL}/moments/1"));
    assert_eq!(created.1["data"]["phone_number"], "+1415***2671");
    let deleted = &moment[1];
    assert_eq!(deleted.0, format!("evt_moment_1_{created_at}_deleted"));
    assert_eq!(deleted.1["data"]["moment"]["id"], 1);
    let ids: std::collections::HashSet<&String> = events[1..].iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), events.len() - 1, "every event has its own id");
}

#[tokio::test]
async fn a_takeover_tells_the_host_one_artist_lost_the_number_and_another_gained_it() {
    let app = spawn_events_app(&[]).await;
    events_answer(ResponseTemplate::new(200))
        .mount(app.host.as_ref().expect("a host"))
        .await;
    app.verified(PHONE).await;
    let other = create_artist(&app.store, "Other Artist").await;
    // Past the cooldown between two prompts to one number.
    app.backdate_messages(120);
    assert_eq!(app.connect_as(&other, PHONE).await.status(), 200);
    app.text_and_drain(PHONE, "yes").await;
    app.drain_events().await;

    let events = delivered(&app, "/events").await;
    assert_eq!(
        types(&events),
        ["phone.verified", "phone.disconnected", "phone.verified"]
    );
    assert_eq!(events[1].1["data"]["artist"]["name"], ARTIST);
    assert_eq!(events[2].1["data"]["artist"]["name"], "Other Artist");
}

#[tokio::test]
async fn an_event_the_host_refuses_is_failed_with_the_reason_and_not_sent_again() {
    let app = spawn_events_app(&[]).await;
    events_answer(ResponseTemplate::new(410).set_body_string("no such endpoint"))
        .mount(app.host.as_ref().expect("a host"))
        .await;
    app.verified(PHONE).await;
    app.drain_events().await;
    app.drain_events().await;
    assert_eq!(delivered(&app, "/events").await.len(), 1);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM jobs WHERE kind = 'deliver_event' AND state = 'failed'
               AND last_error LIKE 'host 410%no such endpoint'"
        ),
        1
    );
}

#[tokio::test]
async fn without_an_events_url_no_event_is_queued() {
    let app = spawn_verified_app().await;
    app.text_and_drain(PHONE, "A Moment").await;
    assert_eq!(app.count("SELECT count(*) FROM moments"), 1);
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind = 'deliver_event'"),
        0
    );
}

#[tokio::test]
async fn in_webhook_mode_events_go_to_the_dispatch_url_and_undo_withdraws_a_hosted_moment() {
    let app = spawn_host_app().await;
    Mock::given(method("POST"))
        .and(path("/moments"))
        .respond_with(hosted())
        .mount(app.host.as_ref().expect("a host"))
        .await;
    app.text_and_drain(PHONE, "Posted then withdrawn").await;
    app.text(PHONE, "delete").await;
    app.drain().await;
    app.drain_events().await;

    let sent = delivered(&app, "/moments").await;
    assert_eq!(types(&sent[..1]), ["moment.create"]);
    assert_eq!(types(&about(&sent, "phone.")), ["phone.verified"]);
    let moment = about(&sent[1..], "moment.");
    assert_eq!(types(&moment), ["moment.created", "moment.deleted"]);
    assert_eq!(
        moment[1].1["data"]["moment"]["url"],
        "https://inprocess.world/m/1"
    );
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some("Your last Moment was removed.")
    );
}

#[tokio::test]
async fn the_events_sent_are_what_the_openapi_document_says() {
    let app = spawn_events_app(&[]).await;
    events_answer(ResponseTemplate::new(204))
        .mount(app.host.as_ref().expect("a host"))
        .await;
    app.verified(PHONE).await;
    app.text_and_drain(PHONE, "Sunrise over the bay\nprice: 5")
        .await;
    app.drain_events().await;
    let events = delivered(&app, "/events").await;
    assert_eq!(types(&events), ["phone.verified", "moment.created"]);
    let doc = crate::openapi::document(&app).await;
    use crate::openapi::conforms;
    let number = &events[0].1;
    conforms(&doc, "NumberEvent", number);
    conforms(&doc, "NumberEventData", &number["data"]);
    conforms(&doc, "EventArtist", &number["data"]["artist"]);
    let moment = &events[1].1;
    conforms(&doc, "MomentEvent", moment);
    conforms(&doc, "MomentEventData", &moment["data"]);
    conforms(&doc, "EventMoment", &moment["data"]["moment"]);
    conforms(&doc, "EventMomentArtist", &moment["data"]["artist"]);
}

/// The app dispatching Moments to a stand-in host's `/moments`, where events go too; the
/// host answers `moment.create` with `create` and takes every event.
async fn spawn_webhook_app(create: ResponseTemplate) -> TestApp {
    let app = spawn_host_app().await;
    let host = app.host.as_ref().expect("a host");
    Mock::given(method("POST"))
        .and(path("/moments"))
        .and(body_partial_json(json!({ "type": "moment.create" })))
        .respond_with(create)
        .with_priority(2)
        .mount(host)
        .await;
    Mock::given(method("POST"))
        .and(path("/moments"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(3)
        .mount(host)
        .await;
    app
}

fn hosted() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "url": "https://inprocess.world/m/1" }))
}

#[tokio::test]
async fn undo_after_an_unanswered_attempt_has_the_host_withdraw_what_it_may_have_posted() {
    let app = spawn_webhook_app(hosted()).await;
    let host = app.host.as_ref().expect("a host");
    // The first attempt may have reached the host: it answered 500.
    Mock::given(method("POST"))
        .and(path("/moments"))
        .and(body_partial_json(json!({ "type": "moment.create" })))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(host)
        .await;
    app.text(PHONE, "Maybe posted").await;
    let first = app
        .runner
        .run_once(&[JobKind::DispatchMoment])
        .await
        .expect("dispatch round");
    assert_eq!(first.retrying, 1);
    app.text_and_drain(PHONE, "UNDO").await;
    app.drain_events().await;

    let sent = delivered(&app, "/moments").await;
    assert_eq!(
        types(&about(&sent, "moment.")),
        ["moment.create", "moment.deleted"],
        "the retry is not posted; the host is told to withdraw it"
    );
    let deleted = &about(&sent, "moment.deleted")[0].1;
    assert_eq!(deleted["data"]["moment"]["title"], "Maybe posted");
    assert_eq!(deleted["data"]["moment"]["url"], Value::Null);
    app.assert_told_removed_never_posted(PHONE).await;
}

#[tokio::test]
async fn undo_while_the_host_creates_the_moment_has_the_host_withdraw_it_at_its_url() {
    let app = spawn_webhook_app(hosted().set_delay(Duration::from_millis(1500))).await;
    app.text(PHONE, "Posted as UNDO came").await;
    let runner = app.runner.clone();
    let dispatch = tokio::spawn(async move { runner.run_once(&[JobKind::DispatchMoment]).await });
    // UNDO while the host is still answering the POST.
    for _ in 0..100 {
        let sent = delivered(&app, "/moments").await;
        if !about(&sent, "moment.create").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.text(PHONE, "UNDO").await;
    let round = dispatch
        .await
        .expect("dispatch task")
        .expect("dispatch round");
    assert_eq!(round.done, 1);
    app.drain().await;
    app.drain_events().await;

    let sent = delivered(&app, "/moments").await;
    assert_eq!(
        types(&about(&sent, "moment.")),
        ["moment.create", "moment.deleted"]
    );
    let deleted = &about(&sent, "moment.deleted")[0].1;
    assert_eq!(
        deleted["data"]["moment"]["url"],
        "https://inprocess.world/m/1"
    );
    app.assert_told_removed_never_posted(PHONE).await;
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE deleted_at IS NOT NULL AND url = 'https://inprocess.world/m/1'"),
        1
    );
}
