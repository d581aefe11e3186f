//! The real binary, stopped and killed: what it answered survives, what it was sending is
//! finished or released, and a restart sends what was left at once, not after a lease.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use tempfile::TempDir;
use wiremock::{MockServer, ResponseTemplate};

use crate::helpers::*;

/// A database, the stand-in for Telnyx, and the artist's key; servers come and go over them.
/// The database is a SQLite file in `dir`, or a PostgreSQL database at `database_url`.
pub(crate) struct Site {
    dir: TempDir,
    pub(crate) provider_api: MockServer,
    pub(crate) key: String,
    database_url: Option<String>,
    /// The suite's own PostgreSQL database, when `new` made one; dropped with the site.
    database: Option<PgDatabase>,
}

/// One running `momentline serve`.
pub(crate) struct Served {
    child: Child,
    pub(crate) address: String,
    /// Every line it has written to stderr so far.
    pub(crate) lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Site {
    /// A site on a SQLite file or, when the suite runs on PostgreSQL, on a database of its
    /// own there.
    pub(crate) async fn new() -> Self {
        let database = suite_on_postgres().then(PgDatabase::create);
        let site = Self::on(database.as_ref().map(|d| d.url.clone())).await;
        Self { database, ..site }
    }

    /// A site on the PostgreSQL database at `database_url`, or (`None`) a SQLite file.
    pub(crate) async fn on(database_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let provider_api = MockServer::start().await;
        let site = Self {
            dir,
            provider_api,
            key: String::new(),
            database_url,
            database: None,
        };
        let key = site.add_artist(ARTIST);
        Self { key, ..site }
    }

    /// `momentline artists add --name NAME` on the site's database; the key it prints.
    fn add_artist(&self, name: &str) -> String {
        let out = self
            .command(&[])
            .args(["artists", "add", "--name", name])
            .output()
            .expect("artists add runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    /// A site whose provider takes every text, with `count` numbers verified; and the numbers.
    async fn with_numbers_verified(count: usize) -> (Self, Vec<String>) {
        let site = Self::new().await;
        telnyx_accepts_texts(&site.provider_api).await;
        let phones = numbers(count);
        site.verify_numbers(&phones);
        (site, phones)
    }

    /// A site whose provider hangs 30 s on the first text, then takes every text at once.
    async fn with_first_send_hanging() -> Self {
        let site = Self::new().await;
        telnyx_accepts_texts_after_first(
            &site.provider_api,
            ResponseTemplate::new(200).set_delay(Duration::from_secs(30)),
        )
        .await;
        site
    }

    /// Waits until the connect prompt is recorded as sent, for at most `within`.
    async fn until_prompt_sent(&self, within: Duration) {
        self.until_count(
            "SELECT count(*) FROM messages WHERE purpose = 'prompt' AND state = 'sent'",
            1,
            within,
        )
        .await;
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("momentline.db")
    }

    fn command(&self, extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_momentline"));
        command
            .env_clear()
            .envs(clock_env())
            .env("MOMENTLINE_DB", self.db())
            .env(
                "MOMENTLINE_DATABASE_URL",
                self.database_url.as_deref().unwrap_or_default(),
            )
            .env("MOMENTLINE_ADDR", "127.0.0.1:0")
            .env("MOMENTLINE_PUBLIC_URL", PUBLIC_URL)
            .env("MOMENTLINE_RETRY_SCHEDULE", "0,0,0")
            .env("MOMENTLINE_SMS_PROVIDER", "telnyx")
            .env("TELNYX_API_KEY", TELNYX_API_KEY)
            .env("TELNYX_FROM_NUMBER", OUR_NUMBER)
            .env("TELNYX_PUBLIC_KEY", TELNYX_PUBLIC_KEY)
            .env("TELNYX_API_BASE", self.provider_api.uri())
            // These texts are Moments alone, whose replies would wait for a photo: the tests
            // count replies as soon as they can go.
            .env("MOMENTLINE_MERGE_SECS", "0")
            .env("RUST_LOG", "info");
        if self.database.is_some() {
            // A server started after a kill leaves the dead one's claims alone on PostgreSQL
            // (they might be another instance's) until their leases run out: short ones, so
            // the tests see what was in flight sent within seconds.
            command.env("MOMENTLINE_JOB_LEASE_SECS", "3");
        }
        for (k, v) in extra {
            command.env(k, v);
        }
        command
    }

    /// Starts the server and waits until it is healthy.
    pub(crate) async fn serve(&self, extra: &[(&str, &str)]) -> Served {
        let mut child = self
            .command(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("[serve] {line}");
                }
                if let Some(port) = listening_port(&line) {
                    let _ = port_tx.send(port);
                }
                kept.lock().expect("lines").push(line);
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server says where it listens");
        let address = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let healthy = http.get(format!("{address}/healthz")).send().await;
            if healthy.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(Instant::now() < deadline, "the server never became healthy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Served {
            child,
            address,
            lines,
        }
    }

    /// The rows `sql` answers, each column read as text.
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        match &self.database_url {
            Some(url) => {
                let sql = sql.to_owned();
                on_server(url, move |c| {
                    Ok(c.query(sql.as_str(), &[])?
                        .iter()
                        .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                        .collect())
                })
                .expect("rows")
            }
            None => {
                let conn = rusqlite::Connection::open(self.db()).expect("database");
                let mut statement = conn.prepare(sql).expect("a statement");
                let width = statement.column_count();
                statement
                    .query_map([], |r| (0..width).map(|i| r.get(i)).collect())
                    .expect("rows")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            }
        }
    }

    pub(crate) fn verify_numbers(&self, numbers: &[String]) {
        if numbers.is_empty() {
            return;
        }
        let rows: Vec<String> = numbers
            .iter()
            .map(|n| format!("('{n}', 'verified', 1, '2026-11-22T00:00:00.000Z')"))
            .collect();
        let sql = format!(
            "INSERT INTO phone_numbers (e164, state, owner_id, updated_at) VALUES {}",
            rows.join(", ")
        );
        match &self.database_url {
            Some(url) => on_server(url, move |c| c.batch_execute(&sql)).expect("verified numbers"),
            None => rusqlite::Connection::open(self.db())
                .expect("database")
                .execute_batch(&sql)
                .expect("verified numbers"),
        }
    }

    pub(crate) fn count(&self, sql: &str) -> i64 {
        match &self.database_url {
            Some(url) => {
                let sql = sql.to_owned();
                on_server(url, move |c| Ok(c.query_one(sql.as_str(), &[])?.get(0))).expect("count")
            }
            None => {
                let conn = rusqlite::Connection::open(self.db()).expect("database");
                conn.query_row(sql, [], |r| r.get(0)).expect("count")
            }
        }
    }

    /// Waits until `sql` counts `expected`, for at most `within`.
    pub(crate) async fn until_count(&self, sql: &str, expected: i64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let found = self.count(sql);
            if found == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sql}: {found}, expected {expected} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn until_provider_requests(&self, at_least: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while requests_to(&self.provider_api, "/v2/messages").await.len() < at_least {
            assert!(Instant::now() < deadline, "the provider never got a text");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Served {
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to end by itself, for at most `within`.
    fn wait(mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the server did not stop within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    async fn connect(&self, key: &str, phone: &str) -> reqwest::StatusCode {
        reqwest::Client::new()
            .post(format!("{}/api/phones", self.address))
            .header("x-api-key", key)
            .json(&json!({ "phone_number": phone }))
            .send()
            .await
            .expect("request")
            .status()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port a start-up line says the server listens on, in text or JSON logs.
fn listening_port(line: &str) -> Option<u16> {
    if let Some(port) = line.split("momentline listening port=").nth(1) {
        return port.split_whitespace().next()?.parse().ok();
    }
    let object: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = &object["fields"];
    (fields["message"] == "momentline listening")
        .then(|| fields["port"].as_u64())
        .flatten()
        .and_then(|p| u16::try_from(p).ok())
}

/// As `deliver`, the status (0 when there was no answer in time) and whether the answer had
/// `Retry-After`.
pub(crate) async fn deliver_answer(
    http: &reqwest::Client,
    address: &str,
    body: &str,
) -> (u16, bool) {
    let now = Utc::now().timestamp();
    let answer = http
        .post(format!("{address}/webhooks/telnyx"))
        .header("content-type", "application/json")
        .header("telnyx-timestamp", now.to_string())
        .header("telnyx-signature-ed25519", telnyx_signature(now, body))
        .body(body.to_owned())
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match answer {
        Ok(r) => (r.status().as_u16(), r.headers().contains_key("retry-after")),
        Err(_) => (0, false),
    }
}

/// A signed Telnyx `message.received` from `from`, with the provider id `id`.
pub(crate) fn sms_event(id: &str, from: &str, text: &str) -> String {
    let mut event = fixture("telnyx/message.received.sms.json");
    event["data"]["payload"]["id"] = json!(id);
    event["data"]["payload"]["from"]["phone_number"] = json!(from);
    event["data"]["payload"]["text"] = json!(text);
    event.to_string()
}

pub(crate) async fn deliver(http: &reqwest::Client, address: &str, body: &str) -> Option<u16> {
    let now = Utc::now().timestamp();
    http.post(format!("{address}/webhooks/telnyx"))
        .header("content-type", "application/json")
        .header("telnyx-timestamp", now.to_string())
        .header("telnyx-signature-ed25519", telnyx_signature(now, body))
        .body(body.to_owned())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// `count` signed texts from `phones` in turn, each with the provider id `{prefix}-{i}`.
pub(crate) fn signed_events(
    prefix: &str,
    phones: &[String],
    count: usize,
) -> Vec<(String, String)> {
    (0..count)
        .map(|i| {
            let id = format!("{prefix}-{i:04}");
            let body = sms_event(&id, &phones[i % phones.len()], &format!("Note {i}"));
            (id, body)
        })
        .collect()
}

/// Eight senders delivering `events` at once, counting each 200 in `answered`; each answers
/// the ids it had taken. `until_taken`: a sender delivers again until it gets a 200, as a
/// provider does; otherwise it tries each once.
fn send_all(
    http: &reqwest::Client,
    address: &str,
    events: &[(String, String)],
    answered: &Arc<AtomicUsize>,
    until_taken: bool,
) -> tokio::task::JoinSet<Vec<String>> {
    let mut senders = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let lane_events: Vec<(String, String)> =
            events.iter().skip(lane).step_by(8).cloned().collect();
        let (http, address, answered) = (http.clone(), address.to_owned(), Arc::clone(answered));
        senders.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(40);
            let mut taken = Vec::new();
            for (id, body) in lane_events {
                loop {
                    if deliver(&http, &address, &body).await == Some(200) {
                        answered.fetch_add(1, Ordering::SeqCst);
                        taken.push(id);
                        break;
                    }
                    if !until_taken {
                        break;
                    }
                    assert!(Instant::now() < deadline, "{id} was never taken");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            taken
        });
    }
    senders
}

pub(crate) fn numbers(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("+1415555{:04}", 2700 + i))
        .collect()
}

#[tokio::test]
async fn a_killed_server_loses_no_answered_text_and_redelivery_changes_nothing() {
    // At most 20 a number: more would meet the cap of 30 automatic replies an hour.
    let (site, phones) = Site::with_numbers_verified(12).await;
    let events = signed_events("crash", &phones, 240);

    let served = site.serve(&[]).await;
    let http = reqwest::Client::new();
    let answered = Arc::new(AtomicUsize::new(0));
    let mut senders = send_all(&http, &served.address, &events, &answered, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.load(Ordering::SeqCst) < 100 {
        assert!(Instant::now() < deadline, "the server stopped answering");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    served.kill();
    let mut taken = Vec::new();
    while let Some(lane) = senders.join_next().await {
        taken.extend(lane.expect("sender"));
    }
    assert!(
        taken.len() >= 100,
        "answered before the kill: {}",
        taken.len()
    );

    // Everything answered 200 is there, once, with its Moment.
    for id in &taken {
        let sql = format!(
            "SELECT count(*) FROM messages m JOIN moments o ON o.message_id = m.id
             WHERE m.provider_message_id = '{id}'"
        );
        assert_eq!(
            site.count(&sql),
            1,
            "{id} was answered 200 but is not kept once"
        );
    }

    // After a restart, every event delivered again (and again) has exactly one effect, and
    // every Moment's reply reaches the provider.
    let served = site.serve(&[]).await;
    for _ in 0..2 {
        for (id, body) in &events {
            assert_eq!(
                deliver(&http, &served.address, body).await,
                Some(200),
                "{id}"
            );
        }
    }
    let total = i64::try_from(events.len()).expect("count");
    assert_eq!(
        site.count("SELECT count(*) FROM messages WHERE direction = 'inbound'"),
        total
    );
    assert_eq!(site.count("SELECT count(*) FROM moments"), total);
    site.until_count(
        "SELECT count(*) FROM messages WHERE purpose = 'moment_posted' AND state = 'sent'",
        total,
        Duration::from_secs(20),
    )
    .await;
    let sent = requests_to(&site.provider_api, "/v2/messages").await;
    let twice = sent.len() - events.len();
    // Only a text in flight at the kill may go out twice: at most one per sending slot.
    assert!(twice <= 64, "{twice} texts went out twice");
    eprintln!(
        "{} answered before the kill; {} texts for {} Moments ({twice} sent twice)",
        taken.len(),
        sent.len(),
        events.len()
    );
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_send_finish() {
    let site = Site::new().await;
    answer_posts(
        &site.provider_api,
        "/v2/messages",
        ResponseTemplate::new(200)
            .set_body_json(fixture("telnyx/send.response.json"))
            .set_delay(Duration::from_millis(1500)),
    )
    .await;
    let served = site.serve(&[]).await;
    assert_eq!(served.connect(&site.key, PHONE).await, 200);
    site.until_provider_requests(1).await;
    served.terminate();
    let status = served.wait(Duration::from_secs(10));
    assert!(status.success(), "stopped cleanly: {status}");
    assert_eq!(
        site.count("SELECT count(*) FROM messages WHERE purpose = 'prompt' AND state = 'sent'"),
        1,
        "the send that was under way was finished and recorded"
    );
    assert_eq!(site.count("SELECT count(*) FROM jobs"), 0);
    assert_eq!(
        requests_to(&site.provider_api, "/v2/messages").await.len(),
        1
    );
}

#[tokio::test]
async fn sigterm_releases_a_send_that_outlasts_the_grace_period_and_a_restart_sends_it() {
    let site = Site::with_first_send_hanging().await;
    let grace = [("MOMENTLINE_SHUTDOWN_GRACE_SECS", "1")];
    let served = site.serve(&grace).await;
    assert_eq!(served.connect(&site.key, PHONE).await, 200);
    site.until_provider_requests(1).await;
    let stopping = Instant::now();
    served.terminate();
    assert!(served.wait(Duration::from_secs(10)).success());
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert_eq!(
        site.count("SELECT count(*) FROM jobs WHERE state = 'queued' AND leased_by IS NULL"),
        1,
        "the unfinished send was put back in the queue"
    );

    let restarted = Instant::now();
    let _served = site.serve(&[]).await;
    site.until_prompt_sent(Duration::from_secs(5)).await;
    eprintln!("sent {:?} after the restart", restarted.elapsed());
}

#[tokio::test]
async fn after_a_kill_mid_send_a_restart_sends_the_text_at_once() {
    if skip_on_postgres(
        "a restart releases every claim at once only on SQLite, which one server serves; on \
         PostgreSQL a dead server's claims are taken over when their leases run out",
    ) {
        return;
    }
    let site = Site::with_first_send_hanging().await;
    let served = site.serve(&[]).await;
    assert_eq!(served.connect(&site.key, PHONE).await, 200);
    site.until_provider_requests(1).await;
    served.kill();
    assert_eq!(
        site.count("SELECT count(*) FROM jobs WHERE state = 'running'"),
        1,
        "killed while the send was claimed"
    );

    let _served = site.serve(&[]).await;
    // The claim's lease is five minutes; the restart releases it at once.
    site.until_prompt_sent(Duration::from_secs(5)).await;
    assert_eq!(
        requests_to(&site.provider_api, "/v2/messages").await.len(),
        2
    );
}

#[tokio::test]
async fn killed_and_restarted_again_and_again_under_load_it_loses_nothing_and_sends_every_reply() {
    // At most 20 a number: more would meet the cap of 30 automatic replies an hour.
    let (site, phones) = Site::with_numbers_verified(15).await;
    let events = signed_events("cycle", &phones, 300);
    // Every restart listens on the same port, so senders need not know of the restarts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let addr = format!("127.0.0.1:{port}");
    let env = [("MOMENTLINE_ADDR", addr.as_str())];
    let address = format!("http://{addr}");

    let mut served = site.serve(&env).await;
    let http = reqwest::Client::new();
    let answered = Arc::new(AtomicUsize::new(0));
    let mut senders = send_all(&http, &address, &events, &answered, true);
    let mut kills = 0;
    for at in [60, 120, 180] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while answered.load(Ordering::SeqCst) < at {
            assert!(Instant::now() < deadline, "stuck before kill {kills}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        served.kill();
        kills += 1;
        served = site.serve(&env).await;
    }
    let mut taken = 0;
    while let Some(lane) = senders.join_next().await {
        taken += lane.expect("sender").len();
    }
    assert_eq!(taken, events.len(), "every event was taken in the end");

    let total = i64::try_from(events.len()).expect("count");
    let inbound =
        "SELECT count(DISTINCT provider_message_id) FROM messages WHERE direction = 'inbound'";
    assert_eq!(site.count(inbound), total);
    assert_eq!(
        site.count("SELECT count(*) FROM messages WHERE direction = 'inbound'"),
        total,
        "one message for each, however often delivered"
    );
    assert_eq!(site.count("SELECT count(*) FROM moments"), total);
    site.until_count(
        "SELECT count(*) FROM messages WHERE purpose = 'moment_posted' AND state = 'sent'",
        total,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        site.count("SELECT count(*) FROM messages WHERE purpose = 'moment_posted'"),
        total,
        "one reply each"
    );
    // Delivering everything once more changes nothing.
    for (id, body) in &events {
        assert_eq!(
            deliver(&http, &served.address, body).await,
            Some(200),
            "{id}"
        );
    }
    assert_eq!(site.count("SELECT count(*) FROM moments"), total);
    let sent = requests_to(&site.provider_api, "/v2/messages").await;
    let twice = sent.len() - events.len();
    // Only a text in flight at a kill may go out twice.
    assert!(twice <= kills * 64, "{twice} texts went out twice");
    eprintln!(
        "{kills} kills; {} texts for {total} replies ({twice} sent twice)",
        sent.len()
    );
}

#[tokio::test]
async fn a_provider_call_hanging_for_one_number_holds_back_no_other_numbers_text() {
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::Mock;

    let site = Site::new().await;
    let slow = "+14155550123";
    Mock::given(method("POST"))
        .and(path("/v2/messages"))
        .and(body_partial_json(json!({ "to": slow })))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(8)))
        .with_priority(1)
        .mount(&site.provider_api)
        .await;
    telnyx_accepts_texts(&site.provider_api).await;
    let served = site.serve(&[]).await;
    assert_eq!(served.connect(&site.key, slow).await, 200);
    site.until_provider_requests(1).await;
    let started = Instant::now();
    assert_eq!(served.connect(&site.key, PHONE).await, 200);
    site.until_count(
        &format!("SELECT count(*) FROM messages WHERE phone = '{PHONE}' AND state = 'sent'"),
        1,
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(
        site.count(&format!(
            "SELECT count(*) FROM messages WHERE phone = '{slow}' AND state = 'sent'"
        )),
        0,
        "the slow number's text is still under way"
    );
    eprintln!(
        "the other number's prompt went out {:?} after it was queued",
        started.elapsed()
    );
}

/// Queues the broadcast "Tour dates are up" with the operator command, beside the running
/// server, under `env`; answers its id.
fn queue_broadcast(site: &Site, env: &[(&str, &str)]) -> i64 {
    let out = site
        .command(env)
        .args(["broadcast", "Tour dates are up"])
        .output()
        .expect("broadcast runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("an id")
}

#[tokio::test]
async fn a_broadcast_queued_beside_the_running_server_survives_a_kill_mid_fan_out() {
    let (site, phones) = Site::with_numbers_verified(1200).await;
    // Paced, so the fan-out's second batch is due only as the first one's texts go out.
    let paced = [("MOMENTLINE_SEND_RATE", "400")];
    let served = site.serve(&paced).await;
    let id = queue_broadcast(&site, &[]);
    site.until_count(
        &format!("SELECT queued FROM broadcasts WHERE id = {id}"),
        500,
        Duration::from_secs(20),
    )
    .await;
    served.kill();
    assert_eq!(
        site.count(&format!("SELECT queued FROM broadcasts WHERE id = {id}")),
        500,
        "killed between batches"
    );
    let in_flight = site.count("SELECT count(*) FROM jobs WHERE state = 'running'");

    let _served = site.serve(&paced).await;
    site.until_count(
        &format!("SELECT count(*) FROM messages WHERE broadcast_id = {id} AND state = 'sent'"),
        1200,
        Duration::from_secs(15),
    )
    .await;
    let status = site
        .command(&[])
        .args(["broadcast", "status", &id.to_string()])
        .output()
        .expect("status runs");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains("numbers: 1200\n"), "{status}");
    assert!(status.contains("queuing: finished "), "{status}");
    assert!(
        status.contains("sent: 1200\nwaiting: 0\nfailed: 0\n"),
        "{status}"
    );

    let mut sent: Vec<String> = requests_to(&site.provider_api, "/v2/messages")
        .await
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).expect("json"))
        .filter(|b| b["text"] == "Tour dates are up")
        .map(|b| b["to"].as_str().expect("to").to_owned())
        .collect();
    let requests = sent.len();
    sent.sort();
    sent.dedup();
    assert_eq!(sent, phones, "every number, in order of number");
    // A send under way at the kill may go out again after it: at least once, never more.
    assert!(
        requests - sent.len() <= usize::try_from(in_flight).expect("a count"),
        "{requests} requests for 1200 numbers, {in_flight} in flight at the kill"
    );
}

/// The numbers of each of broadcast `id`'s batches through TextFlow, in order of batch (only
/// those TextFlow has taken, when `taken_only`).
fn batches_of(site: &Site, id: i64, taken_only: bool) -> Vec<Vec<String>> {
    let rows = site.rows(&format!(
        "SELECT CAST(b.id AS TEXT), b.state, m.phone FROM broadcast_batches b
         JOIN broadcast_batch_texts t ON t.batch_id = b.id JOIN messages m ON m.id = t.message_id
         WHERE b.broadcast_id = {id} ORDER BY b.id, m.id"
    ));
    let mut batches: Vec<(String, Vec<String>)> = Vec::new();
    for row in rows {
        let [batch, state, phone] = <[String; 3]>::try_from(row).expect("three columns");
        if taken_only && state != "running" {
            continue;
        }
        match batches.last_mut() {
            Some((last, numbers)) if *last == batch => numbers.push(phone),
            _ => batches.push((batch, vec![phone])),
        }
    }
    batches.into_iter().map(|(_, numbers)| numbers).collect()
}

#[tokio::test]
async fn a_kill_while_textflow_has_a_broadcasts_batches_neither_skips_nor_repeats_a_batch() {
    let site = Site::new().await;
    let phones = numbers(1200);
    site.verify_numbers(&phones);
    let taken = || {
        ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "status": 200, "message": "Messages sent successfully"
        }))
    };
    // The first batch is taken at once; the next two hang until the server is killed; after
    // the restart every batch is taken at once.
    let api = &site.provider_api;
    answer_first_post(api, "/api/bulk-sms", taken()).await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/api/bulk-sms"))
        .respond_with(taken().set_delay(Duration::from_secs(30)))
        .up_to_n_times(2)
        .with_priority(2)
        .mount(api)
        .await;
    answer_posts(api, "/api/bulk-sms", taken()).await;
    let base = api.uri();
    let textflow = [
        ("MOMENTLINE_SMS_PROVIDER", "textflow"),
        ("TEXTFLOW_API_KEY", TEXTFLOW_API_KEY),
        ("TEXTFLOW_API_BASE", base.as_str()),
    ];
    let served = site.serve(&textflow).await;
    let id = queue_broadcast(&site, &textflow);
    site.until_count(
        "SELECT count(*) FROM broadcast_batches WHERE state = 'running'",
        1,
        Duration::from_secs(10),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while requests_to(api, "/api/bulk-sms").await.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the other two batches never went"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.kill();
    let answered = batches_of(&site, id, true);
    assert_eq!(answered.len(), 1, "killed with one batch taken");

    let _served = site.serve(&textflow).await;
    site.until_count(
        &format!("SELECT count(*) FROM broadcast_batches WHERE broadcast_id = {id} AND state = 'running'"),
        3,
        Duration::from_secs(15),
    )
    .await;
    let batches = batches_of(&site, id, false);
    let mut every: Vec<String> = batches.iter().flatten().cloned().collect();
    every.sort();
    assert_eq!(
        every, phones,
        "each number in one batch: none skipped, none twice"
    );
    let calls: Vec<Vec<String>> = requests_to(api, "/api/bulk-sms")
        .await
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            body["phone_numbers"]
                .as_array()
                .expect("numbers")
                .iter()
                .map(|n| n.as_str().expect("a number").to_owned())
                .collect()
        })
        .collect();
    for call in &calls {
        assert!(
            batches.contains(call),
            "a call that is no batch: {} numbers",
            call.len()
        );
    }
    for batch in &batches {
        let sent = calls.iter().filter(|c| *c == batch).count();
        if answered.contains(batch) {
            assert_eq!(sent, 1, "a batch TextFlow took before the kill went again");
        } else {
            // In flight at the kill, with no answer: sent again once, never more.
            assert_eq!(sent, 2, "a batch in flight at the kill");
        }
    }
    assert_eq!(calls.len(), 5);
}

#[tokio::test]
async fn a_second_server_on_one_sqlite_file_is_refused_naming_the_first() {
    if skip_on_postgres("several instances share PostgreSQL: the file lock is SQLite's") {
        return;
    }
    let site = Site::new().await;
    let first = site.serve(&[]).await;
    let started = Instant::now();
    let out = site.command(&[]).output().expect("the second runs");
    assert!(!out.status.success(), "a second server is refused");
    assert!(started.elapsed() < Duration::from_secs(10), "at once");
    let said = String::from_utf8_lossy(&out.stderr);
    let port = first.address.rsplit(':').next().expect("a port");
    assert!(
        said.contains(&format!("pid {}", first.pid())) && said.contains(port),
        "names the process that holds it: {said}"
    );
    // The first still serves.
    let health = reqwest::get(format!("{}/healthz", first.address))
        .await
        .expect("the first answers");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn an_operator_command_beside_the_running_server_writes_through_sqlites_lock() {
    if skip_on_postgres("the file lock is SQLite's") {
        return;
    }
    let site = Site::new().await;
    let served = site.serve(&[]).await;
    // The server holds the file's server lock; a command that writes still runs, and the
    // server reads what it wrote.
    let key = site.add_artist("Beside");
    let listed = reqwest::Client::new()
        .get(format!("{}/api/phones", served.address))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(listed.status(), 200, "the new artist's key works at once");
}
