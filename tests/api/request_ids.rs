//! One request id from a webhook to its reply: every answer carries it in `x-request-id`, and
//! the log lines of the webhook, of the write it made and of the jobs it queued all name it.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use crate::helpers::*;
use crate::process::{sms_event, Site};

#[tokio::test]
async fn every_answer_carries_a_request_id_keeping_a_sane_one_the_caller_gave() {
    let app = spawn_app().await;
    let id_of = |r: &reqwest::Response| header_of(r, "x-request-id").map(str::to_owned);

    let fresh = app.get("/healthz").await;
    let fresh = id_of(&fresh).expect("an id");
    assert!(
        fresh.len() == 16 && fresh.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fresh}"
    );
    let again = id_of(&app.get("/healthz").await).expect("an id");
    assert_ne!(fresh, again, "each request has its own");

    for (given, kept) in [
        ("lb-7f3a.2:x_y", true),
        ("has space", false),
        ("<b>", false),
    ] {
        let answer = app
            .http
            .get(app.url("/api/nowhere"))
            .header("x-request-id", given)
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 404, "errors carry it too");
        let echoed = id_of(&answer).expect("an id");
        assert_eq!(echoed == given, kept, "{given:?} answered {echoed:?}");
    }
}

/// The JSON log lines that name `request_id` in one of their spans.
fn lines_of(lines: &[String], request_id: &str) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|line| {
            line["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|span| span["request_id"].as_str() == Some(request_id))
            })
        })
        .collect()
}

fn says(line: &Value, message: &str) -> bool {
    line["fields"]["message"].as_str() == Some(message)
}

fn in_span(line: &Value, name: &str) -> bool {
    line["spans"]
        .as_array()
        .is_some_and(|spans| spans.iter().any(|s| s["name"] == name))
}

#[tokio::test]
async fn one_request_id_follows_a_text_from_its_webhook_through_the_writer_to_its_reply() {
    let site = Site::new().await;
    telnyx_accepts_texts(&site.provider_api).await;
    let phone = "+14155552671".to_owned();
    site.verify_numbers(std::slice::from_ref(&phone));
    let served = site
        .serve(&[("MOMENTLINE_LOG_FORMAT", "json"), ("RUST_LOG", "info")])
        .await;

    let body = sms_event("trace-1", &phone, "Night swim");
    let now = Utc::now().timestamp();
    let answer = reqwest::Client::new()
        .post(format!("{}/webhooks/telnyx", served.address))
        .header("content-type", "application/json")
        .header("telnyx-timestamp", now.to_string())
        .header("telnyx-signature-ed25519", telnyx_signature(now, &body))
        .header("x-request-id", "telnyx-req-1")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    assert_eq!(header_of(&answer, "x-request-id"), Some("telnyx-req-1"));

    // The reply is sent by a job two jobs away from the webhook (the Moment's dispatch queued
    // it): its line names the same request.
    let deadline = Instant::now() + Duration::from_secs(15);
    let traced = loop {
        let lines = served.lines.lock().expect("lines").clone();
        let traced = lines_of(&lines, "telnyx-req-1");
        let reply_sent = traced
            .iter()
            .any(|l| says(l, "text sent") && in_span(l, "job"));
        if reply_sent {
            break traced;
        }
        assert!(
            Instant::now() < deadline,
            "no reply's send named the request: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let webhook = traced
        .iter()
        .filter(|l| in_span(l, "request") && in_span(l, "receive"))
        .count();
    assert!(webhook > 0, "no line from the webhook: {traced:#?}");
    let written: Vec<&Value> = traced
        .iter()
        .filter(|l| says(l, "recording the text"))
        .collect();
    assert_eq!(written.len(), 1, "{traced:#?}");
    if !suite_on_postgres() {
        // SQLite's writes all run on the one writer's thread.
        assert_eq!(written[0]["threadName"], "momentline-writer", "{traced:#?}");
    }
    let reply = traced
        .iter()
        .find(|l| says(l, "text sent"))
        .expect("the reply");
    let job = reply["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "job"))
        .expect("the job's span");
    assert_eq!(job["kind"], "send_text", "{reply:#}");
    assert_eq!(job["request_id"], "telnyx-req-1", "{reply:#}");
    assert!(
        reply["fields"]["provider_message_id"].is_string(),
        "the provider's id for the reply: {reply:#}"
    );
    assert_eq!(
        site.count("SELECT count(*) FROM messages WHERE purpose = 'moment_posted'"),
        1
    );
}
