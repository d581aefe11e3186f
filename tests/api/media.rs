//! Moment media is fetched once in the background and served from momentline's own copy.

use momentline::domain::JobKind;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

/// A tiny PNG and a tiny JPEG-ish body: the keeper checks types by header, not by content.
pub(crate) const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01";
pub(crate) const JPEG: &[u8] =
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00\xff\xd9";

pub(crate) async fn serve(app: &TestApp, at: &str, content_type: &str, body: &[u8]) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), content_type))
        .mount(&app.provider_api)
        .await;
}

/// Texts an MMS of the one photo served at `at`; the round that keeps the media.
async fn photo_texted(
    app: &TestApp,
    at: &str,
    content_type: &str,
    body: &[u8],
) -> momentline::jobs::Round {
    serve(app, at, content_type, body).await;
    text_mms(app, &[(at, content_type)]).await;
    app.drain_media().await
}

/// As `photo_texted`, and the photo is kept in that round.
async fn photo_kept(app: &TestApp, at: &str, content_type: &str, body: &[u8]) {
    assert_eq!(photo_texted(app, at, content_type, body).await.done, 1);
}

/// Texts an MMS whose media the provider's stand-in holds at `paths`.
pub(crate) async fn text_mms(app: &TestApp, items: &[(&str, &str)]) {
    text_mms_as(app, None, items).await;
}

/// As `text_mms`, as the provider's message `id` rather than the fixture's.
async fn text_mms_as(app: &TestApp, id: Option<&str>, items: &[(&str, &str)]) {
    let mut event = fixture("telnyx/message.received.mms.json");
    if let Some(id) = id {
        event["data"]["payload"]["id"] = json!(id);
    }
    let media: Vec<Value> = items
        .iter()
        .map(|(at, content_type)| {
            json!({"url": format!("{}{at}", app.provider_api.uri()), "content_type": content_type})
        })
        .collect();
    event["data"]["payload"]["media"] = json!(media);
    assert_eq!(app.telnyx_webhook(&event.to_string()).await.status(), 200);
}

pub(crate) fn hash_name(bytes: &[u8], ext: &str) -> String {
    format!("{}.{ext}", hex::encode(Sha256::digest(bytes)))
}

#[tokio::test]
async fn mms_media_is_kept_by_hash_and_served_by_momentline() {
    let app = spawn_verified_app().await;
    serve(&app, "/media/a.jpg", "image/jpeg", JPEG).await;
    serve(&app, "/media/b.png", "image/png", PNG).await;
    text_mms(
        &app,
        &[
            ("/media/a.jpg", "image/jpeg"),
            ("/media/b.png", "image/png"),
        ],
    )
    .await;

    // The webhook did not fetch anything: that is the keeper's job.
    assert!(requests_to(&app.provider_api, "/media/a.jpg")
        .await
        .is_empty());
    let before = app.get_json("/api/moments").await;
    assert_eq!(before["moments"][0]["media"]["state"], "fetching");
    assert_eq!(before["moments"][0]["media"]["url"], Value::Null);

    let round = app.drain_media().await;
    assert_eq!(round.done, 2);
    let jpg = hash_name(JPEG, "jpg");
    let png = hash_name(PNG, "png");
    assert_eq!(std::fs::read(app.media_dir.join(&jpg)).expect("kept"), JPEG);
    assert_eq!(std::fs::read(app.media_dir.join(&png)).expect("kept"), PNG);

    let moments = app.get_json("/api/moments").await;
    let newest = &moments["moments"][0]["media"];
    assert_eq!(newest["state"], "kept");
    assert_eq!(newest["url"], format!("{PUBLIC_URL}/media/{png}"));
    assert_eq!(
        newest["source_url"],
        format!("{}/media/b.png", app.provider_api.uri())
    );

    let response = app
        .http
        .get(app.url(&format!("/media/{jpg}")))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(header_of(&response, "content-type"), Some("image/jpeg"));
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), JPEG);

    let id = moments["moments"][1]["id"].as_i64().expect("id");
    let html = app.page(&format!("/moments/{id}")).await;
    assert!(
        html.contains(&format!("<img src=\"{PUBLIC_URL}/media/{jpg}\"")),
        "{html}"
    );
}

#[tokio::test]
async fn a_media_fetch_that_fails_is_retried() {
    let app = spawn_verified_app().await;
    Mock::given(method("GET"))
        .and(path("/media/flaky.png"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.provider_api)
        .await;
    let round = photo_texted(&app, "/media/flaky.png", "image/png", PNG).await;
    assert_eq!((round.retrying, round.done), (1, 1));
    assert!(app.media_dir.join(hash_name(PNG, "png")).exists());
}

#[tokio::test]
async fn media_that_is_missing_mistyped_or_too_large_is_refused_and_its_moment_is_never_posted() {
    let app = spawn_verified_app().await;
    serve(&app, "/media/page.png", "text/html", b"<html>login</html>").await;
    let huge = vec![0u8; momentline::media::MAX_BYTES + 1];
    serve(&app, "/media/huge.jpg", "image/jpeg", &huge).await;
    text_mms(
        &app,
        &[
            ("/media/gone.jpg", "image/jpeg"),
            ("/media/page.png", "image/png"),
            ("/media/huge.jpg", "image/jpeg"),
        ],
    )
    .await;
    let round = app.drain_media().await;
    assert_eq!(round.failed, 3);
    let rows: Vec<(String, String)> = app.with_db(|c| {
        c.query_map(
            "SELECT media_state, media_error FROM moments ORDER BY id",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    });
    assert_eq!(
        rows,
        [
            ("failed".into(), "fetch answered 404".into()),
            (
                "failed".into(),
                "served as 'text/html', announced as 'image/png'".into()
            ),
            (
                "failed".into(),
                format!("larger than {} bytes", momentline::media::MAX_BYTES)
            ),
        ]
    );
    // None is posted as if it had its file: each fails, and the artist is told once.
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE state = 'failed'"),
        3
    );
    app.drain().await;
    let texts = app.texts_to(PHONE).await;
    assert_eq!(
        texts.last().map(String::as_str),
        Some(
            "Your photo or file could not be received, so it was not posted. Please send it again."
        )
    );
    assert!(!texts.iter().any(|t| t.contains("posted:")), "{texts:?}");
    assert_eq!(
        std::fs::read_dir(&app.media_dir)
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

/// The app sending through Twilio, with `PHONE` connected and confirmed over Twilio.
async fn spawn_verified_twilio_app() -> TestApp {
    let app = spawn_app_sending_with("twilio").await;
    twilio_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    assert_eq!(app.twilio_text(PHONE, "yes", &[]).await.status(), 200);
    app
}

/// A JPEG at `url` texted over Twilio is taken, and kept in one round.
async fn twilio_photo_is_kept(app: &TestApp, url: &str) {
    let media = [(url, "image/jpeg")];
    assert_eq!(app.twilio_text(PHONE, "", &media).await.status(), 200);
    assert_eq!(app.drain_media().await.done, 1);
}

#[tokio::test]
async fn twilio_media_is_fetched_with_the_accounts_credentials() {
    let app = spawn_verified_twilio_app().await;
    let basic = basic_auth(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN);
    Mock::given(method("GET"))
        .and(path("/Media/ME1"))
        .and(header("authorization", basic.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(JPEG.to_vec(), "image/jpeg"))
        .mount(&app.provider_api)
        .await;
    let url = format!("{}/Media/ME1", app.provider_api.uri());
    twilio_photo_is_kept(&app, &url).await;
}

#[tokio::test]
async fn twilio_credentials_never_go_to_another_host() {
    let app = spawn_verified_twilio_app().await;
    let elsewhere = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/photo.jpg"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(JPEG.to_vec(), "image/jpeg"))
        .mount(&elsewhere)
        .await;
    let url = format!("{}/photo.jpg", elsewhere.uri());
    twilio_photo_is_kept(&app, &url).await;
    let fetches = elsewhere.received_requests().await.unwrap_or_default();
    assert_eq!(fetches.len(), 1);
    assert!(fetches[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn telnyx_media_is_fetched_without_credentials() {
    let app = spawn_verified_app().await;
    photo_kept(&app, "/media/a.jpg", "image/jpeg", JPEG).await;
    let fetches = requests_to(&app.provider_api, "/media/a.jpg").await;
    assert!(fetches[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn only_names_the_keeper_writes_are_served() {
    let app = spawn_app().await;
    std::fs::create_dir_all(&app.media_dir).expect("media dir");
    std::fs::write(app.media_dir.join("notes.txt"), "private").expect("write");
    let kept = hash_name(JPEG, "jpg");
    std::fs::write(app.media_dir.join(&kept), JPEG).expect("write");
    let get = |name: String| {
        let (http, url) = (app.http.clone(), app.url(&format!("/media/{name}")));
        async move { http.get(url).send().await.expect("request").status() }
    };
    assert_eq!(get(kept).await, 200);
    assert_eq!(
        get("notes.txt".into()).await,
        404,
        "a file the keeper did not write"
    );
    assert_eq!(get("..%2Fmomentline.db".into()).await, 404);
    assert_eq!(
        get(format!("{}.jpg", "0".repeat(64))).await,
        404,
        "not kept"
    );
}

#[tokio::test]
async fn media_on_this_machine_or_its_network_is_refused_unless_allowed() {
    // Without MOMENTLINE_MEDIA_ALLOW_PRIVATE: the default.
    let app = spawn_verified_app_with_env(&[("MOMENTLINE_MEDIA_ALLOW_PRIVATE", "")]).await;
    let round = photo_texted(&app, "/media/p.png", "image/png", PNG).await;
    assert_eq!(
        (round.done, round.failed),
        (0, 1),
        "refused at once, not retried"
    );
    let media = app.newest_moment().await["media"].clone();
    assert_eq!(media["state"], "failed");
    assert!(requests_to(&app.provider_api, "/media/p.png")
        .await
        .is_empty());
    let error =
        app.count("SELECT count(*) FROM moments WHERE media_error LIKE '%private address%'");
    assert_eq!(error, 1);
}

#[tokio::test]
async fn the_database_and_kept_media_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_verified_app().await;
    photo_kept(&app, "/media/p.png", "image/png", PNG).await;
    let dir = app.media_dir.parent().expect("the test's directory");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    // On PostgreSQL the database is the server's, in no file of the app's.
    if app.engine() == Engine::Sqlite {
        for file in ["momentline.db", "momentline.db-wal", "momentline.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
    }
    assert_eq!(mode(&app.media_dir), 0o700);
    assert_eq!(mode(&app.media_dir.join(hash_name(PNG, "png"))), 0o600);
}

#[tokio::test]
async fn kept_media_is_served_as_the_document_says_under_a_name_its_pattern_takes() {
    let app = spawn_verified_app().await;
    photo_kept(&app, "/media/b.png", "image/png", PNG).await;
    let doc = crate::openapi::document(&app).await;
    let operation = &doc["paths"]["/media/{file}"]["get"];
    let pattern = operation["parameters"][0]["schema"]["pattern"]
        .as_str()
        .expect("the file name's pattern");
    assert_eq!(pattern, r"^[0-9a-f]{64}\.[a-z0-9]{1,5}$");
    let documented: Vec<&str> = operation["responses"]["200"]["content"]
        .as_object()
        .expect("the file's types")
        .keys()
        .map(String::as_str)
        .collect();
    for kept in [hash_name(PNG, "png"), hash_name(b"%PDF-1.4", "pdf")] {
        let (hash, ext) = kept.split_once('.').expect("a name");
        assert!(hash.len() == 64 && (1..=5).contains(&ext.len()), "{kept}");
        let served = momentline::domain::media_type::content_type_for(&kept);
        let (kind, _) = served.split_once('/').expect("a type");
        assert!(
            documented.contains(&served) || documented.contains(&format!("{kind}/*").as_str()),
            "{served} is not in {documented:?}"
        );
    }
    let response = send(
        app.http
            .get(app.url(&format!("/media/{}", hash_name(PNG, "png")))),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header_of(&response, "content-type"), Some("image/png"));
    assert!(documented.contains(&"image/*"), "{documented:?}");
}

/// The media directory on a file system of 64 KiB of its own (tmpfs), filled up by one
/// file: anything written there fails with "no space left" until `room` removes it.
struct FullMedia {
    dir: std::path::PathBuf,
    filler: std::path::PathBuf,
}

impl FullMedia {
    /// `None` where this user may not mount (said; under CI a failure: CI's machine can).
    fn make(dir: &std::path::Path) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("the media directory");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(dir)
            .output();
        match mounted {
            Ok(out) if out.status.success() => {}
            other => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must mount a small file system for the media directory: {other:?}"
                );
                eprintln!("skipped: cannot mount a tmpfs here: {other:?}");
                return None;
            }
        }
        let full = Self {
            dir: dir.to_owned(),
            filler: dir.join("filler"),
        };
        let wrote = std::fs::write(&full.filler, vec![0_u8; 1024 * 1024]);
        assert!(wrote.is_err(), "64 KiB cannot hold 1 MiB");
        assert!(std::fs::write(dir.join("probe"), b"x").is_err(), "full");
        let _ = std::fs::remove_file(dir.join("probe"));
        Some(full)
    }

    fn room(&self) {
        std::fs::remove_file(&self.filler).expect("the filler goes");
    }

    /// What is in the directory besides the filler.
    fn files(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .expect("the media directory")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "filler")
            .collect()
    }
}

impl Drop for FullMedia {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

#[tokio::test]
async fn a_full_media_directory_fails_only_that_moments_media_told_once_and_resumes_with_room() {
    let app = spawn_verified_app().await;
    let Some(full) = FullMedia::make(&app.media_dir) else {
        return;
    };
    serve(&app, "/media/lost.png", "image/png", PNG).await;
    text_mms(&app, &[("/media/lost.png", "image/png")]).await;
    let words = app.sms_event(PHONE, "Words while the disk is full");
    assert_eq!(app.telnyx_webhook(&words).await.status(), 200);

    // Tried as the schedule says, then failed: that Moment's media only.
    let round = app.drain_media().await;
    assert_eq!((round.retrying, round.failed), (2, 1));
    let error: String = app.with_db(|c| {
        c.query_value(
            "SELECT media_error FROM moments WHERE media_state = 'failed'",
            params![],
        )
    });
    assert!(error.contains("No space left on device"), "{error}");
    assert!(
        full.files().is_empty(),
        "no half file left: {:?}",
        full.files()
    );
    app.drain().await;

    // Room returns while a photo is between tries: it is kept at the next.
    serve(&app, "/media/later.jpg", "image/jpeg", JPEG).await;
    text_mms_as(&app, Some("later"), &[("/media/later.jpg", "image/jpeg")]).await;
    let mut first = momentline::jobs::Round::default();
    for kind in [JobKind::DispatchMoment, JobKind::KeepMedia] {
        first.add(app.runner.run_once(&[kind]).await.expect("a round"));
    }
    assert_eq!(first.retrying, 1, "the disk is still full: {first:?}");
    full.room();
    assert_eq!(app.drain_media().await.done, 1);
    assert_eq!(full.files(), [hash_name(JPEG, "jpg")]);
    app.drain().await;

    let texts = app.texts_to(PHONE).await;
    let lost = "Your photo or file could not be received, so it was not posted. Please send it \
                again.";
    assert_eq!(
        texts.iter().filter(|t| *t == lost).count(),
        1,
        "told once: {texts:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE state = 'created'"),
        2,
        "the text beside it and the photo kept later are posted"
    );
}
