//! What an operator sees: `/metrics`, `HEAD` on every `GET` route, and the log's format.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::helpers::*;

impl TestApp {
    async fn metrics(&self) -> String {
        let response = self.get_keyless("/metrics").await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header_of(&response, "content-type"),
            Some("text/plain; version=0.0.4")
        );
        response.text().await.expect("text")
    }
}

/// The value of the sample `name` whose labels are exactly `labels`; `None` when there is none.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeSet<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, found) = match series.split_once('{') {
                Some((metric, rest)) => (
                    metric,
                    rest.trim_end_matches('}')
                        .split(',')
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect::<BTreeSet<_>>(),
                ),
                None => (series, BTreeSet::new()),
            };
            (metric == name && found == wanted).then(|| value.parse().expect("a number"))
        })
}

fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
}

#[tokio::test]
async fn a_connect_a_signed_yes_and_a_drain_show_in_the_metrics() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);

    // The prompt waits in the queue; made due a minute ago, it is a minute late.
    let before = app.metrics().await;
    assert_eq!(
        value(&before, "momentline_jobs_queued", &[("kind", "send_text")]),
        1.0
    );
    assert_eq!(
        value(&before, "momentline_jobs_queued", &[("kind", "keep_media")]),
        0.0
    );
    app.execute(
        "UPDATE jobs SET run_after = ?1",
        &[(Utc::now() - chrono::Duration::seconds(60))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)],
    );
    let late = app.metrics().await;
    let age = value(
        &late,
        "momentline_jobs_oldest_due_age_seconds",
        &[("kind", "send_text")],
    );
    assert!((60.0..120.0).contains(&age), "{age}");
    assert_eq!(
        value(
            &late,
            "momentline_jobs_oldest_due_age_seconds",
            &[("kind", "deliver_event")]
        ),
        0.0
    );

    let yes = app.sms_event(PHONE, "yes");
    assert_eq!(app.telnyx_webhook(&yes).await.status(), 200);
    assert_eq!(app.telnyx_webhook(&yes).await.status(), 200);
    app.drain().await;
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));

    let after = app.metrics().await;
    let telnyx = [("provider", "telnyx")];
    let webhooks = |outcome| {
        value(
            &after,
            "momentline_webhooks_total",
            &[("provider", "telnyx"), ("outcome", outcome)],
        )
    };
    assert_eq!(webhooks("received"), 1.0);
    assert_eq!(webhooks("duplicate"), 1.0);
    assert_eq!(
        value(&after, "momentline_webhook_duration_seconds_count", &telnyx),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "momentline_number_transitions_total",
            &[("from", "unknown"), ("to", "pending"), ("cause", "connect")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "momentline_number_transitions_total",
            &[
                ("from", "pending"),
                ("to", "verified"),
                ("cause", "inbound")
            ]
        ),
        1.0
    );
    // The prompt and the "verified" reply.
    assert_eq!(
        value(
            &after,
            "momentline_jobs_finished_total",
            &[("kind", "send_text"), ("outcome", "done")]
        ),
        2.0
    );
    assert_eq!(
        value(&after, "momentline_send_duration_seconds_count", &telnyx),
        2.0
    );
    assert!(value(&after, "momentline_send_duration_seconds_sum", &telnyx) > 0.0);
    assert!(value(&after, "momentline_writer_batch_size_count", &[]) >= 4.0);
    assert!(
        value(
            &after,
            "momentline_writer_batch_size_bucket",
            &[("le", "+Inf")]
        ) >= 4.0
    );
    assert_eq!(
        value(&after, "momentline_jobs_queued", &[("kind", "send_text")]),
        0.0
    );
    assert_eq!(
        value(
            &after,
            "momentline_jobs_oldest_due_age_seconds",
            &[("kind", "send_text")]
        ),
        0.0
    );
}

#[tokio::test]
async fn a_bad_signature_counts_as_rejected_and_nothing_else() {
    let app = spawn_app().await;
    let event = app.sms_event(PHONE, "hi");
    let now = Utc::now().timestamp();
    let response = app
        .telnyx_webhook_signed(&event, now, &telnyx_signature(now, "other"))
        .await;
    assert_eq!(response.status(), 401);
    let malformed = app.telnyx_webhook("{").await;
    assert_eq!(malformed.status(), 400);
    let text = app.metrics().await;
    let webhooks = |outcome| {
        sample(
            &text,
            "momentline_webhooks_total",
            &[("provider", "telnyx"), ("outcome", outcome)],
        )
    };
    assert_eq!(webhooks("rejected"), Some(1.0));
    assert_eq!(webhooks("error"), Some(1.0));
    assert_eq!(webhooks("received"), None);
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = spawn_app_with_env(&[("MOMENTLINE_METRICS", "0")], |_| {}).await;
    let response = app.get_keyless("/metrics").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["message"], "Not found");
}

/// Every path routed to `GET`, from the router's own table.
fn get_routes() -> Vec<String> {
    momentline::routes::registered_routes()
        .into_iter()
        .filter(|(_, methods)| methods.contains(&actix_web::http::Method::GET))
        .map(|(path, _)| path.to_owned())
        .collect()
}

#[tokio::test]
async fn every_get_route_answers_head_with_its_status_and_no_body() {
    let app = spawn_verified_app().await;
    app.text_and_drain(PHONE, "a Moment to look at").await;
    let moment = app.newest_moment().await["id"].clone();
    let moment = moment
        .as_str()
        .map_or_else(|| moment.to_string(), str::to_owned);
    let message = app.get_json("/api/messages").await["messages"][0]["id"].to_string();
    let routes = get_routes();
    assert!(routes.len() >= 9, "{routes:?}");
    let mut found = 0;
    for route in routes {
        let path = route
            .replace(
                "{id}",
                if route.starts_with("/moments") {
                    &moment
                } else {
                    &message
                },
            )
            .replace("{file}", "missing.jpg");
        let get = app.get(&path).await;
        let head = app
            .http
            .head(app.url(&path))
            .header("x-api-key", &app.api_key)
            .send()
            .await
            .expect("request");
        assert_ne!(head.status(), 405, "HEAD {path}");
        found += usize::from(get.status() == 200);
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            header_of(&head, "content-type"),
            header_of(&get, "content-type"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.expect("body").is_empty(),
            "HEAD {path} has a body"
        );
    }
    // Found pages, not only errors: all but the missing media and the unsigned webhook.
    assert!(found >= 7, "{found} routes answered 200");
}

/// Runs `momentline serve` with `env` until it listens, stops it with SIGTERM, and answers
/// every line it wrote to stderr.
fn serve_and_stop(env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = BinaryDatabase::new(dir.path().join("momentline.db"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .env_clear()
        .envs(clock_env())
        .envs(database.env())
        .env("MOMENTLINE_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = line_rx.recv_timeout(Duration::from_secs(20)) {
        let listening = line.contains("momentline listening");
        lines.push(line);
        if listening {
            break;
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("momentline listening")),
        "never listened: {lines:#?}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exited = child.wait().expect("serve ends");
    lines.extend(line_rx.iter());
    assert!(exited.success(), "{lines:#?}");
    lines
}

#[test]
fn json_logs_are_one_object_a_line() {
    let lines = serve_and_stop(&[("MOMENTLINE_LOG_FORMAT", "json"), ("RUST_LOG", "info")]);
    assert!(lines.len() >= 3, "{lines:#?}");
    let mut messages = Vec::new();
    for line in &lines {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object["timestamp"].is_string(), "{line}");
        assert!(object["level"].is_string(), "{line}");
        messages.push(
            object["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    assert!(messages.iter().any(|m| m == "momentline listening"));
    assert!(messages.iter().any(|m| m == "momentline stopped"));
}

#[test]
fn a_bad_rust_log_is_reported_and_info_is_used() {
    let lines = serve_and_stop(&[("RUST_LOG", "verbose")]);
    let warning = lines
        .iter()
        .find(|l| l.contains("RUST_LOG is invalid"))
        .unwrap_or_else(|| panic!("no warning: {lines:#?}"));
    assert!(warning.contains("'verbose'"), "{warning}");
    assert!(warning.contains("logging at info instead"), "{warning}");
    // At info, the server's own lines are there.
    assert!(lines.iter().any(|l| l.contains("momentline stopped")));
}

#[test]
fn an_unknown_log_format_stops_every_command_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .args(["artists", "add", "--name", ARTIST])
        .env_clear()
        .envs(clock_env())
        .env("MOMENTLINE_DB", dir.path().join("momentline.db"))
        .env("MOMENTLINE_LOG_FORMAT", "xml")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no key was made");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "momentline: MOMENTLINE_LOG_FORMAT is invalid: 'xml' is not text or json"
    );
}

#[test]
fn start_up_says_where_it_serves_what_it_sends_with_and_which_webhooks_are_on() {
    let lines = serve_and_stop(&[
        ("MOMENTLINE_SMS_PROVIDER", "twilio"),
        ("TWILIO_ACCOUNT_SID", "AC0123"),
        ("TWILIO_FROM_NUMBER", "+18445550001"),
        ("TWILIO_AUTH_TOKEN", "token"),
        ("MOMENTLINE_PUBLIC_URL", "http://127.0.0.1:1"),
        ("RUST_LOG", "info"),
    ]);
    let said = |what: &str| lines.iter().any(|l| l.contains(what));
    assert!(said("momentline listening"), "{lines:#?}");
    assert!(said("provider twilio"), "{lines:#?}");
    assert!(
        said("webhook http://127.0.0.1:1/webhooks/twilio: on"),
        "{lines:#?}"
    );
    assert!(
        said("webhook http://127.0.0.1:1/webhooks/telnyx: off, every request refused (401) until TELNYX_PUBLIC_KEY is set"),
        "{lines:#?}"
    );
    assert!(said("schema version"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("names port 1, but momentline listens on")),
        "{lines:#?}"
    );
}

#[test]
fn start_up_names_the_index_and_the_urls_it_links() {
    let public = "http://127.0.0.1:1";
    let lines = serve_and_stop(&[
        ("MOMENTLINE_DEV_PHONE", "1"),
        ("MOMENTLINE_PUBLIC_URL", public),
        ("RUST_LOG", "info"),
    ]);
    let said = |path: &str| {
        lines
            .iter()
            .any(|l| l.contains(&format!("{public}{path}: ")))
    };
    for path in [
        "/",
        "/dev/phone",
        "/openapi.json",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        assert!(said(path), "{path}: {lines:#?}");
    }
    let lines = serve_and_stop(&[
        ("MOMENTLINE_METRICS", "0"),
        ("MOMENTLINE_PUBLIC_URL", public),
        ("RUST_LOG", "info"),
    ]);
    let said = |path: &str| {
        lines
            .iter()
            .any(|l| l.contains(&format!("{public}{path}: ")))
    };
    assert!(said("/openapi.json") && said("/healthz"), "{lines:#?}");
    assert!(!said("/dev/phone") && !said("/metrics"), "{lines:#?}");
}

#[test]
fn bad_paths_and_address_stop_start_up_at_once_each_named() {
    if skip_on_postgres("MOMENTLINE_DB's path problems are SQLite's") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("file");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .env_clear()
        .envs(clock_env())
        .env("MOMENTLINE_DB", dir.path().join("missing/momentline.db"))
        .env("MOMENTLINE_MEDIA_DIR", &file)
        .env("MOMENTLINE_ADDR", "nowhere")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for variable in ["MOMENTLINE_DB", "MOMENTLINE_MEDIA_DIR", "MOMENTLINE_ADDR"] {
        assert!(stderr.contains(variable), "{variable} not named: {stderr}");
    }
    assert!(!stderr.contains("unable to open database file"), "{stderr}");

    let artists = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .args(["artists", "add", "--name", "Ada"])
        .env_clear()
        .envs(clock_env())
        .env("MOMENTLINE_DB", dir.path().join("missing/momentline.db"))
        .output()
        .expect("runs");
    assert!(!artists.status.success());
    assert!(String::from_utf8_lossy(&artists.stderr).contains("does not exist; create it"));
}
