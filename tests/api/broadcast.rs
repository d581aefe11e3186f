//! `momentline broadcast`: the real binary queues an operator's text beside the running
//! server, whose jobs runner fans it out and sends it.

use std::process::Output;

use chrono::Utc;
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;
use momentline::domain::JobKind;

const VERIFIED_TOO: &str = "+14155552672";
const REFUSED: &str = "+14155552673";
const PENDING: &str = "+14155552674";
const STRANGER: &str = "+14155552675";
const OPTED_OUT: &str = "+14155552676";

/// Runs the binary on `db` (the app's database, or one of the test's own).
fn momentline(db: &[(&'static str, String); 2], args: &[&str]) -> Output {
    run_binary(db, args)
}

/// Asserts the binary exited with `code` and said `words` on stderr.
fn assert_exits_saying(out: &Output, code: i32, words: &str) {
    assert_eq!(out.status.code(), Some(code));
    assert!(stderr(out).contains(words), "{}", stderr(out));
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Queues `text` with the binary, answering the broadcast's id.
fn broadcast(db: &[(&'static str, String); 2], text: &str) -> String {
    let out = momentline(db, &["broadcast", text]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    assert!(id.parse::<i64>().is_ok(), "the id alone on stdout: {id:?}");
    id
}

/// `broadcast status ID`, as `name → value`.
fn status(db: &[(&'static str, String); 2], id: &str) -> Vec<(String, String)> {
    let out = momentline(db, &["broadcast", "status", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("name: value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn value<'a>(status: &'a [(String, String)], name: &str) -> &'a str {
    status
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {status:?}"))
}

/// sent, waiting, failed, withheld.
fn counts(status: &[(String, String)]) -> [u64; 4] {
    [
        "sent",
        "waiting",
        "failed",
        "withheld (opted out after queuing)",
    ]
    .map(|name| value(status, name).parse().expect("a count"))
}

/// The app with Telnyx taking texts, and the variables that point the binary at its database.
async fn spawn_broadcasting_app() -> (TestApp, [(&'static str, String); 2]) {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    let db = app.database_env();
    (app, db)
}

/// Runs jobs of `kind` alone until none is due, at most `rounds` rounds.
async fn run_until_idle(app: &TestApp, kind: JobKind, rounds: usize) {
    for _ in 0..rounds {
        let round = app.runner.run_once(&[kind]).await.expect("a jobs round");
        if round.claimed() == 0 {
            return;
        }
    }
    panic!("the {kind} jobs never ended");
}

/// Runs the fan-out alone until it has queued every number.
async fn fan_out(app: &TestApp) {
    run_until_idle(app, JobKind::Broadcast, 100).await;
}

/// Whom momentline asked the provider to send `body` to (accepted or not), in order.
async fn recipients_of(app: &TestApp, body: &str) -> Vec<String> {
    let mut to: Vec<String> = app
        .sent_to_telnyx()
        .await
        .iter()
        .filter(|b| b["text"] == body)
        .map(|b| {
            assert_eq!(b["from"], OUR_NUMBER, "{b}");
            b["to"].as_str().expect("to").to_owned()
        })
        .collect();
    to.sort();
    to
}

#[tokio::test]
async fn a_broadcast_reaches_every_verified_number_and_no_other_and_its_status_counts_each_text() {
    let (app, db) = spawn_broadcasting_app().await;
    for phone in [PHONE, VERIFIED_TOO, REFUSED, OPTED_OUT] {
        app.verified(phone).await;
    }
    app.text(OPTED_OUT, "STOP").await;
    assert_eq!(app.connect(PENDING).await.status(), 200);
    app.text_and_drain(STRANGER, "hello?").await;
    // From now on Telnyx refuses one number for good.
    Mock::given(method("POST"))
        .and(path("/v2/messages"))
        .and(body_partial_json(json!({ "to": REFUSED })))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "errors": [{ "code": "40310", "title": "Invalid 'to' address" }]
        })))
        .with_priority(1)
        .mount(&app.provider_api)
        .await;

    let body = "New show Friday at 8 — doors at 7.\nReply STOP to opt out.";
    let id = broadcast(&db, body);
    let queued = status(&db, &id);
    assert_eq!(value(&queued, "broadcast"), id);
    assert_eq!(value(&queued, "numbers"), "0");
    assert_eq!(value(&queued, "queuing"), "in progress");
    assert_eq!(counts(&queued), [0, 0, 0, 0]);

    fan_out(&app).await;
    let fanned = status(&db, &id);
    assert_eq!(value(&fanned, "numbers"), "3");
    assert!(
        value(&fanned, "queuing").starts_with("finished "),
        "{fanned:?}"
    );
    assert_eq!(counts(&fanned), [0, 3, 0, 0]);

    app.drain().await;
    let drained = status(&db, &id);
    assert_eq!(counts(&drained), [2, 0, 1, 0], "{drained:?}");
    assert_eq!(
        recipients_of(&app, body).await,
        [PHONE, VERIFIED_TOO, REFUSED],
        "each verified number once (the last refused it)"
    );
    for phone in [PENDING, STRANGER, OPTED_OUT] {
        assert!(
            !app.texts_to(phone).await.iter().any(|t| t == body),
            "{phone} was sent the broadcast"
        );
    }
    // Broadcast texts are in each artist's conversation, as what they are.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM messages WHERE purpose = 'broadcast' AND artist_id IS NOT NULL"
        ),
        3
    );
}

#[tokio::test]
async fn a_number_that_opts_out_after_the_broadcast_is_queued_is_never_sent_it() {
    let (app, db) = spawn_broadcasting_app().await;
    for phone in [PHONE, VERIFIED_TOO] {
        app.verified(phone).await;
    }
    let body = "Studio open day on Sunday";
    let id = broadcast(&db, body);
    fan_out(&app).await;
    app.text_and_drain(VERIFIED_TOO, "stop").await;

    assert_eq!(recipients_of(&app, body).await, [PHONE]);
    let after = status(&db, &id);
    assert_eq!(value(&after, "numbers"), "2");
    assert_eq!(counts(&after), [1, 0, 0, 1], "{after:?}");
}

#[tokio::test]
async fn a_fan_out_larger_than_a_batch_reaches_every_number_once() {
    let (app, db) = spawn_broadcasting_app().await;
    // A thousand verified numbers: two whole batches, then one that finds none left.
    let numbers: Vec<String> = (0..1000).map(|n| format!("+1415555{n:04}")).collect();
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    app.insert_verified(&numbers, &now).await;
    let body = "Thank you for a thousand Moments";
    let id = broadcast(&db, body);

    app.runner
        .run_once(&[JobKind::Broadcast])
        .await
        .expect("a batch");
    let first = status(&db, &id);
    assert_eq!(value(&first, "numbers"), "500");
    assert_eq!(value(&first, "queuing"), "in progress");

    fan_out(&app).await;
    let queued = status(&db, &id);
    assert_eq!(value(&queued, "numbers"), "1000");
    assert!(value(&queued, "queuing").starts_with("finished "));
    assert_eq!(counts(&queued), [0, 1000, 0, 0]);

    app.drain().await;
    assert_eq!(counts(&status(&db, &id)), [1000, 0, 0, 0]);
    assert_eq!(recipients_of(&app, body).await, numbers);
}

#[tokio::test]
async fn broadcast_texts_are_spread_at_the_send_rate() {
    let app = spawn_app_with_env(&[("MOMENTLINE_SEND_RATE", "10")], |_| {}).await;
    let db = app.database_env();
    let numbers = [PHONE, VERIFIED_TOO, REFUSED].map(str::to_owned);
    app.insert_verified(&numbers, "2026-01-01T00:00:00.000Z")
        .await;
    broadcast(&db, "Paced");
    fan_out(&app).await;
    let due: Vec<String> = app.with_db(|c| {
        c.query_map(
            "SELECT run_after FROM jobs WHERE kind = 'send_text' ORDER BY id",
            params![],
            |r| r.get(0),
        )
    });
    let due: Vec<chrono::DateTime<chrono::FixedOffset>> = due
        .iter()
        .map(|at| chrono::DateTime::parse_from_rfc3339(at).expect("a time"))
        .collect();
    let gaps: Vec<f64> = due
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).num_microseconds().expect("a gap") as f64 / 1e6)
        .collect();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    for gap in gaps {
        assert!(
            (gap - 0.1).abs() < 0.002,
            "one tenth of a second apart: {gap}"
        );
    }
}

#[tokio::test]
async fn a_broadcast_text_not_yet_due_holds_back_none_of_the_numbers_other_texts() {
    let app = spawn_app_with_env(&[("MOMENTLINE_SEND_RATE", "1")], |_| {}).await;
    let db = app.database_env();
    telnyx_accepts_texts(&app.provider_api).await;
    app.verified(PHONE).await;
    // Twenty numbers before PHONE: its broadcast text is due about 20 seconds ahead.
    let before: Vec<String> = (0..20).map(|n| format!("+1202555{n:04}")).collect();
    app.insert_verified(&before, "2026-01-01T00:00:00.000Z")
        .await;
    broadcast(&db, "Far ahead");
    fan_out(&app).await;
    app.text(PHONE, "STOP").await;
    // A few rounds of sends, seconds before PHONE's broadcast text is due.
    for _ in 0..3 {
        app.send_round().await;
    }
    let message_id = match app.engine() {
        Engine::Sqlite => "j.payload ->> 'message_id'",
        Engine::Postgres => "CAST(CAST(j.payload AS jsonb) ->> 'message_id' AS BIGINT)",
    };
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let not_due: i64 = app.with_db(|c| {
        c.query_value(
            &format!(
                "SELECT count(*) FROM jobs j JOIN messages m ON m.id = {message_id}
                 WHERE m.phone = '+14155552671' AND m.purpose = 'broadcast'
                   AND j.state = 'queued' AND j.run_after > ?1"
            ),
            &[&now],
        )
    });
    assert_eq!(not_due, 1, "PHONE's broadcast text is not due yet");
    let texts = app.texts_to(PHONE).await;
    assert!(
        texts.last().is_some_and(|t| t.contains("unsubscribed")),
        "the opt-out confirmation went out first: {texts:?}"
    );
    assert!(!texts.iter().any(|t| t == "Far ahead"), "{texts:?}");
}

#[tokio::test]
async fn broadcasts_do_not_count_against_a_numbers_reply_cap() {
    let (app, db) = spawn_broadcasting_app().await;
    app.verified(PHONE).await;
    // As many broadcasts in the hour as the cap allows automatic replies.
    for n in 0..30 {
        broadcast(&db, &format!("News {n}"));
    }
    fan_out(&app).await;
    app.drain().await;
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE purpose = 'broadcast' AND state = 'sent'"),
        30
    );
    app.text_and_drain(PHONE, "First light").await;
    let last = app.texts_to(PHONE).await.pop().expect("a reply");
    assert!(last.starts_with("Moment posted: "), "{last}");
}

#[test]
fn bad_broadcasts_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = BinaryDatabase::new(dir.path().join("bad.db"));
    let db = database.env();

    let empty = momentline(&db, &["broadcast", "  \n"]);
    assert_exits_saying(&empty, 1, "the broadcast text is empty");

    let long = momentline(&db, &["broadcast", &"a".repeat(1531)]);
    assert_exits_saying(
        &long,
        1,
        "takes 11 SMS segments (GSM-7); at most 10 are allowed",
    );

    let missing = momentline(&db, &["broadcast"]);
    assert_eq!(missing.status.code(), Some(2), "a usage error");
    assert!(stderr(&missing).contains("<TEXT>"), "{}", stderr(&missing));

    // On a database that exists: none is made by reading.
    assert!(momentline(&db, &["artists", "add", "--name", "Ada"])
        .status
        .success());
    let unknown = momentline(&db, &["broadcast", "status", "42"]);
    assert_exits_saying(&unknown, 1, "no broadcast 42");

    let not_an_id = momentline(&db, &["broadcast", "status", "first"]);
    assert_exits_saying(&not_an_id, 2, "invalid value 'first'");

    // Nothing was queued by any of them.
    assert_eq!(database.count("SELECT count(*) FROM broadcasts"), 0);

    // The text "status" itself goes after `--`.
    let out = momentline(&db, &["broadcast", "--", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 SMS segment (GSM-7)"),
        "{}",
        stderr(&out)
    );
}

// Through TextFlow: a batch of numbers is one bulk-sms call.

const BULK_SMS: &str = "/api/bulk-sms";
const BULK_COUNT: &str = "/api/bulk-count";

/// TextFlow's answer to a bulk job it took.
fn bulk_taken() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "ok": true, "status": 200, "message": "Messages sent successfully"
    }))
}

/// TextFlow's answer to `bulk-count`: `waiting` recipients still to send to.
fn bulk_waiting(waiting: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "ok": true, "status": 200, "message": "OK", "data": { "count": waiting }
    }))
}

/// The app sending through TextFlow, whose stand-in takes every single text; the variables
/// that point the binary at its database.
async fn spawn_textflow_app() -> (TestApp, [(&'static str, String); 2]) {
    let app = spawn_app_sending_with("textflow").await;
    answer_posts(
        &app.provider_api,
        "/api/send-sms",
        ResponseTemplate::new(200).set_body_json(fixture("textflow/send.response.json")),
    )
    .await;
    let db = app.database_env();
    (app, db)
}

/// `broadcast status ID` with the binary sending through the app's TextFlow stand-in.
fn textflow_status(
    app: &TestApp,
    db: &[(&'static str, String); 2],
    id: &str,
) -> Vec<(String, String)> {
    let base = app.provider_api.uri();
    let env = [
        ("MOMENTLINE_SMS_PROVIDER", "textflow"),
        ("TEXTFLOW_API_KEY", TEXTFLOW_API_KEY),
        ("TEXTFLOW_API_BASE", base.as_str()),
    ];
    let out = run_binary_reading(db, &env, &["broadcast", "status", id], "");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("name: value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Sends every batch due until none is left.
async fn send_batches(app: &TestApp) {
    run_until_idle(app, JobKind::SendBatch, 50).await;
}

/// The bodies of every bulk-sms call, in order, each checked to carry exactly TextFlow's
/// documented fields with momentline's key.
async fn bulk_calls(app: &TestApp) -> Vec<(Vec<String>, String)> {
    requests_to(&app.provider_api, BULK_SMS)
        .await
        .iter()
        .map(|r| {
            assert_eq!(
                request_header(r, "authorization"),
                Some(format!("Bearer {TEXTFLOW_API_KEY}").as_str())
            );
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            let fields: Vec<&str> = body
                .as_object()
                .expect("an object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(fields, ["phone_numbers", "text"], "{body}");
            let numbers = body["phone_numbers"]
                .as_array()
                .expect("an array")
                .iter()
                .map(|n| n.as_str().expect("a number").to_owned())
                .collect();
            (numbers, body["text"].as_str().expect("text").to_owned())
        })
        .collect()
}

#[tokio::test]
async fn through_textflow_a_broadcast_is_one_bulk_sms_call_a_batch_of_500_and_its_status_shows_textflows_waiting_count(
) {
    let (app, db) = spawn_textflow_app().await;
    answer_posts(&app.provider_api, BULK_SMS, bulk_taken()).await;
    // TextFlow has 1199 recipients still to send to when first asked, none after.
    answer_first_post(&app.provider_api, BULK_COUNT, bulk_waiting(1199)).await;
    answer_posts(&app.provider_api, BULK_COUNT, bulk_waiting(0)).await;
    let numbers: Vec<String> = (0..1200).map(|n| format!("+1202555{n:04}")).collect();
    app.insert_verified(&numbers, "2026-01-01T00:00:00.000Z")
        .await;
    let body = "New record out Friday";
    let id = broadcast(&db, body);
    fan_out(&app).await;
    // One number of the second batch opts out after it is queued, before it goes.
    let leaving = numbers[700].as_str();
    app.text(leaving, "STOP").await;
    app.drain().await;

    send_batches(&app).await;
    let calls = bulk_calls(&app).await;
    // The batches go at once, so their calls arrive in any order.
    let mut sizes: Vec<usize> = calls.iter().map(|(n, _)| n.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [200, 499, 500], "three calls for 1200 numbers");
    assert!(calls.iter().all(|(_, text)| text == body));
    let mut sent: Vec<String> = calls.into_iter().flat_map(|(n, _)| n).collect();
    assert!(
        !sent.iter().any(|n| n == leaving),
        "an opted-out number in a batch"
    );
    sent.sort();
    let mut expected = numbers.clone();
    expected.retain(|n| n != leaving);
    assert_eq!(sent, expected, "every other number, once");
    let singles = requests_to(&app.provider_api, "/api/send-sms").await;
    assert!(
        singles
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains(body)),
        "no broadcast text went one number a call"
    );
    assert_eq!(singles.len(), 1, "only the opt-out confirmation");

    let running = textflow_status(&app, &db, &id);
    assert_eq!(value(&running, "numbers"), "1200");
    assert_eq!(counts(&running), [0, 1199, 0, 1], "{running:?}");
    assert_eq!(value(&running, "textflow waiting"), "1199");
    assert_eq!(
        value(&running, "bulk batches"),
        "3 (queued 0, running 3, finished 0, failed 0)"
    );

    // TextFlow has sent every recipient: its jobs are done, their texts sent.
    let finished = textflow_status(&app, &db, &id);
    assert_eq!(value(&finished, "textflow waiting"), "0");
    assert_eq!(counts(&finished), [1199, 0, 0, 1], "{finished:?}");
    assert_eq!(
        value(&finished, "bulk batches"),
        "3 (queued 0, running 0, finished 3, failed 0)"
    );
    // Each text is still its artist's own outbound message.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM messages WHERE purpose = 'broadcast' AND artist_id IS NOT NULL"
        ),
        1200
    );
    assert_eq!(requests_to(&app.provider_api, BULK_COUNT).await.len(), 2);
}

#[tokio::test]
async fn a_bulk_sms_call_that_fails_is_retried_as_one_unit_and_once_taken_is_never_sent_again() {
    let (app, db) = spawn_textflow_app().await;
    answer_first_post_then(
        &app.provider_api,
        BULK_SMS,
        ResponseTemplate::new(503),
        bulk_taken(),
    )
    .await;
    let numbers = [PHONE, VERIFIED_TOO, REFUSED].map(str::to_owned);
    app.insert_verified(&numbers, "2026-01-01T00:00:00.000Z")
        .await;
    let id = broadcast(&db, "Doors at 7");
    fan_out(&app).await;
    send_batches(&app).await;
    // Later rounds, and a second fan-out job, find nothing more to send.
    send_batches(&app).await;
    fan_out(&app).await;

    let calls = bulk_calls(&app).await;
    assert_eq!(
        calls.len(),
        2,
        "the failed call, then the one TextFlow took"
    );
    assert_eq!(calls[0], calls[1], "retried as the same batch");
    assert_eq!(calls[0].0, numbers);
    answer_posts(&app.provider_api, BULK_COUNT, bulk_waiting(3)).await;
    let status = textflow_status(&app, &db, &id);
    assert_eq!(counts(&status), [0, 3, 0, 0], "{status:?}");
    assert_eq!(value(&status, "textflow waiting"), "3");
}

#[tokio::test]
async fn a_batch_textflow_refuses_is_never_sent_again_and_a_number_it_names_gets_its_error() {
    let (app, db) = spawn_textflow_app().await;
    // The first batch is refused whole; the second taken, but for one number it names.
    answer_first_post_then(
        &app.provider_api,
        BULK_SMS,
        ResponseTemplate::new(200).set_body_json(json!({
            "ok": false, "status": 400, "message": "Phone number is invalid"
        })),
        ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "status": 200, "message": "Messages sent successfully",
            "data": { "invalid_numbers": [REFUSED] }
        })),
    )
    .await;
    app.insert_verified(&[PHONE.to_owned()], "2026-01-01T00:00:00.000Z")
        .await;
    let refused = broadcast(&db, "First news");
    fan_out(&app).await;
    send_batches(&app).await;
    app.insert_verified(
        &[VERIFIED_TOO.to_owned(), REFUSED.to_owned()],
        "2026-01-01T00:00:00.000Z",
    )
    .await;
    let taken = broadcast(&db, "Second news");
    fan_out(&app).await;
    send_batches(&app).await;
    send_batches(&app).await;

    let calls = bulk_calls(&app).await;
    assert_eq!(calls.len(), 2, "each batch once: {calls:?}");
    let first = textflow_status(&app, &db, &refused);
    assert_eq!(counts(&first), [0, 0, 1, 0], "{first:?}");
    assert_eq!(
        value(&first, "bulk batches"),
        "1 (queued 0, running 0, finished 0, failed 1)"
    );
    let errors: Vec<(String, Option<String>)> = app.with_db(|c| {
        c.query_map(
            "SELECT phone, last_error FROM messages WHERE body = 'Second news' AND state = 'error'",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    });
    assert_eq!(
        errors,
        [(
            REFUSED.to_owned(),
            Some("textflow: refused by textflow bulk-sms".to_owned())
        )]
    );
    let error: Option<String> = app.with_db(|c| {
        c.query_value(
            "SELECT last_error FROM messages WHERE body = 'First news'",
            params![],
        )
    });
    assert_eq!(
        error.as_deref(),
        Some("textflow 400: Phone number is invalid")
    );
    answer_posts(&app.provider_api, BULK_COUNT, bulk_waiting(2)).await;
    let second = textflow_status(&app, &db, &taken);
    assert_eq!(counts(&second), [0, 2, 1, 0], "{second:?}");
    assert_eq!(value(&second, "textflow waiting"), "2");
}

#[tokio::test]
async fn other_providers_keep_one_call_a_number() {
    let (app, db) = spawn_broadcasting_app().await;
    let numbers = [PHONE, VERIFIED_TOO].map(str::to_owned);
    app.insert_verified(&numbers, "2026-01-01T00:00:00.000Z")
        .await;
    let id = broadcast(&db, "One by one");
    fan_out(&app).await;
    app.drain().await;
    assert_eq!(recipients_of(&app, "One by one").await, numbers);
    let done = status(&db, &id);
    assert_eq!(counts(&done), [2, 0, 0, 0]);
    assert!(
        !done.iter().any(|(name, _)| name == "bulk batches"),
        "{done:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM broadcast_batches"), 0);
}
