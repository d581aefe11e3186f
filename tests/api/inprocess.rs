//! Moments posted on In Process itself (`MOMENTLINE_DISPATCH=inprocess`), against a stand-in
//! that checks every body against In Process's fields and answers as In Process does: a photo
//! and a text each become one Moment and their links are texted back, UNDO hides once, a
//! refused key pauses the artist's Moments, a 402 and a 400 are told in words of their own,
//! and a create whose answer was lost is found, never minted twice.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::Value;

use crate::helpers::*;
use crate::inprocess_standin::InProcessStandIn;
use crate::media::{hash_name, serve, PNG};

/// The artist's wallet, and the key In Process knows it by.
const ADDRESS: &str = "0x1111111111111111111111111111111111111111";
const KEY: &str = "art_sk_Jx3kP9qLm2Vn8Rt5Yw1Zb6Hc4Df7Gs0Ae_Ku-Qo";
const NEW_KEY: &str = "art_sk_Nw4kP9qLm2Vn8Rt5Yw1Zb6Hc4Df7Gs0Ae_Ku-Qx";
/// USDC on Base.
const USDC: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const SALE_NEVER_ENDS: &str = "18446744073709551615";

fn sealing_key() -> String {
    BASE64.encode([7u8; 32])
}

/// The app posting to a stand-in In Process, with `PHONE` verified for the artist, whose
/// address is `ADDRESS` and whose key (`KEY`) is registered as an operator does.
async fn spawn_inprocess_app(extra: &[(&str, &str)]) -> (TestApp, InProcessStandIn) {
    let standin = InProcessStandIn::start(8453).await;
    standin.add_key(KEY, ADDRESS);
    let base = standin.api_base();
    let secret = sealing_key();
    let mut env = vec![
        ("MOMENTLINE_DISPATCH", "inprocess"),
        ("MOMENTLINE_SECRET_KEY", secret.as_str()),
        ("INPROCESS_API_BASE", base.as_str()),
        ("INPROCESS_TIMEOUT_SECS", "1"),
        ("INPROCESS_LOOK_AFTER_SECS", "0"),
    ];
    env.extend_from_slice(extra);
    let app = spawn_app_with_env(&env, |_| {}).await;
    telnyx_accepts_texts(&app.provider_api).await;
    register_key(&app, KEY);
    app.verified(PHONE).await;
    (app, standin)
}

/// `momentline artists inprocess-key --artist ARTIST --address ADDRESS`, the key on standard
/// input.
fn register_key(app: &TestApp, key: &str) {
    let secret = sealing_key();
    let out = run_binary_reading(
        &app.database_env(),
        &[("MOMENTLINE_SECRET_KEY", secret.as_str())],
        &[
            "artists",
            "inprocess-key",
            "--artist",
            ARTIST,
            "--address",
            ADDRESS,
        ],
        &format!("{key}\n"),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains(key), "the key is never said back");
}

/// Drains the jobs until no Moment is pending, waiting between rounds for the ones held back
/// (a create whose answer was lost is looked for only once it can no longer be under way:
/// `INPROCESS_TIMEOUT_SECS`, 1 s here, after it was sent).
async fn drain_until_settled(app: &TestApp) {
    for _ in 0..40 {
        app.drain_all().await;
        if app.count("SELECT count(*) FROM moments WHERE state = 'pending'") == 0 {
            app.drain_all().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a Moment stayed pending");
}

/// Texts a photo (a PNG served by the provider's stand-in) with words.
async fn text_photo(app: &TestApp, at: &str, words: &str) {
    serve(app, at, "image/png", PNG).await;
    let event = app.photo_event(PHONE, words, at);
    assert_eq!(app.telnyx_webhook(&event).await.status(), 200);
}

/// A URL momentline gave In Process to fetch, fetched from the app itself.
async fn fetch_public(app: &TestApp, url: &str) -> reqwest::Response {
    let local = url
        .strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("{url} is momentline's own"));
    app.get_keyless(local).await
}

fn link(collection: &str, token: &str) -> String {
    format!("https://inprocess.world/sms/base:{collection}/{token}")
}

fn assert_sold_by_the_artist(token: &Value, price: &str) {
    assert_eq!(token["createReferral"], ADDRESS);
    assert_eq!(token["payoutRecipient"], ADDRESS);
    assert_eq!(token["mintToCreatorCount"], 1);
    let sale = &token["salesConfig"];
    assert_eq!(sale["type"], "erc20Mint");
    assert_eq!(sale["pricePerToken"], price);
    assert_eq!(sale["currency"], USDC);
    assert_eq!(sale["saleEnd"], SALE_NEVER_ENDS);
    let start: i64 = sale["saleStart"]
        .as_str()
        .expect("digits")
        .parse()
        .expect("a number");
    assert!(
        (chrono::Utc::now().timestamp() - start).abs() < 60,
        "{start}"
    );
}

fn assert_no_violations(standin: &InProcessStandIn) {
    let violations = standin.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn a_photo_and_a_text_each_become_one_in_process_moment_and_the_artist_gets_its_link() {
    let (app, standin) = spawn_inprocess_app(&[]).await;

    text_photo(&app, "/media/pier.png", "Pier at dawn").await;
    app.drain_all().await;

    // The kept photo and then its metadata were uploaded, each from momentline's own URL.
    let uploads = standin.uploads();
    assert_eq!(uploads.len(), 2, "{uploads:?}");
    assert!(uploads.iter().all(|u| u.api_key == KEY));
    let photo = fetch_public(&app, &uploads[0].url).await;
    assert_eq!(photo.status(), 200);
    assert_eq!(photo.bytes().await.expect("bytes").as_ref(), PNG);
    assert!(uploads[0].url.ends_with(&hash_name(PNG, "png")));
    let metadata_url = format!("{PUBLIC_URL}/moments/1/metadata.json");
    assert_eq!(uploads[1].url, metadata_url);
    let metadata: Value = fetch_public(&app, &metadata_url)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(metadata["name"], "Pier at dawn");
    assert_eq!(metadata["image"], uploads[0].uri.as_str());
    assert_eq!(metadata["content"]["mime"], "image/png");
    assert_eq!(metadata["content"]["uri"], uploads[0].uri.as_str());

    // One Moment, the first of a new collection named for the artist.
    let moments = standin.moments();
    assert_eq!(moments.len(), 1);
    let first = &moments[0];
    assert!(first.new_collection);
    assert_eq!(first.kind, "media");
    assert_eq!(first.metadata_uri, uploads[1].uri);
    assert_eq!(first.body["contract"]["name"], ARTIST);
    assert_eq!(first.body["contract"]["uri"], uploads[1].uri.as_str());
    assert_eq!(first.body["account"], ADDRESS);
    assert_eq!(first.body["channel"], "sms");
    assert_sold_by_the_artist(&first.body["token"], "1000000");
    let first_link = link(&first.collection, &first.token_id);
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some(format!("Moment posted: {first_link}").as_str())
    );

    // A text, priced: a writing Moment in the same collection.
    app.text(PHONE, "Night swim\nThe lake at midnight\nprice: 3")
        .await;
    app.drain_all().await;
    let moments = standin.moments();
    assert_eq!(moments.len(), 2);
    let second = &moments[1];
    assert_eq!(second.kind, "writing");
    assert!(!second.new_collection);
    assert_eq!(second.collection, first.collection);
    assert_eq!(
        second.body["contract"]["address"],
        first.collection.as_str()
    );
    assert_eq!(second.title.as_deref(), Some("Night swim"));
    assert_eq!(
        second.token_content.as_deref(),
        Some("Night swim\nThe lake at midnight")
    );
    assert_sold_by_the_artist(&second.body["token"], "3000000");
    assert_eq!(standin.uploads().len(), 2, "a writing uploads nothing");
    let second_link = link(&second.collection, &second.token_id);
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some(format!("Moment posted: {second_link}").as_str())
    );

    // Each request carried the artist's key; the API and the database agree.
    assert!(standin
        .create_requests()
        .iter()
        .all(|r| r.api_key.as_deref() == Some(KEY)));
    let listed = app.get_json("/api/moments").await;
    let urls: Vec<&str> = texts_at(&listed["moments"], "url");
    assert_eq!(urls, [second_link.as_str(), first_link.as_str()]);
    assert_eq!(
        app.count("SELECT count(*) FROM inprocess_moments WHERE chain_id = 8453"),
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM artists WHERE collection IS NOT NULL"),
        1
    );
    assert_no_violations(&standin);
}

#[tokio::test]
async fn undo_hides_the_moment_on_in_process_once_and_the_artist_is_told() {
    let (app, standin) = spawn_inprocess_app(&[]).await;
    app.text(PHONE, "Studio day").await;
    app.drain_all().await;
    let moment = standin.moments().pop().expect("created");

    app.text(PHONE, "UNDO").await;
    app.drain_all().await;
    app.drain_all().await;

    let hides = standin.hides();
    assert_eq!(hides.len(), 1, "hiding toggles: sent once");
    assert_eq!(hides[0].api_key.as_deref(), Some(KEY));
    assert_eq!(
        hides[0].body["moment"]["collectionAddress"],
        moment.collection.as_str()
    );
    assert_eq!(hides[0].body["moment"]["tokenId"], moment.token_id.as_str());
    assert_eq!(hides[0].body["moment"]["chainId"], 8453);
    assert!(standin.moments()[0].hidden);
    let texts = app.texts_to(PHONE).await;
    let told = format!(
        "Your Moment was hidden on In Process: {}",
        link(&moment.collection, &moment.token_id)
    );
    assert_eq!(texts.last(), Some(&told));
    assert!(
        !texts.iter().any(|t| t == "Your last Moment was removed."),
        "told once, when it is hidden: {texts:?}"
    );
    assert_eq!(
        app.get_json("/api/moments").await["moments"],
        Value::Array(vec![])
    );
    assert_no_violations(&standin);
}

#[tokio::test]
async fn undo_of_a_moment_the_artist_already_hid_on_in_process_does_not_show_it_again() {
    let (app, standin) = spawn_inprocess_app(&[]).await;
    app.text(PHONE, "Hidden already").await;
    app.drain_all().await;
    let moment = standin.moments().pop().expect("created");
    // The artist hides it on In Process's site.
    let hidden = reqwest::Client::new()
        .post(format!("{}/moment/hide", standin.api_base()))
        .header("x-api-key", KEY)
        .json(&serde_json::json!({ "moment": {
            "collectionAddress": moment.collection, "tokenId": moment.token_id, "chainId": 8453
        }}))
        .send()
        .await
        .expect("hides");
    assert_eq!(hidden.status(), 200);

    app.text(PHONE, "UNDO").await;
    app.drain_all().await;

    assert_eq!(standin.hides().len(), 1, "no second toggle");
    assert!(standin.moments()[0].hidden, "still hidden");
    let told = format!(
        "Your Moment was hidden on In Process: {}",
        link(&moment.collection, &moment.token_id)
    );
    assert_eq!(app.last_text_to(PHONE).await, Some(told));
    assert_no_violations(&standin);
}

#[tokio::test]
async fn a_revoked_key_pauses_the_artists_moments_tells_them_once_and_a_new_key_posts_them() {
    let (app, standin) = spawn_inprocess_app(&[]).await;
    standin.revoke_key(KEY);

    app.text(PHONE, "First thought").await;
    app.text(PHONE, "Second thought").await;
    app.drain_all().await;

    assert!(standin.moments().is_empty());
    let told: Vec<String> = app
        .texts_to(PHONE)
        .await
        .into_iter()
        .filter(|t| t.contains("refused the API key"))
        .collect();
    assert_eq!(told.len(), 1, "told once: {told:?}");
    // Both wait, with no attempt spent: neither failed.
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind = 'dispatch_moment' AND state = 'queued'"),
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE state = 'pending'"),
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM artists WHERE inprocess_refused_at IS NOT NULL"),
        1
    );

    standin.add_key(NEW_KEY, ADDRESS);
    register_key(&app, NEW_KEY);
    app.drain_all().await;

    let moments = standin.moments();
    assert_eq!(moments.len(), 2);
    assert_eq!(moments[0].title.as_deref(), Some("First thought"));
    assert_eq!(moments[1].title.as_deref(), Some("Second thought"));
    assert!(standin
        .create_requests()
        .iter()
        .all(|r| r.api_key.as_deref() == Some(NEW_KEY)));
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE state = 'created'"),
        2
    );
    assert_no_violations(&standin);
}

#[tokio::test]
async fn an_upload_in_process_wants_paid_for_fails_the_moment_and_says_so_once() {
    let (app, standin) = spawn_inprocess_app(&[]).await;
    standin.uploads_need_payment(KEY);

    text_photo(&app, "/media/a.png", "Paid?").await;
    app.drain_all().await;

    assert!(standin.create_requests().is_empty());
    let moment = app.newest_moment().await;
    assert!(moment.is_null() || moment["state"] == "failed", "{moment}");
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE state = 'failed'"),
        1
    );
    let texts = app.texts_to(PHONE).await;
    let last = texts.last().expect("a text");
    assert!(last.contains("needs USDC"), "{last}");
    assert!(!texts.iter().any(|t| t.contains("Please try again later")));
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE purpose = 'payment_needed'"),
        1
    );
}

#[tokio::test]
async fn a_moment_in_process_refuses_fails_and_the_artist_is_told_what_to_check() {
    let (app, standin) = spawn_inprocess_app(&[]).await;
    standin.refuse_next_creates(1, "token.salesConfig.pricePerToken", "too high");

    app.text(PHONE, "Refused one").await;
    app.drain_all().await;

    assert_eq!(standin.create_requests().len(), 1, "a 400 is not retried");
    assert!(standin.moments().is_empty());
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE state = 'failed'"),
        1
    );
    let last = app.last_text_to(PHONE).await.expect("a text");
    assert!(last.starts_with("Not posted: In Process refused"), "{last}");
    let reason: String = app.with_db(|c| {
        c.query_value(
            "SELECT last_error FROM jobs WHERE kind = 'dispatch_moment'",
            momentline::db::params![],
        )
    });
    assert!(reason.contains("pricePerToken"), "{reason}");
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_on_in_process_and_never_minted_twice() {
    let (app, standin) = spawn_inprocess_app(&[]).await;

    // A photo: found by its metadata URI.
    standin.create_then_stall(Duration::from_secs(3));
    text_photo(&app, "/media/lost.png", "Lost answer").await;
    drain_until_settled(&app).await;
    // A text: found as the artist's one new Moment since it was sent.
    standin.create_then_fail();
    app.text(PHONE, "Lost writing").await;
    drain_until_settled(&app).await;

    let moments = standin.moments();
    assert_eq!(moments.len(), 2, "each minted once: {moments:#?}");
    assert_eq!(standin.create_requests().len(), 2, "neither sent again");
    let texts = app.texts_to(PHONE).await;
    for m in &moments {
        let told = format!("Moment posted: {}", link(&m.collection, &m.token_id));
        assert!(texts.contains(&told), "{told} in {texts:?}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE state = 'created'"),
        2
    );
    assert_no_violations(&standin);
}

#[tokio::test]
async fn a_create_that_did_not_happen_is_looked_for_twice_then_sent_again_once() {
    let (app, standin) = spawn_inprocess_app(&[]).await;
    standin.fail_next_create();

    text_photo(&app, "/media/again.png", "Second time lucky").await;
    drain_until_settled(&app).await;

    assert_eq!(standin.create_requests().len(), 2, "sent again once");
    let moments = standin.moments();
    assert_eq!(moments.len(), 1);
    // The artist's timeline was read twice before the second create went.
    let looks = standin.timeline_requests();
    assert_eq!(looks.len(), 2, "{looks:?}");
    assert!(looks
        .iter()
        .all(|q| q.contains("chain_id=8453") && q.contains("hidden=true")));
    let told = format!(
        "Moment posted: {}",
        link(&moments[0].collection, &moments[0].token_id)
    );
    assert_eq!(
        app.last_text_to(PHONE).await.as_deref(),
        Some(told.as_str())
    );
    assert_eq!(standin.uploads().len(), 2, "nothing uploaded twice");
    assert_no_violations(&standin);
}

#[tokio::test]
async fn undo_is_hidden_by_the_running_server_not_only_by_a_test_round() {
    let (app, standin) = spawn_inprocess_app(&[]).await;
    app.text(PHONE, "Running").await;
    app.drain_all().await;
    assert_eq!(standin.moments().len(), 1);
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.runner.clone().run(stop.clone()));
    app.text(PHONE, "UNDO").await;
    for _ in 0..50 {
        if !standin.hides().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    assert_eq!(
        standin.hides().len(),
        1,
        "the runner claims hide_moment jobs"
    );
}

#[tokio::test]
async fn a_new_artists_first_two_moments_at_once_make_one_collection() {
    let (app, standin) = spawn_inprocess_app(&[]).await;

    app.text(PHONE, "One").await;
    app.text(PHONE, "Two").await;
    // Both due at once: the runner takes the artist's Moments one at a time.
    app.drain_all().await;

    let moments = standin.moments();
    assert_eq!(moments.len(), 2);
    assert_eq!(moments.iter().filter(|m| m.new_collection).count(), 1);
    assert_eq!(moments[0].collection, moments[1].collection);
    assert_no_violations(&standin);
}

#[tokio::test]
async fn the_in_process_key_is_never_kept_or_logged_in_clear() {
    if skip_on_postgres("reads the SQLite file's bytes") {
        return;
    }
    let (app, standin) = spawn_inprocess_app(&[]).await;
    app.text(PHONE, "Secretive").await;
    app.drain_all().await;
    assert_eq!(standin.moments().len(), 1);
    let bytes = std::fs::read(app.db_path()).expect("the database file");
    assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
}

#[tokio::test]
async fn a_link_becomes_a_writing_moment_whose_words_carry_the_link() {
    let (app, standin) = spawn_inprocess_app(&[]).await;
    app.text(PHONE, "New video https://youtu.be/abc123").await;
    app.drain_all().await;

    let moments = standin.moments();
    assert_eq!(moments.len(), 1);
    assert_eq!(moments[0].kind, "writing");
    assert_eq!(
        moments[0].token_content.as_deref(),
        Some("New video https://youtu.be/abc123")
    );
    // It starts the collection, whose URI is its metadata, served here.
    let uploads = standin.uploads();
    assert_eq!(uploads.len(), 1);
    let metadata: Value = fetch_public(&app, &uploads[0].url)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(metadata["external_url"], "https://youtu.be/abc123");
    assert_eq!(moments[0].body["contract"]["uri"], uploads[0].uri.as_str());
    assert_no_violations(&standin);
}
