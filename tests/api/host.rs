//! Moments created on the host platform: posted as Standard Webhooks, retried on the
//! schedule, failed (and the artist told) when the host refuses, never posted twice.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::helpers::*;

/// The Standard Webhooks specification's example secret.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const HOST_URL: &str = "https://inprocess.world/moments/abc123";

/// The app dispatching to a host's stand-in, with `PHONE` verified.
pub async fn spawn_host_app() -> TestApp {
    spawn_host_app_with_env(&[]).await
}

/// As `spawn_host_app`, with some environment variables of its own.
async fn spawn_host_app_with_env(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("MOMENTLINE_DISPATCH", "webhook"),
        ("MOMENTLINE_DISPATCH_SECRET", SECRET),
    ];
    env.extend_from_slice(extra);
    let app = spawn_app_with_host("/moments", "MOMENTLINE_DISPATCH_URL", &env).await;
    app.verified(PHONE).await;
    app
}

/// Checks a request as a Standard Webhooks consumer does, with the secret it shares.
pub fn assert_signed(request: &Request) {
    let id = request_header(request, "webhook-id").expect("webhook-id");
    let timestamp = request_header(request, "webhook-timestamp").expect("webhook-timestamp");
    let signature = request_header(request, "webhook-signature").expect("webhook-signature");
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().expect("seconds");
    assert!((0..60).contains(&age), "signed {age} s ago");
    let key = BASE64
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    assert_eq!(signature, expected);
}

/// The `webhook-id` Moment `id` is dispatched with: its id and its time, so a row id used
/// again (a restored backup) is never taken for a Moment the host has seen.
fn moment_webhook_id(app: &TestApp, id: i64) -> String {
    let created_at: String =
        app.with_db(|c| c.query_value("SELECT created_at FROM moments WHERE id = ?1", &[id]));
    format!("moment_{id}_{}", momentline::events::stamp(&created_at))
}

fn host_answers(template: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/moments"))
        .respond_with(template)
}

fn created() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "url": HOST_URL }))
}

async fn host_requests(app: &TestApp) -> Vec<Request> {
    requests_to(app.host.as_ref().expect("a host"), "/moments").await
}

#[tokio::test]
async fn a_moment_is_created_on_the_host_signed_as_standard_webhooks_and_its_link_texted() {
    let app = spawn_host_app().await;
    let host = app.host.as_ref().expect("a host");
    host_answers(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(host)
        .await;
    host_answers(created()).mount(host).await;

    app.text_and_drain(PHONE, "Sunrise over the bay\nprice: 5")
        .await;

    let requests = host_requests(&app).await;
    assert_eq!(requests.len(), 2, "one refused, one taken");
    let id = moment_webhook_id(&app, 1);
    assert!(id.len() > "moment_1_".len() + 16, "{id}");
    for request in &requests {
        assert_signed(request);
        assert_eq!(request_header(request, "webhook-id"), Some(id.as_str()));
    }
    let body: Value = serde_json::from_slice(&requests[1].body).expect("json");
    assert_eq!(body["type"], "moment.create");
    assert_eq!(body["moment"]["title"], "Sunrise over the bay");
    assert_eq!(body["moment"]["kind"], "text");
    assert_eq!(body["moment"]["price"], "5");
    assert_eq!(body["moment"]["price_micro_usdc"], 5_000_000);
    assert_eq!(body["artist"]["name"], ARTIST);
    assert_eq!(body["phone_number"], "+1415***2671");

    let moment = app.newest_moment().await;
    assert_eq!(moment["state"], "created");
    assert_eq!(moment["url"], HOST_URL);
    assert_eq!(
        app.texts_to(PHONE).await.pop().as_deref(),
        Some(format!("Moment posted: {HOST_URL}").as_str())
    );
}

#[tokio::test]
async fn a_moment_the_host_refuses_ends_failed_and_the_artist_is_told_once() {
    let app = spawn_host_app().await;
    host_answers(ResponseTemplate::new(422).set_body_string("title too long"))
        .mount(app.host.as_ref().expect("a host"))
        .await;
    app.text_and_drain(PHONE, "Refused").await;
    assert_eq!(host_requests(&app).await.len(), 1, "a 4xx is not retried");
    assert_eq!(app.newest_moment().await["state"], "failed");
    let texts = app.texts_to(PHONE).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some("Your Moment could not be posted. Please try again later.")
    );
    assert!(!texts.iter().any(|t| t.starts_with("Moment posted")));
    assert_eq!(
        app.count(
            "SELECT count(*) FROM jobs WHERE state = 'failed' AND last_error LIKE 'host 422%'"
        ),
        1
    );
}

#[tokio::test]
async fn a_host_that_answers_without_a_url_is_retried_then_failed_and_one_that_redirects_is_not_followed(
) {
    let app = spawn_host_app().await;
    let host = app.host.as_ref().expect("a host");
    host_answers(ResponseTemplate::new(200).set_body_string("<html>ok</html>"))
        .mount(host)
        .await;
    app.text_and_drain(PHONE, "No link back").await;
    let requests = host_requests(&app).await;
    assert_eq!(requests.len(), 3, "every attempt the schedule allows");
    let id = moment_webhook_id(&app, 1);
    assert!(requests
        .iter()
        .all(|r| request_header(r, "webhook-id") == Some(id.as_str())));
    assert_eq!(app.newest_moment().await["state"], "failed");
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE last_error LIKE '%without a Moment URL%'"),
        1
    );

    host.reset().await;
    host_answers(ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:9/x"))
        .mount(host)
        .await;
    app.text_and_drain(PHONE, "Moved away").await;
    assert_eq!(
        host_requests(&app).await.len(),
        1,
        "not followed, not retried"
    );
    assert_eq!(app.newest_moment().await["state"], "failed");
}

#[tokio::test]
async fn a_host_answer_is_read_up_to_64_kib_and_a_url_past_that_is_not_taken() {
    let app = spawn_host_app().await;
    // Valid JSON with a URL, but only after 100 KiB: read no further than 64 KiB, it is a
    // 2xx without a URL.
    let padding = "x".repeat(100 * 1024);
    host_answers(
        ResponseTemplate::new(200).set_body_json(json!({ "padding": padding, "url": HOST_URL })),
    )
    .mount(app.host.as_ref().expect("a host"))
    .await;
    app.text_and_drain(PHONE, "Answered at length").await;
    assert_eq!(host_requests(&app).await.len(), 3, "retried, then failed");
    assert_eq!(app.newest_moment().await["state"], "failed");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM jobs WHERE state = 'failed'
               AND last_error LIKE 'host 200 without a Moment URL: {\"padding\":\"xxx%'"
        ),
        1
    );
}

#[tokio::test]
async fn a_photo_goes_to_the_host_once_its_media_is_kept_with_the_kept_copy() {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01";
    let app = spawn_host_app().await;
    host_answers(created())
        .mount(app.host.as_ref().expect("a host"))
        .await;
    Mock::given(method("GET"))
        .and(path("/media/p.png"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(PNG.to_vec(), "image/png")
                .set_delay(Duration::from_millis(10)),
        )
        .mount(&app.provider_api)
        .await;
    let mut event = fixture("telnyx/message.received.mms.json");
    event["data"]["payload"]["media"] = json!([
        {"url": format!("{}/media/p.png", app.provider_api.uri()), "content_type": "image/png"}
    ]);
    assert_eq!(app.telnyx_webhook(&event.to_string()).await.status(), 200);

    // Nothing goes to the host before the media is kept.
    app.runner
        .run_once(&[momentline::domain::JobKind::DispatchMoment])
        .await
        .expect("round");
    assert!(host_requests(&app).await.is_empty());
    app.drain_media().await;
    app.drain().await;

    let requests = host_requests(&app).await;
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).expect("json");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(PNG));
    assert_eq!(body["moment"]["kind"], "media");
    assert_eq!(
        body["moment"]["media"],
        json!({
            "url": format!("{PUBLIC_URL}/media/{sha}.png"),
            "content_type": "image/png",
            "size": PNG.len(),
            "sha256": sha,
        })
    );
    assert_eq!(app.newest_moment().await["url"], HOST_URL);
}

#[tokio::test]
async fn a_photo_whose_media_is_never_kept_ends_failed_and_its_artist_is_told() {
    let app = spawn_host_app().await;
    host_answers(created())
        .mount(app.host.as_ref().expect("a host"))
        .await;
    let mut event = fixture("telnyx/message.received.mms.json");
    event["data"]["payload"]["media"] = json!([
        {"url": format!("{}/media/gone.png", app.provider_api.uri()), "content_type": "image/png"}
    ]);
    assert_eq!(app.telnyx_webhook(&event.to_string()).await.status(), 200);
    app.drain_media().await;
    app.drain().await;
    assert!(host_requests(&app).await.is_empty());
    assert_eq!(app.newest_moment().await["state"], "failed");
    assert_eq!(
        app.texts_to(PHONE).await.pop().as_deref(),
        Some(
            "Your photo or file could not be received, so it was not posted. Please send it again."
        )
    );
}

#[tokio::test]
async fn the_page_of_a_moment_created_on_the_host_names_the_hosts_url_as_its_own() {
    let app = spawn_host_app().await;
    host_answers(created())
        .mount(app.host.as_ref().expect("a host"))
        .await;
    app.text_and_drain(PHONE, "Night swim").await;
    let id = app.newest_moment().await["id"].as_i64().expect("id");
    let html = app.page(&format!("/moments/{id}")).await;
    assert!(
        html.contains(&format!(
            "<meta property=\"og:url\" content=\"{HOST_URL}\">"
        )),
        "{html}"
    );
    assert!(html.contains(&format!("<link rel=\"canonical\" href=\"{HOST_URL}\">")));
}

#[tokio::test]
async fn a_photo_and_its_caption_go_to_the_host_as_one_moment_in_either_order() {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01";
    let app = spawn_host_app_with_env(&[("MOMENTLINE_MERGE_SECS", "5")]).await;
    host_answers(created())
        .mount(app.host.as_ref().expect("a host"))
        .await;
    Mock::given(method("GET"))
        .and(path("/media/p.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PNG.to_vec(), "image/png"))
        .mount(&app.provider_api)
        .await;
    let photo = || async {
        let event = app.photo_event(PHONE, "", "/media/p.png");
        assert_eq!(app.telnyx_webhook(&event).await.status(), 200);
    };
    let settle = || async {
        app.drain_media().await;
        app.drain().await;
    };
    let caption = "Studio wall\nfirst coat\nprice: 5";

    // The photo first: its media is kept, and its dispatch still waits for the caption.
    photo().await;
    settle().await;
    assert!(host_requests(&app).await.is_empty(), "the photo waits");
    app.text(PHONE, caption).await;
    settle().await;
    assert_eq!(host_requests(&app).await.len(), 1);

    // The caption first: its dispatch moves behind the photo's media, and runs once.
    app.text(PHONE, caption).await;
    settle().await;
    assert_eq!(host_requests(&app).await.len(), 1, "the caption waits");
    photo().await;
    settle().await;

    let requests = host_requests(&app).await;
    assert_eq!(requests.len(), 2, "one moment.create a pair");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(PNG));
    let ids = [moment_webhook_id(&app, 1), moment_webhook_id(&app, 2)];
    for (request, id) in requests.iter().zip(&ids) {
        assert_signed(request);
        assert_eq!(request_header(request, "webhook-id"), Some(id.as_str()));
        let body: Value = serde_json::from_slice(&request.body).expect("json");
        assert_eq!(body["moment"]["kind"], "media");
        assert_eq!(body["moment"]["title"], "Studio wall");
        assert_eq!(body["moment"]["description"], "Studio wall\nfirst coat");
        assert_eq!(body["moment"]["price"], "5");
        assert_eq!(
            body["moment"]["media"]["url"],
            format!("{PUBLIC_URL}/media/{sha}.png")
        );
    }
    let posted: Vec<String> = app
        .texts_to(PHONE)
        .await
        .into_iter()
        .filter(|t| t.starts_with("Moment posted"))
        .collect();
    assert_eq!(
        posted,
        [
            format!("Moment posted: {HOST_URL}"),
            format!("Moment posted: {HOST_URL}")
        ]
    );
    assert_eq!(app.count("SELECT count(*) FROM moments"), 2);
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind != 'deliver_event'"),
        0,
        "nothing left to do but tell the host's events"
    );
}

#[tokio::test]
async fn the_moment_create_sent_is_what_the_openapi_document_says() {
    let app = spawn_host_app().await;
    host_answers(created())
        .mount(app.host.as_ref().expect("a host"))
        .await;
    app.text_and_drain(
        PHONE,
        "Sunrise over the bay https://example.com/a\nprice: 5",
    )
    .await;
    let requests = host_requests(&app).await;
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).expect("json");
    let doc = crate::openapi::document(&app).await;
    use crate::openapi::conforms;
    conforms(&doc, "MomentCreate", &body);
    conforms(&doc, "HostMoment", &body["moment"]);
    conforms(&doc, "HostArtist", &body["artist"]);
    assert_eq!(
        doc["webhooks"]["moment.create"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/MomentCreate"
    );
}
