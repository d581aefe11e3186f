//! Several momentline processes on one PostgreSQL database, behind what a load balancer does:
//! every webhook delivered to both at once, one instance killed mid-run. Exactly one effect
//! per message, every queued text sent, no job lost.
//!
//! These need a PostgreSQL server (`MOMENTLINE_TEST_POSTGRES_URL`, e.g. from
//! `scripts/postgres start`). Without one they are skipped with a line saying so, except under
//! `CI`, where they fail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::process::{deliver, numbers, signed_events, Site};

/// Whether a PostgreSQL server is there for `test` (named and answering); without one it is
/// skipped, said, except under CI, where it must run.
pub(crate) fn postgres_server_for(test: &str) -> bool {
    let url = std::env::var("MOMENTLINE_TEST_POSTGRES_URL").unwrap_or_default();
    let missing = if url.trim().is_empty() {
        Some("no PostgreSQL server is named".to_owned())
    } else {
        on_server(&url, |c| c.batch_execute("SELECT 1"))
            .err()
            .map(|e| format!("the PostgreSQL server at {url} does not answer ({e})"))
    };
    let Some(why) = missing else {
        return true;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run {test}, but {why}: set MOMENTLINE_TEST_POSTGRES_URL (.ci/run starts a server \
         with scripts/postgres)"
    );
    eprintln!(
        "{test}: skipped, {why} (run `scripts/postgres start` and set \
         MOMENTLINE_TEST_POSTGRES_URL to the URL it prints)"
    );
    false
}

#[tokio::test]
async fn two_instances_on_one_database_one_killed_mid_run_lose_nothing_and_repeat_nothing() {
    if !postgres_server_for("instances") {
        return;
    }
    let database = PgDatabase::create();
    let site = Site::on(Some(database.url.clone())).await;
    // Each send takes a while, so the instance killed holds texts it claimed and never sent.
    telnyx_accepts_texts_after(&site.provider_api, Duration::from_secs(1)).await;
    // 20 numbers, 12 texts each: under the cap of 30 automatic replies a number an hour.
    let phones = numbers(20);
    site.verify_numbers(&phones);
    let events = signed_events("twin", &phones, 240);

    // Claims held by a killed instance are taken over once their lease runs out.
    let env = [("MOMENTLINE_JOB_LEASE_SECS", "3")];
    let first = site.serve(&env).await;
    let second = site.serve(&env).await;
    let addresses = [first.address.clone(), second.address.clone()];

    // Eight lanes; each webhook goes to both instances at once, as a provider retrying on a
    // second load-balanced connection would. A lane redelivers, to whichever is up, until one
    // instance answers 200.
    let http = reqwest::Client::new();
    let answered_by_both = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let lane_events: Vec<(String, String)> =
            events.iter().skip(lane).step_by(8).cloned().collect();
        let (http, addresses) = (http.clone(), addresses.clone());
        let (both, delivered) = (Arc::clone(&answered_by_both), Arc::clone(&delivered));
        lanes.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            for (id, body) in lane_events {
                loop {
                    let (a, b) = tokio::join!(
                        deliver(&http, &addresses[0], &body),
                        deliver(&http, &addresses[1], &body)
                    );
                    if a == Some(200) && b == Some(200) {
                        both.fetch_add(1, Ordering::SeqCst);
                    }
                    if a == Some(200) || b == Some(200) {
                        delivered.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    assert!(Instant::now() < deadline, "{id} was never taken");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }
    // Kill the second instance halfway, once it holds claimed texts (each send takes a second,
    // so it still holds them when killed).
    let second_pid = second.pid();
    let held_by_second = format!(
        "SELECT count(*) FROM jobs WHERE state = 'running' AND leased_by LIKE 'runner-{second_pid}-%'"
    );
    let halfway = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::SeqCst) < events.len() / 2 || site.count(&held_by_second) == 0 {
        assert!(
            Instant::now() < halfway,
            "half the webhooks were never taken, or the second instance never claimed a text"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    second.kill();
    let killed_at = delivered.load(Ordering::SeqCst);
    let orphaned = site.count(&held_by_second);
    while let Some(lane) = lanes.join_next().await {
        lane.expect("a lane");
    }
    assert!(
        killed_at < events.len(),
        "the kill came after every webhook was taken: it proved nothing"
    );
    assert!(
        answered_by_both.load(Ordering::SeqCst) > 0,
        "no webhook was answered by both instances: the race was never run"
    );
    assert!(
        orphaned > 0,
        "the killed instance held no job: the takeover was never run"
    );

    // Every reply is sent, the killed instance's claims taken over by the survivor.
    let n = i64::try_from(events.len()).expect("count");
    site.until_count(
        "SELECT count(*) FROM messages WHERE purpose = 'moment_posted' AND state = 'sent'",
        n,
        Duration::from_secs(60),
    )
    .await;
    site.until_count("SELECT count(*) FROM jobs", 0, Duration::from_secs(10))
        .await;

    // One effect per provider message id, though each came twice or more.
    assert_eq!(
        site.count("SELECT count(*) FROM messages WHERE direction = 'inbound'"),
        n
    );
    assert_eq!(
        site.count(
            "SELECT count(DISTINCT provider_message_id) FROM messages WHERE direction = 'inbound'"
        ),
        n
    );
    assert_eq!(site.count("SELECT count(*) FROM moments"), n);
    assert_eq!(
        site.count("SELECT count(*) FROM moments WHERE state = 'created'"),
        n
    );
    assert_eq!(
        site.count("SELECT count(*) FROM messages WHERE direction = 'outbound'"),
        n
    );
    assert_eq!(
        site.count(
            "SELECT count(*) FROM messages WHERE direction = 'outbound' AND state <> 'sent'"
        ),
        0
    );

    // The provider got every reply; one in flight at the kill may have gone twice (sending
    // is at least once across a crash), no more.
    let mut texts = telnyx_texts(&site.provider_api).await;
    let all = texts.len();
    texts.sort();
    texts.dedup();
    let repeated = all - texts.len();
    eprintln!(
        "instances: {} webhooks, {} answered 200 by both instances, killed after {killed_at} \
         holding {orphaned} jobs; {all} texts sent for {n} replies ({repeated} sent twice)",
        events.len(),
        answered_by_both.load(Ordering::SeqCst)
    );
    assert_eq!(
        texts.len(),
        events.len(),
        "every reply reached the provider"
    );
    assert!(
        i64::try_from(repeated).expect("count") <= orphaned,
        "{repeated} texts sent twice: more than the {orphaned} jobs the killed instance held"
    );
}
