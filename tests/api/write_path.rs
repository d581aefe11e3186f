//! The one write path: batches that isolate a failing write, a full queue that answers 503
//! and writes nothing, a database from the previous schema brought up to date, and a jobs
//! runner in which one slow call holds only its own slot.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

use momentline::db::params;
use momentline::store::{DbError, Store, WriteError};

use crate::helpers::*;

/// Holds every writer (SQLite's one, PostgreSQL's threads) busy until the returned senders
/// are dropped.
async fn hold_writer(store: &Store) -> Vec<std::sync::mpsc::Sender<()>> {
    let mut held = Vec::new();
    for _ in 0..store.writers() {
        held.push(hold_one_writer(store).await);
    }
    held
}

/// Holds one writer busy until the returned sender is dropped or sent to.
async fn hold_one_writer(store: &Store) -> std::sync::mpsc::Sender<()> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let store = store.clone();
    let mut started = Some(started);
    tokio::spawn(async move {
        store
            .write(move |_| {
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                let _ = held.recv_timeout(Duration::from_secs(10));
                Ok(())
            })
            .await
    });
    running.await.expect("the writer runs the holding write");
    release
}

/// Waits until `writes` wait for a writer.
async fn until_queued(store: &Store, writes: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.queued_writes() < writes {
        assert!(Instant::now() < deadline, "writes never queued");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn add_artist(
    store: &Store,
    name: &'static str,
    then_fail: bool,
) -> tokio::task::JoinHandle<Result<(), WriteError>> {
    let store = store.clone();
    tokio::spawn(async move {
        store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO artists (name, created_at) VALUES (?1, '2026-11-22T00:00:00.000Z')",
                    &[name],
                )?;
                if then_fail {
                    tx.execute("INSERT INTO no_such_table VALUES (1)", params![])?;
                }
                Ok::<_, DbError>(())
            })
            .await
    })
}

#[tokio::test]
async fn a_failing_write_is_rolled_back_alone_and_its_batch_commits() {
    let app = spawn_app().await;
    let release = hold_writer(&app.store).await;
    let before = app
        .store
        .writer_stats()
        .largest_batch
        .load(Ordering::Relaxed);
    let first = add_artist(&app.store, "First", false);
    until_queued(&app.store, 1).await;
    let failing = add_artist(&app.store, "Failing", true);
    until_queued(&app.store, 2).await;
    let last = add_artist(&app.store, "Last", false);
    until_queued(&app.store, 3).await;
    drop(release);

    assert!(first.await.expect("task").is_ok());
    assert!(matches!(
        failing.await.expect("task"),
        Err(WriteError::Failed(_))
    ));
    assert!(last.await.expect("task").is_ok());
    let names = app.count("SELECT count(*) FROM artists WHERE name IN ('First', 'Last')");
    assert_eq!(names, 2, "the other writes of the batch were committed");
    assert_eq!(
        app.count("SELECT count(*) FROM artists WHERE name = 'Failing'"),
        0,
        "the failing write left nothing"
    );
    let largest = app
        .store
        .writer_stats()
        .largest_batch
        .load(Ordering::Relaxed);
    assert!(
        largest >= 3 && largest > before,
        "the three waited and were committed together"
    );
}

#[tokio::test]
async fn a_full_write_queue_answers_503_and_writes_nothing_until_redelivered() {
    let app = spawn_app_with(|s| s.writer.queue = 1).await;
    telnyx_accepts_texts(&app.provider_api).await;
    app.verified(PHONE).await;
    let event = app.sms_event(PHONE, "Kept after a retry");

    let release = hold_writer(&app.store).await;
    // The queue holds the writes waiting behind the ones running: one fills it.
    let filler = add_artist(&app.store, "Filler", false);
    until_queued(&app.store, 1).await;
    let refused = app.telnyx_webhook(&event).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(header_of(&refused, "retry-after"), Some("1"));
    let connect = app.connect("+14155550123").await;
    assert_eq!(connect.status(), 503);
    drop(release);
    filler.await.expect("task").expect("the filler was written");

    assert_eq!(app.count("SELECT count(*) FROM moments"), 0);
    assert_eq!(
        app.count("SELECT count(*) FROM phone_numbers WHERE e164 = '+14155550123'"),
        0
    );
    // The provider delivers again, and now it is taken, once.
    assert_eq!(app.telnyx_webhook(&event).await.status(), 200);
    assert_eq!(app.telnyx_webhook(&event).await.status(), 200);
    app.drain().await;
    app.assert_one_moment_posted();
}

/// A database momentline 0.1.0 wrote at schema version 1 (see the dump's header).
const V1_DUMP: &str = include_str!("../../fixtures/db/v1.sql");
const V1_KEY: &str = "art_sk_99a0d939099ca5e8dd012ba05d1e25cb92b28a44715c71e4c989fb5576ce258a";

#[tokio::test]
async fn a_version_1_database_keeps_its_data_and_its_queued_texts_are_sent() {
    if skip_on_postgres("the dump is a SQLite database of momentline 0.1.0") {
        return;
    }
    // Its times are moved to end a minute ago (its pending number is as young as when the
    // dump was made, whatever the day), and its texts, waiting for a retry an hour away,
    // are made due now.
    let due_now = format!(
        "{}\nUPDATE messages SET next_attempt_at = created_at WHERE next_attempt_at IS NOT NULL;",
        dump_as_of(V1_DUMP, chrono::Utc::now())
    );
    let app = spawn_app_on_dump(&due_now, V1_KEY).await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(
        app.count("PRAGMA user_version"),
        momentline::store::migrations::VERSION
    );

    let messages = app.get_json("/api/messages").await;
    assert_eq!(messages["messages"].as_array().map(Vec::len), Some(8));
    let moments = app.get_json("/api/moments").await;
    let moments = moments["moments"].as_array().expect("moments").clone();
    assert_eq!(moments.len(), 2);
    assert_eq!(moments[1]["link"], "https://example.com/studio");
    assert_eq!(moments[0]["media"]["state"], "fetching");
    let phones = app.get_json("/api/phones").await;
    let states = texts_at(&phones["phones"], "state");
    assert_eq!(states.len(), 2);
    assert!(states.contains(&"verified") && states.contains(&"pending"));
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind = 'send_text'"),
        5
    );
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind = 'keep_media'"),
        1
    );

    // Every queued text goes out, once, in the order each number's were queued.
    assert_eq!(app.drain().await.done, 5);
    let to_first = app.texts_to("+14155552671").await;
    assert_eq!(to_first.len(), 4);
    assert!(to_first[0].starts_with("Someone is trying to connect"));
    assert!(to_first[1].starts_with("Connected to Sweetman"));
    assert!(to_first[2].starts_with("Moment posted: "));
    assert_eq!(app.texts_to("+14155550123").await.len(), 1);
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind = 'send_text'"),
        0
    );
    assert_eq!(app.drain().await.claimed(), 0);

    // And it goes on working: a new Moment from the verified number.
    app.text_and_drain("+14155552671", "After the upgrade")
        .await;
    let texts = app.texts_to("+14155552671").await;
    assert!(texts.last().is_some_and(|t| t.ends_with("/moments/3")));
}

#[tokio::test]
async fn a_hanging_provider_call_does_not_delay_another_numbers_text() {
    let app = spawn_app_with(|s| {
        s.run_workers = true;
        s.provider_timeout = Duration::from_secs(12);
    })
    .await;
    let slow = "+14155550123";
    Mock::given(method("POST"))
        .and(path("/v2/messages"))
        .and(body_partial_json(json!({ "to": slow })))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .with_priority(1)
        .mount(&app.provider_api)
        .await;
    telnyx_accepts_texts(&app.provider_api).await;

    assert_eq!(app.connect(slow).await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    while requests_to(&app.provider_api, "/v2/messages")
        .await
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the slow number's text was never sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    assert_eq!(app.connect(PHONE).await.status(), 200);
    loop {
        let states = app.get_json("/api/messages").await;
        let sent = states["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m: &Value| m["to"] == PHONE && m["state"] == "sent");
        if sent {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the other number's prompt waited behind the hanging call"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_write_that_panics_is_rolled_back_alone() {
    let app = spawn_app().await;
    let release = hold_writer(&app.store).await;
    let first = add_artist(&app.store, "Before", false);
    until_queued(&app.store, 1).await;
    let store = app.store.clone();
    let panicking = tokio::spawn(async move {
        store
            .write(|tx| -> Result<(), DbError> {
                tx.execute(
                    "INSERT INTO artists (name, created_at) VALUES ('Panics', 'x')",
                    params![],
                )?;
                panic!("a fault in a write");
            })
            .await
    });
    until_queued(&app.store, 2).await;
    let last = add_artist(&app.store, "After", false);
    until_queued(&app.store, 3).await;
    drop(release);
    assert!(first.await.expect("task").is_ok());
    assert!(matches!(
        panicking.await.expect("task"),
        Err(WriteError::Panicked)
    ));
    assert!(last.await.expect("task").is_ok());
    assert_eq!(
        app.count("SELECT count(*) FROM artists WHERE name IN ('Before', 'After')"),
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM artists WHERE name = 'Panics'"),
        0
    );
    // The writer goes on.
    assert!(add_artist(&app.store, "Later", false)
        .await
        .expect("task")
        .is_ok());
}

#[tokio::test]
async fn a_job_claimed_but_never_finished_runs_again_once_its_lease_runs_out() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    // Another runner claims the prompt and dies without a word.
    let claimed = app
        .store
        .write(|tx| {
            momentline::db::jobs::claim(
                tx,
                "a-runner-that-died",
                &[momentline::domain::JobKind::SendText],
                1,
                chrono::Duration::milliseconds(300),
                chrono::Utc::now(),
            )
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(app.drain().await.claimed(), 0, "held by its lease");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.drain().await.done, 1);
    assert_eq!(app.sent_to_telnyx().await.len(), 1);
    let prompt = app.get_json("/api/messages").await["messages"][0].clone();
    assert_eq!(prompt["state"], "sent");
    assert_eq!(prompt["attempts"], 2);
}

#[tokio::test]
async fn paced_texts_go_out_at_the_rate_and_never_outlive_their_claims() {
    // Eight texts at two a second take 3.5 s; each claim holds for 3 s only, so a text
    // claimed long before its turn would be taken over and sent twice.
    let app = spawn_app_with(|s| {
        s.run_workers = true;
        s.send_rate = Some(2.0);
        s.job_lease = chrono::Duration::seconds(3);
        s.job_concurrency = 8;
    })
    .await;
    telnyx_accepts_texts(&app.provider_api).await;
    let phones: Vec<String> = (0..8).map(|i| format!("+1415555{:04}", 3100 + i)).collect();
    let started = Instant::now();
    for phone in &phones {
        assert_eq!(app.connect(phone).await.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.count("SELECT count(*) FROM messages WHERE state = 'sent'") < 8 {
        assert!(Instant::now() < deadline, "the texts were never all sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.sent_to_telnyx().await.len(), 8, "each text once");
    assert!(
        took >= Duration::from_millis(3400),
        "eight texts at two a second went out in {took:?}"
    );
}

#[tokio::test]
async fn the_moment_posted_text_follows_its_webhook_at_once() {
    let app = spawn_app_with(|s| s.run_workers = true).await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    app.text(PHONE, "yes").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.texts_to(PHONE).await.len() < 2 {
        assert!(Instant::now() < deadline, "the confirmation never went out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    app.text(PHONE, "Straight out").await;
    while app.texts_to(PHONE).await.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_millis(700),
            "the Moment's link waited for the runner's poll"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(app.texts_to(PHONE).await[2].starts_with("Moment posted: "));
}

#[tokio::test]
async fn readiness_is_503_while_the_write_queue_is_full_and_health_stays_up() {
    let app = spawn_app_with(|s| s.writer.queue = 1).await;
    let ready = app.get_keyless("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["writes"], true);
    let head = app
        .http
        .head(app.url("/readyz"))
        .send()
        .await
        .expect("HEAD answers");
    assert_eq!(head.status(), 200);

    let release = hold_writer(&app.store).await;
    let filler = add_artist(&app.store, "Filler", false);
    until_queued(&app.store, 1).await;
    let busy = app.get_keyless("/readyz").await;
    assert_eq!(busy.status(), 503, "a webhook would be refused now");
    assert_eq!(header_of(&busy, "retry-after"), Some("1"));
    let body: serde_json::Value = busy.json().await.expect("json");
    assert_eq!(body["writes"], false);
    assert_eq!(body["database"], true);
    // The database still answers reads: health stays up (drain, do not restart).
    assert_eq!(app.get_keyless("/healthz").await.status(), 200);
    drop(release);
    filler.await.expect("task").expect("the filler was written");
    assert_eq!(
        app.get_keyless("/readyz").await.status(),
        200,
        "ready again"
    );
}

/// Texts from a verified number, each taken through its Moment to the reply sent: the SQL
/// statements the writes ran for each (the writer's BEGIN, SAVEPOINT and COMMIT among them),
/// as the writer counts them. A bound on the write path's cost on either engine: a change
/// that adds statements to every text shows here first.
#[tokio::test]
async fn a_text_takes_few_statements_from_its_webhook_to_its_reply_sent() {
    const TEXTS: u64 = 10;
    let app = spawn_verified_app().await;
    app.drain().await;
    let stats = app.store.writer_stats();
    let before = stats.statements.load(Ordering::Relaxed);
    let sent_before = app.sent_to_telnyx().await.len();
    for i in 0..TEXTS {
        app.text_and_drain(PHONE, &format!("Night swim {i}")).await;
    }
    let per_text = (stats.statements.load(Ordering::Relaxed) - before) / TEXTS;
    assert_eq!(
        app.sent_to_telnyx().await.len() - sent_before,
        TEXTS as usize,
        "each text was answered"
    );
    let bound = match app.store.engine() {
        Engine::Sqlite => STATEMENTS_PER_TEXT_SQLITE,
        Engine::Postgres => STATEMENTS_PER_TEXT_POSTGRES,
    };
    eprintln!("statements per text: {per_text}");
    assert!(
        per_text <= bound,
        "{per_text} statements per text, more than {bound}"
    );
}

/// What a text costs now, webhook to reply sent (the claim rounds included, one each here):
/// its Moment settled in the write that records it without reading back what that write
/// wrote, its send job removed in the statement that checks its claim, no number lock taken
/// twice, and a claim that takes back no run-out claims unless its read saw one.
const STATEMENTS_PER_TEXT_SQLITE: u64 = 23;
const STATEMENTS_PER_TEXT_POSTGRES: u64 = 19;

/// On PostgreSQL several batches run at once, each holding its writes' locks until it
/// commits: a write whose lock another batch holds is set aside, not left waiting inside its
/// batch (where two batches could wait for each other), and runs alone once the holder
/// commits; the rest of its batch does not wait for it.
#[tokio::test]
async fn a_write_whose_lock_another_batch_holds_runs_alone_after_it() {
    let app = spawn_app().await;
    if app.engine() != Engine::Postgres {
        eprintln!("skipped on SQLite: its one writer runs every write alone");
        return;
    }
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (taken, locked) = tokio::sync::oneshot::channel();
    let store = app.store.clone();
    let mut taken = Some(taken);
    let holder = tokio::spawn(async move {
        store
            .write(move |tx| {
                tx.lock("number:+14155550100")?;
                tx.execute(
                    "INSERT INTO artists (name, created_at) VALUES ('Holder', '2026-11-22T00:00:00.000Z')",
                    params![],
                )?;
                if let Some(taken) = taken.take() {
                    let _ = taken.send(());
                }
                let _ = held.recv_timeout(Duration::from_secs(10));
                Ok::<_, DbError>(())
            })
            .await
    });
    locked.await.expect("the holding write runs");
    // Every other writer busy but one, held at a gate, so that the two writes below wait
    // together and are taken as one batch when the gate opens.
    let mut busy = Vec::new();
    for _ in 2..app.store.writers() {
        busy.push(hold_one_writer(&app.store).await);
    }
    let gate = hold_one_writer(&app.store).await;
    let store = app.store.clone();
    let waiter = tokio::spawn(async move {
        store
            .write(|tx| {
                tx.lock("number:+14155550100")?;
                // It runs once the holder committed: it sees the holder's row.
                let holders: i64 = tx.query_value(
                    "SELECT count(*) FROM artists WHERE name = 'Holder'",
                    params![],
                )?;
                tx.execute(
                    "INSERT INTO artists (name, created_at) VALUES ('Waiter', '2026-11-22T00:00:00.000Z')",
                    params![],
                )?;
                Ok::<_, DbError>(holders)
            })
            .await
    });
    until_queued(&app.store, 1).await;
    // Another write, with no lock, behind it in the same batch: it commits while the first
    // still waits for the holder.
    let other = add_artist(&app.store, "Other", false);
    until_queued(&app.store, 2).await;
    drop(gate);
    let other = tokio::time::timeout(Duration::from_secs(5), other)
        .await
        .expect("the free write waited for the one set aside");
    assert!(other.expect("task").is_ok());
    assert!(
        !waiter.is_finished(),
        "the waiting write did not wait for the lock"
    );
    drop(release);
    drop(busy);
    assert!(holder.await.expect("task").is_ok());
    let seen = waiter
        .await
        .expect("task")
        .expect("the waiting write committed");
    assert_eq!(seen, 1, "it ran after the holder committed");
    assert_eq!(
        app.count("SELECT count(*) FROM artists WHERE name IN ('Holder', 'Waiter', 'Other')"),
        3
    );
}
