//! A signed text is never lost: a value out of range is answered, and a message that cannot
//! be received as it asks is kept with the failure, answered 200 and its artist told.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn a_price_too_high_is_answered_and_nothing_is_posted() {
    let app = spawn_verified_app().await;
    let event = app.sms_event(PHONE, "Night\nprice: 10000000000000");
    let response = app.telnyx_webhook(&event).await;
    assert_eq!(response.status(), 200);
    app.drain().await;
    assert_eq!(app.count("SELECT count(*) FROM moments"), 0);
    let last = app.texts_to(PHONE).await.pop().expect("a reply");
    assert_eq!(
        last,
        "Nothing was posted: a Moment's price can be at most 1000000000 USDC. Text it again \
         with a lower price."
    );
    // The message is kept: a redelivery is a duplicate, not a second reply.
    let again: Value = app.telnyx_webhook(&event).await.json().await.expect("json");
    assert_eq!(again["message"], "Duplicate ignored");
    app.drain().await;
    assert_eq!(
        app.texts_to(PHONE).await.len(),
        3,
        "prompt, confirmation, one answer"
    );
}

#[tokio::test]
async fn a_message_the_database_refuses_is_kept_with_the_failure_and_its_artist_told() {
    let app = spawn_verified_app().await;
    // Stands in for any value the database refuses on every attempt.
    app.with_db(|c| {
        c.execute_batch(match c.engine() {
            Engine::Sqlite => {
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON moments WHEN NEW.title = 'Boom'
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            }
            Engine::Postgres => {
                "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.title = 'Boom' THEN RAISE EXCEPTION 'refused by the test'; END IF;
                   RETURN NEW;
                 END $$;
                 CREATE TRIGGER refuse_boom BEFORE INSERT ON moments
                 FOR EACH ROW EXECUTE FUNCTION refuse_boom();"
            }
        })
    });
    let event = app.sms_event(PHONE, "Boom");
    let response = app.telnyx_webhook(&event).await;
    assert_eq!(response.status(), 200, "a retry would fail the same way");
    assert_eq!(app.count("SELECT count(*) FROM moments"), 0);

    let messages = app.get_json("/api/messages").await;
    let kept = messages["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["body"] == "Boom")
        .cloned()
        .expect("the message is kept in the artist's conversation");
    assert!(
        kept["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused by the test")),
        "{kept}"
    );
    app.drain().await;
    assert_eq!(
        app.texts_to(PHONE).await.pop().as_deref(),
        Some("Your Moment could not be posted. Please try again later.")
    );

    // Redelivered: nothing more happens.
    let again: Value = app.telnyx_webhook(&event).await.json().await.expect("json");
    assert_eq!(again["message"], "Duplicate ignored");
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE body = 'Boom'"),
        1
    );
    assert_eq!(app.drain().await.claimed(), 0);
}

#[tokio::test]
async fn a_full_database_file_answers_webhooks_503_loses_nothing_and_takes_them_once_room_returns()
{
    if skip_on_postgres("a full disk is tried on SQLite's file") {
        return;
    }
    let app = spawn_verified_app().await;
    // The writer's connection may grow the file no further: as a full disk, to SQLite.
    let pages = app.count("PRAGMA page_count");
    app.store
        .write_waiting(move |c| c.execute_batch(&format!("PRAGMA max_page_count = {pages}")))
        .await
        .expect("the limit is set");
    let words = "x".repeat(1500);
    let (mut taken, mut refused) = (0, Vec::new());
    for i in 0..300 {
        let event = app.sms_event(PHONE, &format!("Full {i} {words}"));
        let response = app.telnyx_webhook(&event).await;
        match response.status().as_u16() {
            200 => taken += 1,
            503 => {
                // The provider redelivers after the wait.
                assert_eq!(header_of(&response, "retry-after"), Some("5"));
                refused.push(event)
            }
            other => panic!("a full disk answered {other}"),
        }
        if refused.len() == 3 {
            break;
        }
    }
    assert_eq!(refused.len(), 3, "the file filled up");
    let kept = "SELECT count(*) FROM messages WHERE direction = 'inbound' AND body LIKE 'Full %'";
    assert_eq!(
        app.count(kept),
        taken,
        "every 200 is kept, nothing refused is half-written"
    );

    // Room returns: the provider's redeliveries are taken, each once, without a restart.
    app.store
        .write_waiting(|c| c.execute_batch("PRAGMA max_page_count = 1073741823"))
        .await
        .expect("the limit is lifted");
    for event in &refused {
        assert_eq!(app.telnyx_webhook(event).await.status(), 200);
        assert_eq!(app.telnyx_webhook(event).await.status(), 200, "once");
    }
    assert_eq!(app.count(kept), taken + 3);
    app.drain().await;
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE title LIKE 'Full %'"),
        taken + 3,
        "every text taken is its Moment"
    );
}

/// The files made immutable (`chattr +i`: no process may write them, not even through a
/// descriptor already open, not even root's) until dropped.
struct ReadOnly(Vec<std::path::PathBuf>);

impl ReadOnly {
    /// `None` where the file system or the user may not set the flag (said, and under CI a
    /// failure: CI's machine can).
    fn make(files: Vec<std::path::PathBuf>) -> Option<Self> {
        let set = std::process::Command::new("chattr")
            .arg("+i")
            .args(&files)
            .output();
        match set {
            Ok(out) if out.status.success() => Some(Self(files)),
            other => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must make the database read-only with chattr +i: {other:?}"
                );
                eprintln!("skipped: chattr +i is not possible here: {other:?}");
                None
            }
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .args(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_read_only_database_file_answers_webhooks_503_loses_nothing_and_takes_them_once_writable()
{
    if skip_on_postgres("a read-only file is tried on SQLite's") {
        return;
    }
    let app = spawn_verified_app().await;
    let kept = "SELECT count(*) FROM messages WHERE direction = 'inbound' AND body LIKE 'Read %'";
    let first = app.sms_event(PHONE, "Read 0");
    assert_eq!(app.telnyx_webhook(&first).await.status(), 200);

    // The file and its write-ahead log turn read-only under the running server.
    let file = app.db_path();
    let wal = file.with_extension("db-wal");
    assert!(wal.exists(), "the database is in WAL mode");
    let Some(read_only) = ReadOnly::make(vec![file, wal]) else {
        return;
    };
    let mut refused = Vec::new();
    for i in 1..=3 {
        let event = app.sms_event(PHONE, &format!("Read {i}"));
        let response = app.telnyx_webhook(&event).await;
        assert_eq!(response.status(), 503, "a read-only database");
        assert_eq!(header_of(&response, "retry-after"), Some("5"));
        refused.push(event);
    }
    // Reads still answer: health stays up, and the count is read as it was.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.count(kept), 1, "nothing refused is half-written");

    // Writable again: the provider's redeliveries are taken, each once, without a restart.
    drop(read_only);
    for event in &refused {
        assert_eq!(app.telnyx_webhook(event).await.status(), 200);
        assert_eq!(app.telnyx_webhook(event).await.status(), 200, "once");
    }
    assert_eq!(app.count(kept), 4);
    let again: Value = app.telnyx_webhook(&first).await.json().await.expect("json");
    assert_eq!(again["message"], "Duplicate ignored");
    app.drain().await;
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE title LIKE 'Read %'"),
        4,
        "every text taken is its Moment"
    );
    let posted = app.texts_to(PHONE).await;
    assert_eq!(
        posted.iter().filter(|t| t.contains("posted")).count(),
        4,
        "one reply each: {posted:?}"
    );
}
