//! Measures how fast the Telnyx webhook answers: the real server on a free port with a fresh
//! database, signed `message.received` events from verified numbers, each one a Moment.
//!
//! `cargo run --release --example webhook_bench [EVENTS] [CONCURRENCY]`
//! Prints latency percentiles, throughput, and the process's peak resident memory.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::Utc;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;

use momentline::config::Settings;
use momentline::domain::api_key::ApiKey;
use momentline::startup::Application;

/// RFC 8032 §7.1 TEST 1: a throwaway Telnyx signing key.
const SECRET: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const NUMBERS: usize = 50;

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(8), |a| a.parse())?;

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let db = db.to_str().ok_or("temp path is not UTF-8")?.to_owned();
    let key = BASE64.encode(SigningKey::from_bytes(&SECRET).verifying_key().to_bytes());
    let mut settings = Settings::from_lookup(|name| match name {
        "MOMENTLINE_ADDR" => Some("127.0.0.1:0".into()),
        "MOMENTLINE_DB" => Some(db.clone()),
        "TELNYX_PUBLIC_KEY" => Some(key.clone()),
        _ => None,
    })?;
    // Replies are queued but not sent: the webhook alone is measured.
    settings.run_workers = false;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool();
    tokio::spawn(app.run_until_stopped());

    // Verified numbers, set up directly in the database.
    {
        let mut conn = pool.get()?;
        let api_key = ApiKey::generate()?;
        momentline::db::artists::create(&mut conn, "Bench", None, &api_key, Utc::now())?;
        for n in 0..NUMBERS {
            conn.execute(
                "INSERT INTO phone_numbers (e164, state, owner_id, updated_at)
                 VALUES (?1, 'verified', 1, '2026-01-01T00:00:00.000Z')",
                [number(n)],
            )?;
        }
    }

    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (http, base) = (http.clone(), base.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            for i in (worker..events).step_by(concurrency) {
                let body = json!({"data": {"event_type": "message.received", "id": format!("e{i}"),
                    "payload": {"id": format!("bench-{i}"), "type": "SMS",
                        "from": {"phone_number": number(i % NUMBERS)},
                        "to": [{"phone_number": "+18445550001"}],
                        "text": format!("Studio note {i}\nprice: 2"), "media": []}}})
                .to_string();
                let now = Utc::now().timestamp();
                let signature = BASE64.encode(
                    SigningKey::from_bytes(&SECRET)
                        .sign(format!("{now}|{body}").as_bytes())
                        .to_bytes(),
                );
                let sent = Instant::now();
                let response = http
                    .post(format!("{base}/webhooks/telnyx"))
                    .header("telnyx-timestamp", now.to_string())
                    .header("telnyx-signature-ed25519", signature)
                    .body(body)
                    .send()
                    .await?;
                if !response.status().is_success() {
                    return Err(format!("webhook answered {}", response.status()).into());
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, Failure>(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(events);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = started.elapsed();
    latencies.sort();

    let moments: i64 = pool
        .get()?
        .query_row("SELECT count(*) FROM moments", [], |r| r.get(0))?;
    let pick = |q: f64| {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(index).copied().unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("events: {events}, concurrency: {concurrency}, moments recorded: {moments}");
    println!(
        "latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
        ms(pick(0.50)),
        ms(pick(0.95)),
        ms(pick(0.99)),
        ms(pick(1.0))
    );
    println!(
        "throughput: {:.0} webhooks/s over {:.2} s",
        events as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!(
                "peak resident memory (server and load in one process): {}",
                line[6..].trim()
            );
        }
    }
    Ok(())
}

fn number(n: usize) -> String {
    format!("+1415555{:04}", 1000 + n)
}
