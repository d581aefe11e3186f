//! End-to-end benchmark of momentline's Telnyx webhook path and its outbox, over HTTP only.
//!
//! ```sh
//! cargo run --release --example bench              # full run, up to about 15 minutes
//! cargo run --release --example bench -- --quick   # smoke run, under two minutes
//! cargo run --release --example bench -- --only 1,3 # some sections only
//! cargo run --release --example bench -- --postgres postgres://postgres@127.0.0.1:55432/postgres
//! ```
//!
//! It builds `momentline`, then starts `target/release/momentline` as a child process the way
//! users do (workers on, Telnyx configured), with its provider API pointed at a stand-in inside
//! this process that answers `POST /v2/messages` and notes when each text arrives. Every
//! request is a signed `message.received` webhook from a verified number: a Moment each, and a
//! "Moment posted" reply for the outbox to send. Each measurement gets a fresh server process:
//!
//! 1. Closed loop, 32 keep-alive connections: momentline beside two baselines this binary
//!    serves when re-executed with a hidden flag: a bare actix-web handler that only answers,
//!    and a naive handler that verifies, parses and writes one SQLite transaction.
//! 2. Open loop on momentline at 1,000 webhooks/s; latency counts from each request's
//!    scheduled send time, so a slow answer cannot hold later requests back.
//! 3. How fast the outbox drains queued replies with no send rate set, and that each webhook
//!    gets exactly one text.
//! 4. How closely `MOMENTLINE_SEND_RATE` holds its rate over a window.
//! 5. A large database (1,000,000 numbers, 10,000,000 messages; seeded once and cached under
//!    `target/bench-cache/`): time from spawn to the first 200 from `/healthz`, webhook p99
//!    against a 1,000-number database, and the server's peak memory.
//! 6. PostgreSQL, on a server given with `--postgres URL` or `MOMENTLINE_BENCH_POSTGRES_URL`
//!    (`scripts/postgres start` starts a throwaway one and prints its URL): section 1's closed
//!    loop, then every text, on SQLite with one instance, on PostgreSQL with one, and with two
//!    instances on one PostgreSQL database, each on a database made for it. Without a URL the
//!    report says it was skipped.
//! 7. The sustained pipeline: webhooks at a fixed rate (open loop) from distinct numbers, each
//!    timed from its scheduled send time to its reply's arrival at the stand-in, and the
//!    backlog of webhooks answered but not yet replied to over time: at 1,000 webhooks/s for
//!    60 s, then shorter probes for the highest rate whose backlog does not grow, that rate
//!    confirmed for 60 s if the section's 4 minutes allow.
//!
//! It prints one markdown table per section, each figure beside its target, and the server's
//! peak resident memory (VmHWM) for every run; progress goes to stderr. Latencies cover every
//! answered request; any status but 200 counts as an error. Each load row also shows the CPU
//! the server and the load thread used meanwhile (% of one core), so a saturated load
//! generator would show, and section 2 runs its schedule against the bare handler for 5 s as
//! the harness's own latency floor. The header gives the load average at the start: on a
//! shared machine, figures move with it.
//!
//! It exits non-zero only when the harness itself fails (a server that will not start, say),
//! never on a missed target. All traffic stays on 127.0.0.1.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::slice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::rt::net::TcpStream;
use actix_web::rt::{System, SystemRunner};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use postgres::NoTls;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, Connection, TransactionBehavior};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::sync::Semaphore;

type Failure = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Failure>;

/// RFC 8032 §7.1 TEST 1: a throwaway Telnyx signing key.
const SECRET: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const SERVICE_NUMBER: &str = "+18445550001";
const WEBHOOK_PATH: &str = "/webhooks/telnyx";
const SERVE_BARE: &str = "--serve-bare";
const SERVE_NAIVE: &str = "--serve-naive";
/// Part of the cached large database's name: bump it when the seeded rows change.
const SEED_VERSION: &str = "seed1";
/// 2026-01-01T00:00:00Z: seeded messages are older than any reply limit's window.
const SEED_EPOCH: i64 = 1_767_225_600;
/// Area codes the numbering plan accepts, ascending so that numbers sort as their indexes do.
const AREA_CODES: [u32; 10] = [209, 408, 415, 510, 530, 628, 650, 707, 916, 925];
const CONNECTIONS: usize = 32;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The open loop's cap on requests in flight; later ones wait, their latency still counted
/// from their scheduled time.
const OPEN_LOOP_MAX_CONNECTIONS: usize = 512;
/// Section 7's search moves in steps of this many webhooks/s.
const SUSTAINED_STEP: u32 = 250;
/// Section 7: a backlog grows when its mean over the last third of the sending is above that
/// over the first third by more than this much of the rate's webhooks (50 at 1,000/s): a
/// deficit of 0.5% shows in a 15 s probe, a stall of a few hundred ms does not.
const BACKLOG_MARGIN: Duration = Duration::from_millis(50);
/// Section 7: how often the backlog is sampled.
const BACKLOG_SAMPLE: Duration = Duration::from_millis(100);
/// Section 7: a rate is held only if every reply is in this soon after the last webhook's
/// scheduled send time.
const REPLY_GRACE: Duration = Duration::from_secs(2);
/// Inherited variables with these prefixes are removed: only the bench's settings apply.
const OWNED_ENV_PREFIXES: [&str; 6] = [
    "MOMENTLINE_",
    "TELNYX_",
    "TWILIO_",
    "VONAGE_",
    "TEXTFLOW_",
    "PHONIFY_",
];
/// Where section 6 finds its PostgreSQL server when `--postgres` is not given.
const POSTGRES_URL_VARIABLE: &str = "MOMENTLINE_BENCH_POSTGRES_URL";
const INSERT_NUMBER: &str = "INSERT INTO phone_numbers (e164, state, owner_id, updated_at)
     VALUES (?1, 'verified', 1, '2026-01-01T00:00:00.000Z')";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some(SERVE_BARE) => serve_bare(&args[1..]),
        Some(SERVE_NAIVE) => serve_naive(&args[1..]),
        _ => bench(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sizes of each measurement: full, or small enough for a smoke run.
struct Plan {
    quick: bool,
    closed_events: usize,
    closed_budget: Duration,
    open_rate: u32,
    open_secs: u32,
    drain_texts: usize,
    /// How long the drain sections may take to send their webhooks, and then to wait for the
    /// texts.
    drain_budget: Duration,
    held_rate: u32,
    held_secs: u32,
    large_numbers: usize,
    large_messages: usize,
    compared_numbers: usize,
    compared_events: usize,
    /// Section 7's first rate and length, which a rate found is confirmed for.
    sustained_rate: u32,
    sustained_secs: u32,
    /// The length of section 7's probes for the highest rate held.
    probe_secs: u32,
    /// Section 7 starts no probe that would leave no time for the confirming run within this.
    sustained_budget: Duration,
    /// The sections to run (all when `None`).
    only: Option<Vec<u8>>,
    /// The PostgreSQL server for section 6, as a `postgres://` URL.
    postgres: Option<String>,
}

impl Plan {
    fn new(quick: bool) -> Self {
        let pick = |full: usize, smoke: usize| if quick { smoke } else { full };
        let secs = if quick { 5 } else { 30 };
        Self {
            quick,
            closed_events: pick(30_000, 3_000),
            closed_budget: Duration::from_secs(10),
            open_rate: 1_000,
            open_secs: secs,
            drain_texts: pick(20_000, 2_000),
            drain_budget: Duration::from_secs(if quick { 60 } else { 180 }),
            held_rate: 50,
            held_secs: secs,
            large_numbers: pick(1_000_000, 10_000),
            large_messages: pick(10_000_000, 100_000),
            compared_numbers: 1_000,
            compared_events: pick(10_000, 2_000),
            sustained_rate: 1_000,
            sustained_secs: if quick { 5 } else { 60 },
            probe_secs: if quick { 3 } else { 15 },
            sustained_budget: Duration::from_secs(if quick { 40 } else { 240 }),
            only: None,
            postgres: None,
        }
    }

    fn command(&self) -> &'static str {
        if self.quick {
            "cargo run --release --example bench -- --quick"
        } else {
            "cargo run --release --example bench"
        }
    }
}

fn bench(args: &[String]) -> Res<()> {
    const USAGE: &str = "usage: cargo run --release --example bench \
         [-- [--quick] [--only 1,2,3,4,5,6,7] [--postgres URL]]";
    let mut quick = false;
    let mut only = None;
    let mut postgres = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let list = rest.next().ok_or(USAGE)?;
                let sections = list
                    .split(',')
                    .map(|n| n.trim().parse::<u8>().ok().filter(|n| (1..=7).contains(n)))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or(USAGE)?;
                only = Some(sections);
            }
            "--postgres" => postgres = Some(rest.next().ok_or(USAGE)?.clone()),
            _ => return Err(USAGE.into()),
        }
    }
    let postgres = postgres.or_else(|| {
        std::env::var(POSTGRES_URL_VARIABLE)
            .ok()
            .filter(|url| !url.trim().is_empty())
    });
    match &postgres {
        Some(url) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(format!("--postgres {url}: not a postgres:// URL").into());
            }
            url.parse::<postgres::Config>()
                .map_err(|e| format!("--postgres {url}: {e}"))?;
        }
        None if only.as_ref().is_some_and(|only| only.contains(&6)) => {
            return Err(format!(
                "section 6 needs a PostgreSQL server: start a throwaway one with \
                 `scripts/postgres start` (it prints its URL), then pass that URL with \
                 --postgres URL or in {POSTGRES_URL_VARIABLE}"
            )
            .into());
        }
        None => {}
    }
    let mut plan = Plan::new(quick);
    plan.only = only;
    plan.postgres = postgres;
    let momentline = build_server()?;
    let exe = std::env::current_exe()?;
    let target_dir = momentline
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot tell the target directory from the server's path")?;
    let mut bench = Bench {
        cache_dir: target_dir.join("bench-cache"),
        report: Report::new(&plan),
        plan,
        momentline,
        exe,
        system: System::new(),
        stand_in: StandIn::start()?,
    };
    let outcome = bench.run();
    // Whatever was measured is printed, even when a later section failed.
    bench.report.finish();
    print!("{}", bench.report.text);
    bench.stand_in.stop(&bench.system);
    outcome
}

/// Builds the server binary and finds it beside this example (target/release/examples/).
fn build_server() -> Res<PathBuf> {
    eprintln!("[bench] building momentline (cargo build --release --bin momentline)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // `cargo run` gives this program its package's variables; some build scripts (ring's)
    // watch them, so passing them on would rebuild those crates on every run.
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            let package_variable = name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                ]
                .contains(&name);
            if package_variable {
                command.env_remove(name);
            }
        }
    }
    let status = command
        .args(["build", "--release", "--bin", "momentline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release --bin momentline failed ({status})").into());
    }
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot tell the release directory from this program's path")?;
    let server = release.join("momentline");
    if !server.is_file() {
        return Err(format!("no server binary at {}", server.display()).into());
    }
    Ok(server)
}

struct Bench {
    plan: Plan,
    momentline: PathBuf,
    exe: PathBuf,
    cache_dir: PathBuf,
    system: SystemRunner,
    stand_in: StandIn,
    report: Report,
}

impl Bench {
    fn run(&mut self) -> Res<()> {
        self.timed(1, "1. closed loop", Self::closed_loop_section)?;
        self.timed(2, "2. open loop", Self::open_loop_section)?;
        self.timed(3, "3. outbox drain", Self::drain_section)?;
        self.timed(4, "4. held send rate", Self::held_rate_section)?;
        self.timed(5, "5. large database", Self::large_database_section)?;
        self.timed(6, "6. PostgreSQL", Self::postgres_section)?;
        self.timed(7, "7. sustained pipeline", Self::sustained_section)
    }

    fn timed(
        &mut self,
        number: u8,
        name: &'static str,
        section: fn(&mut Self) -> Res<()>,
    ) -> Res<()> {
        if self
            .plan
            .only
            .as_ref()
            .is_some_and(|only| !only.contains(&number))
        {
            return Ok(());
        }
        eprintln!("[bench] {name}");
        let started = Instant::now();
        let outcome = section(self);
        self.report.phases.push((name, started.elapsed()));
        outcome
    }

    // ---- 1. closed loop -------------------------------------------------------------------

    fn closed_loop_section(&mut self) -> Res<()> {
        let events = self.plan.closed_events;
        let budget = self.plan.closed_budget;
        eprintln!("[bench]   bare actix");
        let bare = self.helper_server(SERVE_BARE, "bare actix")?;
        let (bare_run, bare_rss) = self.closed_then_stop(bare, "bare", events, budget, number)?;
        eprintln!("[bench]   naive SQLite");
        let naive = self.helper_server(SERVE_NAIVE, "naive SQLite")?;
        let (naive_run, naive_rss) =
            self.closed_then_stop(naive, "naive", events, budget, number)?;
        eprintln!("[bench]   momentline");
        let numbers: Vec<String> = (0..events).map(number).collect();
        let server = self.fresh_momentline(&numbers, None)?;
        let (run, rss) = self.closed_then_stop(server, "closed", events, budget, number)?;

        let r = &mut self.report;
        r.title(&format!(
            "1. Closed loop: {CONNECTIONS} connections, up to {events} webhooks or {} s per server",
            budget.as_secs()
        ));
        r.header(&[
            "server",
            "answered",
            "throughput",
            "p50",
            "p99",
            "max",
            "errors",
            "CPU server / load",
            "server peak RSS",
        ]);
        for (name, run, rss) in [
            (
                "bare actix (2 workers, answers at once)",
                &bare_run,
                bare_rss,
            ),
            (
                "naive SQLite (verify, parse, 1 transaction)",
                &naive_run,
                naive_rss,
            ),
            ("momentline", &run, rss),
        ] {
            r.row(&[
                name.into(),
                run.answered().to_string(),
                per_sec(run.throughput()),
                ms(run.percentile(0.50)),
                ms(run.percentile(0.99)),
                ms(run.percentile(1.0)),
                run.errors_text(),
                run.cpu_text(),
                mib(rss),
            ]);
        }
        let of_bare = ratio(run.throughput(), bare_run.throughput());
        let of_naive = ratio(run.throughput(), naive_run.throughput());
        r.checks();
        r.check(
            "momentline / bare throughput",
            of_bare.map_or("n/a".into(), |x| format!("{:.1}%", x * 100.0)),
            "≥ 10%",
            of_bare.map(|x| x >= 0.10),
        );
        r.check(
            "momentline / naive throughput",
            of_naive.map_or("n/a".into(), |x| format!("{x:.2}×")),
            "≥ 3×",
            of_naive.map(|x| x >= 3.0),
        );
        let p99 = run.percentile(0.99);
        r.check(
            "momentline p99",
            ms(p99),
            "≤ 10 ms",
            Some(p99 <= Duration::from_millis(10)),
        );
        r.line("");
        Ok(())
    }

    // ---- 2. open loop ---------------------------------------------------------------------

    fn open_loop_section(&mut self) -> Res<()> {
        let rate = self.plan.open_rate;
        let secs = self.plan.open_secs;
        let count = usize::try_from(rate * secs)?;
        // The same schedule against the bare handler, briefly: how much of a latency is the
        // harness's own (pacing, loopback, this load generator).
        let floor_count = count.min(usize::try_from(rate * 5)?);
        let bare = self.helper_server(SERVE_BARE, "bare actix")?;
        let requests = Rc::new(signed_webhooks(bare.port, "floor", floor_count, number));
        eprintln!("[bench]   harness floor: bare actix at {rate}/s");
        let floor = self.measure(slice::from_ref(&bare), open_loop(bare.port, requests, rate));
        let floor_rss = bare.peak_rss_kib();
        bare.stop()?;

        let numbers: Vec<String> = (0..count).map(number).collect();
        let server = self.fresh_momentline(&numbers, None)?;
        let requests = Rc::new(signed_webhooks(server.port, "open", count, number));
        eprintln!("[bench]   momentline at {rate} webhooks/s for {secs} s");
        let run = self.measure(
            slice::from_ref(&server),
            open_loop(server.port, requests, rate),
        );
        let rss = server.peak_rss_kib();
        server.stop()?;

        let r = &mut self.report;
        r.title(&format!(
            "2. Open loop: {rate} webhooks/s for {secs} s, latency from each scheduled send time"
        ));
        r.header(&[
            "server",
            "offered",
            "answered",
            "p50",
            "p99",
            "max",
            "errors",
            "CPU server / load",
            "server peak RSS",
        ]);
        for (name, offered, run, rss) in [
            ("momentline", count, &run, rss),
            ("bare actix (harness floor)", floor_count, &floor, floor_rss),
        ] {
            r.row(&[
                name.into(),
                offered.to_string(),
                run.answered().to_string(),
                ms(run.percentile(0.50)),
                ms(run.percentile(0.99)),
                ms(run.percentile(1.0)),
                run.errors_text(),
                run.cpu_text(),
                mib(rss),
            ]);
        }
        r.checks();
        let p99 = run.percentile(0.99);
        r.check(
            "momentline p99",
            ms(p99),
            "≤ 5 ms",
            Some(p99 <= Duration::from_millis(5)),
        );
        r.check(
            "momentline errors",
            run.error_count().to_string(),
            "0",
            Some(run.error_count() == 0),
        );
        r.line("");
        Ok(())
    }

    // ---- 3. outbox drain ------------------------------------------------------------------

    fn drain_section(&mut self) -> Res<()> {
        let k = self.plan.drain_texts;
        let numbers: Vec<String> = (0..k).map(number).collect();
        let server = self.fresh_momentline(&numbers, None)?;
        eprintln!("[bench]   {k} webhooks, then waiting for their texts");
        let budget = self.plan.drain_budget;
        let (run, arrivals, rss) =
            self.drain_then_stop(vec![server], "drain", &numbers, budget, budget)?;

        let delivery = Delivery::of(&arrivals, &numbers);
        let rate = delivery.rate();
        let tail = match (delivery.last, run.last_answer) {
            (Some(text), Some(answer)) => signed_ms(text, answer),
            _ => "n/a".into(),
        };
        // The backlog left when the webhooks stopped, and how fast it went out.
        let backlog = match (delivery.last, run.last_answer) {
            (Some(last), Some(answer)) if last > answer => {
                let left = arrivals.iter().filter(|a| a.at > answer).count();
                format!(
                    "{left} at {:.0} texts/s",
                    left as f64 / (last - answer).as_secs_f64()
                )
            }
            _ => "none".into(),
        };
        let r = &mut self.report;
        r.title(&format!(
            "3. Outbox drain: {k} webhooks as fast as {CONNECTIONS} connections allow, no send \
             rate set"
        ));
        r.header(&[
            "webhooks answered 200",
            "webhook errors",
            "texts received",
            "duplicates",
            "missing",
            "drain rate",
            "last webhook answered → last text",
            "texts after the last webhook",
            "server peak RSS",
        ]);
        r.row(&[
            run.ok.to_string(),
            run.errors_text(),
            arrivals.len().to_string(),
            delivery.duplicates.to_string(),
            delivery.missing.to_string(),
            texts_per_sec(rate),
            tail,
            backlog,
            mib(rss),
        ]);
        r.checks();
        r.check(
            "drain rate",
            texts_per_sec(rate),
            "≥ 2000 texts/s",
            rate.map(|x| x >= 2000.0),
        );
        let exact = arrivals.len() == k && delivery.duplicates == 0 && delivery.missing == 0;
        r.check(
            "one text per webhook",
            format!(
                "{} of {k}, {} duplicates, {} missing, {} to unknown numbers",
                arrivals.len(),
                delivery.duplicates,
                delivery.missing,
                delivery.unexpected
            ),
            "exactly one each",
            Some(exact),
        );
        r.line("");
        Ok(())
    }

    // ---- 4. held send rate ----------------------------------------------------------------

    fn held_rate_section(&mut self) -> Res<()> {
        let rate = self.plan.held_rate;
        let secs = self.plan.held_secs;
        // A fifth more than the window needs, so the queue never runs dry inside it.
        let queued = usize::try_from(rate * secs * 6 / 5)?;
        let window = Duration::from_secs(secs.into());
        let numbers: Vec<String> = (0..queued).map(number).collect();
        let server = self.fresh_momentline(&numbers, Some(rate))?;
        self.stand_in.take();
        let requests = Rc::new(signed_webhooks(server.port, "held", queued, number));
        eprintln!("[bench]   MOMENTLINE_SEND_RATE={rate}: queueing {queued} texts");
        let run = self.measure(
            slice::from_ref(&server),
            closed_loop(&[server.port], requests, Duration::from_secs(60)),
        );
        let first = self.stand_in.first_arrival(Duration::from_secs(10));
        if let Some(first) = first {
            eprintln!("[bench]   watching a {secs} s window");
            // Stops early once every queued text is in: nothing more can arrive.
            let window_end = first + window;
            self.stand_in.wait_for(
                queued,
                window + Duration::from_secs(1),
                Duration::ZERO,
                window_end + Duration::from_millis(250),
            );
        }
        let arrivals = self.stand_in.take();
        let rss = server.peak_rss_kib();
        server.stop()?;

        let in_window = first.map_or(0, |first| {
            arrivals
                .iter()
                .filter(|a| a.at >= first && a.at < first + window)
                .count()
        });
        let achieved = in_window as f64 / window.as_secs_f64();
        let deviation = (achieved - f64::from(rate)) / f64::from(rate) * 100.0;
        let span = match (first, arrivals.iter().map(|a| a.at).max()) {
            (Some(first), Some(last)) => format!("{:.2} s", (last - first).as_secs_f64()),
            _ => "n/a".into(),
        };
        let r = &mut self.report;
        r.title(&format!(
            "4. Held send rate: MOMENTLINE_SEND_RATE={rate}, {secs} s window from the first text"
        ));
        r.header(&[
            "webhooks answered 200",
            "texts received",
            "first → last text",
            "texts in window",
            "achieved",
            "deviation",
            "server peak RSS",
        ]);
        r.row(&[
            format!("{} of {queued}", run.ok),
            arrivals.len().to_string(),
            span.clone(),
            in_window.to_string(),
            format!("{achieved:.2} texts/s"),
            format!("{deviation:+.1}%"),
            mib(rss),
        ]);
        r.checks();
        r.check(
            "achieved rate",
            format!("{achieved:.2} texts/s ({deviation:+.1}%)"),
            &format!("{rate} ± 2%"),
            Some(first.is_some() && deviation.abs() <= 2.0),
        );
        if first.is_some() && arrivals.len() >= run.ok && in_window == arrivals.len() {
            r.line("");
            r.line(&format!(
                "All {} queued texts arrived within {span} of the first, inside the {} s \
                 window: the send rate was not held.",
                arrivals.len(),
                window.as_secs()
            ));
        }
        r.line("");
        Ok(())
    }

    // ---- 5. large database ----------------------------------------------------------------

    fn large_database_section(&mut self) -> Res<()> {
        let plan = &self.plan;
        let (numbers, messages, events) = (
            plan.large_numbers,
            plan.large_messages,
            plan.compared_events,
        );
        let compared = plan.compared_numbers;
        let (cached, how) = self.large_database()?;
        let dir = temp_dir()?;
        let db = dir.path().join("bench.db");
        let copying = Instant::now();
        std::fs::copy(&cached, &db)
            .map_err(|e| format!("could not copy {}: {e}", cached.display()))?;
        // Written out now, so the copy's writeback does not compete with the server's syncs.
        File::open(&db)?.sync_all()?;
        let size = std::fs::metadata(&db)?.len();
        eprintln!(
            "[bench]   copied the seeded database ({}) and synced it in {:.1} s",
            gib(size),
            copying.elapsed().as_secs_f64()
        );
        // The same number of distinct numbers as the small database, spread over the set.
        let stride = (numbers / compared).max(1);
        let spread = move |i: usize| number((i % compared) * stride);
        let large = self.start_momentline(dir, &Db::Sqlite(db), None)?;
        let large_ready = large.ready_after;
        eprintln!("[bench]   {events} webhooks on the large database");
        let budget = self.plan.closed_budget;
        let (large_run, large_rss) =
            self.closed_then_stop(large, "large", events, budget, spread)?;

        let small_numbers: Vec<String> = (0..compared).map(number).collect();
        let small = self.fresh_momentline(&small_numbers, None)?;
        let small_ready = small.ready_after;
        eprintln!("[bench]   {events} webhooks on a {compared}-number database");
        let (small_run, small_rss) =
            self.closed_then_stop(small, "small", events, budget, move |i| {
                number(i % compared)
            })?;

        let r = &mut self.report;
        r.title(&format!(
            "5. Large database: {numbers} numbers, {messages} messages; {CONNECTIONS}-connection \
             closed loop of {events} webhooks from {compared} of its numbers"
        ));
        r.header(&[
            "database",
            "file",
            "spawn → first 200 /healthz",
            "answered",
            "throughput",
            "p50",
            "p99",
            "errors",
            "server peak RSS",
        ]);
        r.row(&[
            format!("large ({how})"),
            gib(size),
            ms(large_ready),
            large_run.answered().to_string(),
            per_sec(large_run.throughput()),
            ms(large_run.percentile(0.50)),
            ms(large_run.percentile(0.99)),
            large_run.errors_text(),
            mib(large_rss),
        ]);
        r.row(&[
            format!("{compared} numbers, no messages"),
            "-".into(),
            ms(small_ready),
            small_run.answered().to_string(),
            per_sec(small_run.throughput()),
            ms(small_run.percentile(0.50)),
            ms(small_run.percentile(0.99)),
            small_run.errors_text(),
            mib(small_rss),
        ]);
        r.checks();
        r.check(
            "spawn → first 200, large database",
            ms(large_ready),
            "≤ 100 ms",
            Some(large_ready <= Duration::from_millis(100)),
        );
        let p99_ratio = ratio(
            large_run.percentile(0.99).as_secs_f64(),
            small_run.percentile(0.99).as_secs_f64(),
        );
        r.check(
            "p99 large / small",
            p99_ratio.map_or("n/a".into(), |x| format!("{x:.2}")),
            "≤ 1.2",
            p99_ratio.map(|x| x <= 1.2),
        );
        r.check(
            "server peak RSS, large database",
            mib(large_rss),
            "≤ 64 MiB",
            large_rss.map(|kib| kib <= 64 * 1024),
        );
        r.line("");
        Ok(())
    }

    /// The seeded large database, from the cache or seeded now; and which of the two.
    fn large_database(&self) -> Res<(PathBuf, String)> {
        let (numbers, messages) = (self.plan.large_numbers, self.plan.large_messages);
        let name = format!(
            "large-{SEED_VERSION}-{}-{numbers}n-{messages}m.db",
            schema_tag()
        );
        let cached = self.cache_dir.join(name);
        if cached.is_file() {
            eprintln!("[bench]   using the cached seed {}", cached.display());
            return Ok((cached, "cached seed".into()));
        }
        std::fs::create_dir_all(&self.cache_dir)?;
        // Seeded under another name and renamed when complete, so an interrupted seeding
        // is never taken for a finished one.
        let partial = cached.with_extension("partial");
        for leftover in ["partial", "partial-wal", "partial-shm"] {
            let path = cached.with_extension(leftover);
            if path.exists() {
                std::fs::remove_file(&path)?;
            }
        }
        eprintln!("[bench]   seeding {numbers} numbers and {messages} messages (once; cached)");
        let started = Instant::now();
        self.add_artist(&Db::Sqlite(partial.clone()))?;
        seed(&partial, numbers, messages)?;
        File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &cached)?;
        let took = started.elapsed().as_secs_f64();
        eprintln!("[bench]   seeded in {took:.1} s");
        Ok((cached, format!("seeded now in {took:.0} s")))
    }

    // ---- 6. PostgreSQL ---------------------------------------------------------------------

    fn postgres_section(&mut self) -> Res<()> {
        const TITLE: &str = "6. PostgreSQL: one and two instances";
        let Some(server) = self.plan.postgres.clone() else {
            let r = &mut self.report;
            r.title(TITLE);
            r.line(&format!(
                "Skipped: no PostgreSQL server given. Start a throwaway one with \
                 `scripts/postgres start` (it prints its URL), then run \
                 `cargo run --release --example bench -- --only 6 --postgres URL` \
                 (or set {POSTGRES_URL_VARIABLE})."
            ));
            r.line("");
            return Ok(());
        };
        let version = postgres_version(&server)?;
        let events = self.plan.closed_events;
        let budget = self.plan.closed_budget;
        let wait = self.plan.drain_budget;
        let numbers: Vec<String> = (0..events).map(number).collect();
        eprintln!("[bench]   SQLite, one instance");
        let sqlite = self.fresh_momentline(&numbers, None)?;
        let mut runs = vec![(
            "SQLite, one instance",
            self.drain_then_stop(vec![sqlite], "sqlite", &numbers, budget, wait)?,
        )];
        for (name, tag, instances) in [
            ("PostgreSQL, one instance", "pg1", 1),
            ("PostgreSQL, two instances, one database", "pg2", 2),
        ] {
            eprintln!("[bench]   {name}");
            let database = PostgresDatabase::create(&server, tag)?;
            let db = Db::Postgres(database.url.clone());
            self.fill(&db, &numbers)?;
            let servers = (0..instances)
                .map(|_| self.start_momentline(temp_dir()?, &db, None))
                .collect::<Res<Vec<_>>>()?;
            runs.push((
                name,
                self.drain_then_stop(servers, tag, &numbers, budget, wait)?,
            ));
        }

        let r = &mut self.report;
        r.title(&format!(
            "{TITLE}: PostgreSQL {version} on this machine; {CONNECTIONS}-connection closed loop \
             of up to {events} webhooks or {} s per setup, then every text",
            budget.as_secs()
        ));
        r.header(&[
            "setup",
            "webhooks answered 200",
            "errors",
            "throughput",
            "p50",
            "p99",
            "texts received / duplicates / missing",
            "drain rate",
            "CPU servers / load",
            "CPU PostgreSQL server",
            "server peak RSS (largest)",
        ]);
        let mut checks = Vec::new();
        for (name, (run, arrivals, rss)) in &runs {
            // One text is due for each webhook sent; the budget may stop the loop early.
            let sent = (run.ok + run.error_count()).min(numbers.len());
            let delivery = Delivery::of(arrivals, &numbers[..sent]);
            r.row(&[
                (*name).into(),
                run.ok.to_string(),
                run.errors_text(),
                per_sec(run.throughput()),
                ms(run.percentile(0.50)),
                ms(run.percentile(0.99)),
                format!(
                    "{} / {} / {}",
                    delivery.count, delivery.duplicates, delivery.missing
                ),
                texts_per_sec(delivery.rate()),
                run.cpu_text(),
                match (name.starts_with("SQLite"), run.database_cpu) {
                    (true, _) => "in the server".into(),
                    (false, Some(cpu)) => format!("{cpu:.0}%"),
                    (false, None) => "not on this machine".into(),
                },
                mib(*rss),
            ]);
            checks.push((
                format!("one text per webhook, {name}"),
                format!(
                    "{} of {sent}, {} duplicates, {} missing, {} to unknown numbers",
                    delivery.count, delivery.duplicates, delivery.missing, delivery.unexpected
                ),
                delivery.count == sent && delivery.duplicates == 0 && delivery.missing == 0,
            ));
        }
        r.line("");
        r.line(
            "The PostgreSQL server shares this machine's CPUs with the momentline servers and \
             the load generator; its own CPU time is not in the servers' figure, but has a \
             column of its own (every process here named postgres: its backends). Each setup has \
             a new database; two instances share one, with connection i going to instance \
             i % 2, and both send texts to the same stand-in provider. CPU is for the loop alone \
             (servers summed, % of one core); the drain rate is (texts − 1) / (last text − first \
             text).",
        );
        r.checks();
        for (what, measured, met) in checks {
            r.check(&what, measured, "exactly one each", Some(met));
        }
        r.line("");
        Ok(())
    }

    // ---- 7. sustained pipeline ------------------------------------------------------------

    /// The pipeline end to end at a fixed rate: first `sustained_rate` for `sustained_secs`,
    /// then probes of `probe_secs` for the highest rate held (`Sustained::shortfalls` says
    /// what holding means), doubling until one is not held and then halving the gap; the
    /// highest held is run again for `sustained_secs` if `sustained_budget` allows.
    fn sustained_section(&mut self) -> Res<()> {
        let began = Instant::now();
        let (rate, secs) = (self.plan.sustained_rate, self.plan.sustained_secs);
        let (probe_secs, budget) = (self.plan.probe_secs, self.plan.sustained_budget);
        eprintln!("[bench]   momentline at {rate} webhooks/s for {secs} s");
        let first_began = Instant::now();
        let first = self.sustained_run(rate, secs, Duration::from_secs(30))?;
        let full_cost = first_began.elapsed();
        // What a run takes beyond its sending: database, start, signing, replies, stop.
        let mut overhead = full_cost.saturating_sub(Duration::from_secs(secs.into()));
        let (mut held, mut failed) = if first.held() {
            (rate, None)
        } else {
            (0, Some(rate))
        };
        let mut runs = vec![(format!("{rate}/s for {secs} s"), first)];
        while let Some(next) = next_probe(held, failed) {
            // Room is kept for the confirming run a held probe would need.
            let probe_cost = Duration::from_secs(probe_secs.into()) + overhead;
            if began.elapsed() + probe_cost + full_cost > budget {
                break;
            }
            eprintln!("[bench]   probe: {next} webhooks/s for {probe_secs} s");
            let probe_began = Instant::now();
            let probe = self.sustained_run(next, probe_secs, REPLY_GRACE)?;
            overhead = overhead.max(
                probe_began
                    .elapsed()
                    .saturating_sub(Duration::from_secs(probe_secs.into())),
            );
            if probe.held() {
                held = next;
            } else {
                failed = Some(next);
            }
            runs.push((format!("probe: {next}/s for {probe_secs} s"), probe));
        }
        // A rate found by a probe, held for the full length or not.
        let confirmed = if held > 0 && held != rate && began.elapsed() + full_cost <= budget {
            eprintln!("[bench]   confirming {held} webhooks/s for {secs} s");
            let confirm = self.sustained_run(held, secs, Duration::from_secs(30))?;
            let ok = confirm.held();
            runs.push((format!("confirming: {held}/s for {secs} s"), confirm));
            Some(ok)
        } else {
            None
        };

        let r = &mut self.report;
        r.title(&format!(
            "7. Sustained pipeline: {rate} webhooks/s for {secs} s, then {probe_secs} s probes \
             for the highest rate held; each webhook from its scheduled send time to its reply \
             at the provider stand-in"
        ));
        r.header(&[
            "run",
            "webhooks answered 200",
            "errors",
            "webhook p99",
            "webhook → reply p50 / p99 / max",
            "replies / missing / duplicates",
            "backlog mean, first → last third",
            "backlog at end of sending",
            "last webhook → last reply",
            "CPU server / load / bench process",
            "server peak RSS",
            "rate held",
        ]);
        for (name, run) in &runs {
            let (early, late) = thirds(&run.backlog);
            let shortfalls = run.shortfalls();
            r.row(&[
                name.clone(),
                format!("{} of {}", run.run.ok, run.offered),
                run.run.errors_text(),
                ms(run.run.percentile(0.99)),
                format!(
                    "{} / {} / {}",
                    ms(percentile(&run.to_reply, 0.50)),
                    ms(percentile(&run.to_reply, 0.99)),
                    ms(percentile(&run.to_reply, 1.0))
                ),
                format!(
                    "{} / {} / {}",
                    run.delivery.count, run.delivery.missing, run.delivery.duplicates
                ),
                format!("{early:.1} → {late:.1}"),
                run.backlog_at_end.to_string(),
                run.last_reply
                    .map_or("n/a".into(), |last| signed_ms(last, run.end)),
                format!(
                    "{} / {}",
                    run.run.cpu_text(),
                    run.bench_cpu.map_or("?".into(), |x| format!("{x:.0}%"))
                ),
                mib(run.rss),
                if shortfalls.is_empty() {
                    "yes".into()
                } else {
                    format!("no: {}", shortfalls.join(", "))
                },
            ]);
        }
        let first = &runs[0].1;
        let each_second =
            usize::try_from(Duration::from_secs(1).as_nanos() / BACKLOG_SAMPLE.as_nanos())?;
        let series: Vec<String> = first
            .backlog
            .iter()
            .step_by(each_second)
            .map(i64::to_string)
            .collect();
        r.line("");
        r.line(&format!(
            "Backlog each second at {rate}/s, from the first scheduled webhook: {}.",
            series.join(" ")
        ));
        r.line("");
        r.line(&format!(
            "Each run is a fresh server on a fresh database, one webhook from each of its \
             numbers, so a reply is matched to its webhook by the number it goes to. The \
             backlog is the webhooks answered 200 less the replies arrived (a number's first), \
             sampled every {} ms of the sending. A rate is held when every webhook is answered \
             200 and gets exactly one reply, neither the backlog nor the webhooks sent but not \
             yet answered grow (mean over the last third of the sending at most {} ms of the \
             rate's webhooks above that over the first third), and the last reply arrives \
             within {} s of the last webhook's scheduled send time. Probes wait only that long \
             for replies. Requests beyond {OPEN_LOOP_MAX_CONNECTIONS} in flight wait, their \
             latency counted from their scheduled time. CPU is % of one core: the server, the \
             load thread, and this whole process (the load thread and the provider stand-in; the \
             pacer's thread has ended when it is read, its time with it).",
            BACKLOG_SAMPLE.as_millis(),
            BACKLOG_MARGIN.as_millis(),
            REPLY_GRACE.as_secs()
        ));
        r.checks();
        let not_held = failed.map_or(String::new(), |f| format!("; {f}/s was not"));
        let measured = match confirmed {
            _ if held == 0 => format!("none held{not_held}"),
            Some(false) => format!("{held} texts/s for {probe_secs} s, not for {secs} s{not_held}"),
            None if held != rate => {
                format!("{held} texts/s for {probe_secs} s (not confirmed for {secs} s){not_held}")
            }
            _ => format!("{held} texts/s for {secs} s{not_held}"),
        };
        r.check(
            "highest rate held, backlog not growing",
            measured,
            "≥ 3000 texts/s",
            Some(held >= 3000 && confirmed != Some(false)),
        );
        let p99 = percentile(&first.to_reply, 0.99);
        r.check(
            &format!("webhook → reply p99 at {rate}/s"),
            ms(p99),
            "≤ 50 ms",
            Some(first.delivery.missing == 0 && p99 <= Duration::from_millis(50)),
        );
        let d = &first.delivery;
        r.check(
            &format!("one reply per webhook at {rate}/s"),
            format!(
                "{} of {}, {} duplicates, {} missing, {} to unknown numbers",
                d.count, first.offered, d.duplicates, d.missing, d.unexpected
            ),
            "exactly one each",
            Some(d.count == first.offered && d.duplicates == 0 && d.missing == 0),
        );
        r.line("");
        Ok(())
    }

    /// `rate` webhooks/s for `secs` s on a fresh server, one from each of its numbers; then up
    /// to `wait` after the last one's scheduled time for their replies.
    fn sustained_run(&self, rate: u32, secs: u32, wait: Duration) -> Res<Sustained> {
        let count = usize::try_from(rate * secs)?;
        let numbers: Vec<String> = (0..count).map(number).collect();
        let server = self.fresh_momentline(&numbers, None)?;
        self.stand_in.take();
        let tag = format!("sustained-{rate}");
        let requests = Rc::new(signed_webhooks(server.port, &tag, count, number));
        let bench_before = process_cpu_ns("self");
        let measuring = Instant::now();
        let run = self.measure(
            slice::from_ref(&server),
            open_loop(server.port, requests, rate),
        );
        let bench_cpu = bench_before
            .zip(process_cpu_ns("self"))
            .map(|(before, after)| {
                after.saturating_sub(before) as f64 / 1e9 / measuring.elapsed().as_secs_f64()
                    * 100.0
            });
        let start = run.started.ok_or("the open loop has no start")?;
        let end = scheduled_at(start, count.saturating_sub(1), rate);
        let settle = Duration::from_secs(1);
        self.stand_in
            .wait_for(run.ok, Duration::from_secs(5), settle, end + wait + settle);
        let arrivals = self.stand_in.take();
        let rss = server.peak_rss_kib();
        server.stop()?;
        let sustained = Sustained::of(rate, run, &arrivals, &numbers, bench_cpu, rss);
        let shortfalls = sustained.shortfalls();
        if shortfalls.is_empty() {
            eprintln!("[bench]     held");
        } else {
            eprintln!("[bench]     not held: {}", shortfalls.join(", "));
        }
        Ok(sustained)
    }

    // ---- servers --------------------------------------------------------------------------

    /// This binary re-executed as one of the baselines.
    fn helper_server(&self, flag: &str, name: &'static str) -> Res<ServerProcess> {
        let dir = temp_dir()?;
        let port = free_port()?;
        let mut command = Command::new(&self.exe);
        command.arg(flag).arg(port.to_string());
        if flag == SERVE_NAIVE {
            command.arg(dir.path().join("naive.db"));
        }
        ServerProcess::start(name, command, port, dir)
    }

    /// momentline on a new SQLite database: the artist, then `numbers` verified.
    fn fresh_momentline(&self, numbers: &[String], send_rate: Option<u32>) -> Res<ServerProcess> {
        let dir = temp_dir()?;
        let db = Db::Sqlite(dir.path().join("bench.db"));
        self.fill(&db, numbers)?;
        self.start_momentline(dir, &db, send_rate)
    }

    /// The artist, then `numbers` verified, in a new database.
    fn fill(&self, db: &Db, numbers: &[String]) -> Res<()> {
        self.add_artist(db)?;
        insert_numbers(db, numbers)
    }

    /// momentline on `db`, run in `dir` (its log; with PostgreSQL, its media directory too).
    fn start_momentline(
        &self,
        dir: TempDir,
        db: &Db,
        send_rate: Option<u32>,
    ) -> Res<ServerProcess> {
        let port = free_port()?;
        let mut command = self.momentline_command(port, db, send_rate);
        command.current_dir(dir.path());
        ServerProcess::start("momentline", command, port, dir)
    }

    /// `momentline artists add`, which also creates the database (SQLite) and applies the
    /// schema.
    fn add_artist(&self, db: &Db) -> Res<()> {
        let output = self
            .momentline_command(0, db, None)
            .args(["artists", "add", "--name", "Bench"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run momentline artists add: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "momentline artists add failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Ok(())
    }

    fn momentline_command(&self, port: u16, db: &Db, send_rate: Option<u32>) -> Command {
        let mut command = Command::new(&self.momentline);
        for (name, _) in std::env::vars_os() {
            if let Some(name) = name.to_str() {
                if OWNED_ENV_PREFIXES.iter().any(|p| name.starts_with(p)) {
                    command.env_remove(name);
                }
            }
        }
        match db {
            Db::Sqlite(path) => command.env("MOMENTLINE_DB", path),
            Db::Postgres(url) => command.env("MOMENTLINE_DATABASE_URL", url),
        };
        command
            .env("MOMENTLINE_ADDR", format!("127.0.0.1:{port}"))
            .env("MOMENTLINE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            // Warnings, and the writer's batch figures when the server stops.
            .env("RUST_LOG", "warn,momentline::startup=info")
            .env("MOMENTLINE_SMS_PROVIDER", "telnyx")
            .env("TELNYX_API_KEY", "KEYBENCH")
            .env("TELNYX_FROM_NUMBER", SERVICE_NUMBER)
            .env(
                "TELNYX_API_BASE",
                format!("http://127.0.0.1:{}", self.stand_in.port),
            )
            .env("TELNYX_PUBLIC_KEY", public_key_base64())
            // Every webhook here is a text alone, which would otherwise wait
            // MOMENTLINE_MERGE_SECS for a photo before its reply is due: the drain sections
            // would time the window, not the server.
            .env("MOMENTLINE_MERGE_SECS", "0");
        if let Some(rate) = send_rate {
            command.env("MOMENTLINE_SEND_RATE", rate.to_string());
        }
        command
    }

    // ---- load -----------------------------------------------------------------------------

    /// A closed loop of `events` webhooks (from `from(i)`), then the server's peak memory,
    /// then the server stopped.
    fn closed_then_stop(
        &self,
        server: ServerProcess,
        tag: &str,
        events: usize,
        budget: Duration,
        from: impl Fn(usize) -> String,
    ) -> Res<(LoadRun, Option<u64>)> {
        let requests = Rc::new(signed_webhooks(server.port, tag, events, from));
        let run = self.measure(
            slice::from_ref(&server),
            closed_loop(&[server.port], requests, budget),
        );
        let rss = server.peak_rss_kib();
        server.stop()?;
        Ok((run, rss))
    }

    /// A closed loop of one webhook from each of `numbers`, connection i to `servers[i % n]`,
    /// for up to `budget`; then up to `wait` for the texts, until there is one per 200 answer
    /// (and a second more, for late duplicates) or none came for 10 s; then the servers'
    /// largest peak memory, then the servers stopped.
    fn drain_then_stop(
        &self,
        servers: Vec<ServerProcess>,
        tag: &str,
        numbers: &[String],
        budget: Duration,
        wait: Duration,
    ) -> Res<(LoadRun, Vec<Arrival>, Option<u64>)> {
        self.stand_in.take();
        let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
        // Requests name the first instance as their host: any instance may take them, and a
        // Telnyx signature covers the body alone.
        let host = *ports.first().ok_or("no server to load")?;
        let requests = Rc::new(signed_webhooks(host, tag, numbers.len(), |i| {
            numbers[i].clone()
        }));
        let run = self.measure(&servers, closed_loop(&ports, requests, budget));
        let deadline = Instant::now() + wait;
        self.stand_in.wait_for(
            run.ok,
            Duration::from_secs(10),
            Duration::from_secs(1),
            deadline,
        );
        let arrivals = self.stand_in.take();
        let rss = servers.iter().filter_map(ServerProcess::peak_rss_kib).max();
        for server in servers {
            server.stop()?;
        }
        Ok((run, arrivals, rss))
    }

    /// Runs `load` on this thread, noting the CPU time it and the servers (together) took
    /// meanwhile.
    fn measure(&self, servers: &[ServerProcess], load: impl Future<Output = Tally>) -> LoadRun {
        let servers_cpu = || {
            servers
                .iter()
                .map(ServerProcess::cpu_ns)
                .sum::<Option<u64>>()
        };
        let server_before = servers_cpu();
        let load_before = thread_cpu_ns();
        let database_before = postgres_cpu_ns();
        let started = Instant::now();
        let tally = self.system.block_on(load);
        let wall = started.elapsed().as_secs_f64();
        let share = |ns: u64| ns as f64 / 1e9 / wall * 100.0;
        let percent =
            |before: Option<u64>, after: Option<u64>| Some(share(after?.saturating_sub(before?)));
        let database_after = postgres_cpu_ns();
        let mut run = LoadRun::new(
            tally,
            percent(server_before, servers_cpu()),
            percent(load_before, thread_cpu_ns()),
        );
        run.database_cpu = (!database_after.is_empty())
            .then(|| share(cpu_since(&database_before, &database_after)));
        run
    }
}

// ---- webhooks and numbers ---------------------------------------------------------------------

/// The `index`th benchmark number: a valid NANP number. The area code varies fastest, then
/// the line, then the exchange (200 up, 555 skipped).
fn number(index: usize) -> String {
    let area = AREA_CODES[index % AREA_CODES.len()];
    let rest = index / AREA_CODES.len();
    let exchange = 200 + rest / 10_000;
    let exchange = if exchange >= 555 {
        exchange + 1
    } else {
        exchange
    };
    format!("+1{area}{exchange}{:04}", rest % 10_000)
}

/// The indexes `0..count` in the order their numbers sort, so seeded rows append to indexes.
fn sorted_indexes(count: usize) -> impl Iterator<Item = usize> {
    (0..AREA_CODES.len()).flat_map(move |area| (area..count).step_by(AREA_CODES.len()))
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&SECRET)
}

fn public_key_base64() -> String {
    BASE64.encode(signing_key().verifying_key().to_bytes())
}

/// `count` signed `message.received` requests for a server on `port`, event `i` from
/// `from(i)`, each posting one Moment. Telnyx timestamps hold 300 s: sign just before use.
fn signed_webhooks(
    port: u16,
    tag: &str,
    count: usize,
    from: impl Fn(usize) -> String,
) -> Vec<Vec<u8>> {
    let key = signing_key();
    let timestamp = Utc::now().timestamp();
    (0..count)
        .map(|i| {
            let body =
                json!({"data": {"event_type": "message.received", "id": format!("ev-{tag}-{i}"),
                "payload": {"id": format!("bench-{tag}-{i}"), "type": "SMS",
                    "from": {"phone_number": from(i)},
                    "to": [{"phone_number": SERVICE_NUMBER}],
                    "text": format!("Studio note {i}\nprice: 2"), "media": []}}})
                .to_string();
            let signature = BASE64.encode(
                key.sign(format!("{timestamp}|{body}").as_bytes())
                    .to_bytes(),
            );
            format!(
                "POST {WEBHOOK_PATH} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\
                 content-type: application/json\r\ntelnyx-timestamp: {timestamp}\r\n\
                 telnyx-signature-ed25519: {signature}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        })
        .collect()
}

// ---- databases --------------------------------------------------------------------------------

/// Where momentline keeps its data.
enum Db {
    /// A SQLite file (`MOMENTLINE_DB`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`MOMENTLINE_DATABASE_URL`).
    Postgres(String),
}

/// `numbers` verified, in one transaction.
fn insert_numbers(db: &Db, numbers: &[String]) -> Res<()> {
    match db {
        Db::Sqlite(path) => {
            let mut conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare(INSERT_NUMBER)?;
                for number in numbers {
                    insert.execute([number])?;
                }
            }
            tx.commit()?;
        }
        Db::Postgres(url) => {
            let mut client = postgres::Client::connect(url, NoTls)?;
            let mut tx = client.transaction()?;
            let insert = tx.prepare(&INSERT_NUMBER.replace("?1", "$1"))?;
            for number in numbers {
                tx.execute(&insert, &[number])?;
            }
            tx.commit()?;
        }
    }
    Ok(())
}

/// A database made for this run on the PostgreSQL server at `server`; dropped with this.
struct PostgresDatabase {
    server: String,
    name: String,
    /// `server` naming this database.
    url: String,
}

impl PostgresDatabase {
    fn create(server: &str, tag: &str) -> Res<Self> {
        let name = format!(
            "momentline_bench_{}_{}_{tag}",
            std::process::id(),
            Utc::now().timestamp()
        );
        postgres::Client::connect(server, NoTls)?
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))?;
        Ok(Self {
            server: server.to_owned(),
            url: with_database(server, &name)?,
            name,
        })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // FORCE: a server killed on a failure may not have closed its connections yet.
        let dropped = postgres::Client::connect(&self.server, NoTls).and_then(|mut client| {
            client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
        });
        if let Err(e) = dropped {
            eprintln!(
                "[bench] could not drop the PostgreSQL database {}: {e}",
                self.name
            );
        }
    }
}

/// The version of the PostgreSQL server at `url`.
fn postgres_version(url: &str) -> Res<String> {
    let mut client = postgres::Client::connect(url, NoTls)
        .map_err(|e| format!("could not connect to the PostgreSQL server: {e}"))?;
    Ok(client.query_one("SHOW server_version", &[])?.get(0))
}

/// A `postgres://` URL naming the database `name` in place of its own.
fn with_database(url: &str, name: &str) -> Res<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("{url} is not a postgres:// URL"))?;
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    Ok(format!("{scheme}://{authority}/{name}{query}"))
}

/// Seeds `numbers` verified numbers with `messages` messages spread evenly over them, each
/// number's first half inbound and the rest "Moment posted" replies sent.
fn seed(db: &Path, numbers: usize, messages: usize) -> Res<()> {
    let mut conn = Connection::open(db)?;
    // No journal and no syncing: a failed seeding is thrown away, never used. A large page
    // cache keeps the indexes in memory while they grow.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -1048576;",
    )?;
    let epoch = DateTime::from_timestamp(SEED_EPOCH, 0).ok_or("bad seed epoch")?;
    let tx = conn.transaction()?;
    {
        let mut add_number = tx.prepare(INSERT_NUMBER)?;
        let mut add_message = tx.prepare(
            "INSERT INTO messages (direction, artist_id, phone, service_number, body, provider,
                 provider_message_id, state, purpose, created_at, updated_at)
             VALUES (?1, 1, ?2, ?3, ?4, 'telnyx', ?5, ?6, ?7, ?8, ?8)",
        )?;
        let per_number = messages / numbers.max(1);
        let extra = messages % numbers.max(1);
        let mut written: u64 = 0;
        for (rank, index) in sorted_indexes(numbers).enumerate() {
            let phone = number(index);
            add_number.execute([&phone])?;
            let share = per_number + usize::from(rank < extra);
            for m in 0..share {
                let at = (epoch + chrono::Duration::seconds(i64::try_from(written)?))
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string();
                if m < share / 2 {
                    add_message.execute(params![
                        "inbound",
                        phone,
                        SERVICE_NUMBER,
                        format!("Studio note {written}\nprice: 2"),
                        format!("seed-in-{written:010}"),
                        "received",
                        None::<&str>,
                        at
                    ])?;
                } else {
                    add_message.execute(params![
                        "outbound",
                        phone,
                        SERVICE_NUMBER,
                        format!("Moment posted: http://127.0.0.1:8080/moments/{written}"),
                        format!("seed-out-{written:010}"),
                        "sent",
                        Some("moment_posted"),
                        at
                    ])?;
                }
                written += 1;
                if written.is_multiple_of(1_000_000) {
                    eprintln!("[bench]     {written} messages");
                }
            }
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA journal_mode = WAL;")?;
    Ok(())
}

/// A short digest of the schema the seed was made with, so a schema change reseeds.
fn schema_tag() -> String {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.sql");
    match std::fs::read(schema) {
        Ok(bytes) => hex::encode(&Sha256::digest(&bytes)[..6]),
        Err(_) => "noschema".into(),
    }
}

// ---- server processes -------------------------------------------------------------------------

/// A server child process; killed if dropped while still running.
struct ServerProcess {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
    /// From spawning the process to its first 200 from `GET /healthz`.
    ready_after: Duration,
    _dir: TempDir,
}

impl ServerProcess {
    /// Spawns `command` (output to a log in `dir`) and waits for `GET /healthz` to answer 200.
    fn start(name: &'static str, mut command: Command, port: u16, dir: TempDir) -> Res<Self> {
        let log = dir.path().join("server.log");
        let out = File::create(&log)?;
        command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("could not start {name}: {e}"))?;
        let mut server = Self {
            name,
            child,
            port,
            log,
            ready_after: Duration::ZERO,
            _dir: dir,
        };
        server.ready_after = server.wait_ready(spawned)?;
        Ok(server)
    }

    /// Polls every millisecond, so the time to ready is known to about a millisecond.
    fn wait_ready(&mut self, spawned: Instant) -> Res<Duration> {
        let deadline = spawned + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "{} exited ({status}) before it was ready; its log:\n{}",
                    self.name,
                    log_tail(&self.log)
                )
                .into());
            }
            if health_status(self.port) == Some(200) {
                return Ok(spawned.elapsed());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not answer GET /healthz with 200 within {} s; its log:\n{}",
                    self.name,
                    READY_TIMEOUT.as_secs(),
                    log_tail(&self.log)
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// VmHWM: the most resident memory the process has had, in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn cpu_ns(&self) -> Option<u64> {
        process_cpu_ns(&self.child.id().to_string())
    }

    /// SIGTERM, as a service manager stops it; SIGKILL if it is still running 15 s later.
    fn stop(mut self) -> Res<()> {
        if let Some(status) = self.child.try_wait()? {
            return Err(format!(
                "{} exited during the run ({status}); its log:\n{}",
                self.name,
                log_tail(&self.log)
            )
            .into());
        }
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !sent.success() {
            eprintln!("[bench] kill -TERM {pid} failed ({sent})");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                // momentline says how its writer batched the run as it stops.
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                if let Some(line) = log.lines().rev().find(|l| l.contains("momentline stopped")) {
                    eprintln!("[bench]   {}: {}", self.name, line.trim());
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "[bench] {} still running {} s after SIGTERM: killing it",
            self.name,
            STOP_TIMEOUT.as_secs()
        );
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The status of `GET /healthz`, or `None` when nothing answers yet.
fn health_status(port: u16) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    stream.take(4096).read_to_end(&mut answer).ok()?;
    std::str::from_utf8(answer.get(9..12)?).ok()?.parse().ok()
}

/// Nanoseconds the thread whose /proc directory this is has run (`schedstat`'s first field):
/// finer than the 10 ms ticks of `stat`, which a sub-second run needs.
fn cpu_ns(task: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(task.join("schedstat")).ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// CPU time of the live threads of process `pid` (`self`: this one): a thread that exits
/// takes its time along, which can only make the figure smaller.
fn process_cpu_ns(pid: &str) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        // A thread may exit between listing and reading.
        total += task.ok().and_then(|t| cpu_ns(&t.path())).unwrap_or(0);
    }
    Some(total)
}

/// CPU time of each process on this machine named `postgres` (a PostgreSQL server's
/// postmaster and backends), by pid; empty when none runs here.
fn postgres_cpu_ns() -> BTreeMap<u32, u64> {
    let mut by_pid = BTreeMap::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return by_pid;
    };
    for process in processes.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "postgres" {
            if let Some(ns) = process_cpu_ns(&pid.to_string()) {
                by_pid.insert(pid, ns);
            }
        }
    }
    by_pid
}

/// What the processes of `after` ran since `before`: one started since counts from nothing,
/// one that ended meanwhile takes its time along (which can only make the figure smaller).
fn cpu_since(before: &BTreeMap<u32, u64>, after: &BTreeMap<u32, u64>) -> u64 {
    after
        .iter()
        .map(|(pid, ns)| ns.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// This thread's CPU time: the load generator runs on it.
fn thread_cpu_ns() -> Option<u64> {
    cpu_ns(Path::new("/proc/thread-self"))
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(2_000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

fn free_port() -> Res<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn temp_dir() -> Res<TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("momentline-bench")
        .tempdir()?)
}

// ---- load generator ---------------------------------------------------------------------------

/// A keep-alive HTTP/1.1 connection that sends prepared request bytes and reads an answer
/// with a Content-Length body: far less work per request than a general client.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    reusable: bool,
}

/// The most an answer's head or body may take before it is taken for garbage.
const MAX_ANSWER: usize = 1 << 20;

impl Conn {
    async fn open(port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
            reusable: true,
        })
    }

    /// Sends one request and answers the response's status.
    async fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        self.send(request).await?;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = Head::parse(&self.buf[..end])?;
                let total = end + 4 + head.body_len;
                while self.buf.len() < total {
                    self.fill().await?;
                }
                self.buf.drain(..total);
                self.reusable = !head.close;
                return Ok(head.status);
            }
            if self.buf.len() > MAX_ANSWER {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "endless head"));
            }
            self.fill().await?;
        }
    }

    async fn send(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        loop {
            self.stream.readable().await?;
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// What the load generator needs from a response head.
struct Head {
    status: u16,
    body_len: usize,
    close: bool,
}

impl Head {
    fn parse(head: &[u8]) -> io::Result<Self> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let text = std::str::from_utf8(head).map_err(|_| bad("head is not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let mut parsed = Self {
            status,
            body_len: 0,
            close: false,
        };
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                parsed.body_len = value.parse().map_err(|_| bad("bad content-length"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("chunked answers are not supported"));
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                parsed.close = true;
            }
        }
        if parsed.body_len > MAX_ANSWER {
            return Err(bad("body too large"));
        }
        Ok(parsed)
    }
}

/// One request on the connection in `slot`, opening one if it is empty. A reused connection
/// the server closed while it sat idle (keep-alive ran out) is replaced once, as HTTP
/// clients do; a connection that failed or will be closed is not put back.
async fn exchange_on(slot: &mut Option<Conn>, port: u16, request: &[u8]) -> Result<u16, String> {
    let open = || async {
        Conn::open(port)
            .await
            .map_err(|e| format!("connect: {:?}", e.kind()))
    };
    let reused = slot.take();
    let was_reused = reused.is_some();
    let mut conn = match reused {
        Some(conn) => conn,
        None => open().await?,
    };
    let mut answer = tokio::time::timeout(REQUEST_TIMEOUT, conn.exchange(request)).await;
    let stale = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
        )
    };
    if was_reused && conn.buf.is_empty() && matches!(&answer, Ok(Err(e)) if stale(e)) {
        conn = open().await?;
        answer = tokio::time::timeout(REQUEST_TIMEOUT, conn.exchange(request)).await;
    }
    match answer {
        Ok(Ok(status)) => {
            if conn.reusable {
                *slot = Some(conn);
            }
            Ok(status)
        }
        Ok(Err(e)) => Err(format!("io: {:?}", e.kind())),
        Err(_) => Err(format!("no answer in {} s", REQUEST_TIMEOUT.as_secs())),
    }
}

/// What a load run saw.
#[derive(Default)]
struct Tally {
    started: Option<Instant>,
    /// Every answered request's latency, whatever its status.
    latencies: Vec<Duration>,
    ok: usize,
    /// When each 200 came, in order.
    ok_times: Vec<Instant>,
    /// Non-200 statuses and transport failures, by kind.
    errors: BTreeMap<String, usize>,
    last_answer: Option<Instant>,
}

impl Tally {
    fn record(&mut self, since: Instant, answer: Result<u16, String>) {
        let now = Instant::now();
        match answer {
            Ok(status) => {
                self.latencies.push(now.saturating_duration_since(since));
                self.last_answer = Some(now);
                if status == 200 {
                    self.ok += 1;
                    self.ok_times.push(now);
                } else {
                    *self.errors.entry(format!("HTTP {status}")).or_default() += 1;
                }
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }
}

/// `CONNECTIONS` connections, connection i to `ports[i % ports.len()]`, each sending its next
/// request as soon as the last is answered, until every request is sent or `budget` has
/// passed.
async fn closed_loop(ports: &[u16], requests: Rc<Vec<Vec<u8>>>, budget: Duration) -> Tally {
    let started = Instant::now();
    let stop_at = started + budget;
    let next = Rc::new(Cell::new(0usize));
    let tally = Rc::new(RefCell::new(Tally {
        started: Some(started),
        latencies: Vec::with_capacity(requests.len()),
        ..Tally::default()
    }));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let port = ports[c % ports.len()];
            let (requests, next, tally) =
                (Rc::clone(&requests), Rc::clone(&next), Rc::clone(&tally));
            actix_web::rt::spawn(async move {
                let mut slot = None;
                loop {
                    let i = next.get();
                    let Some(request) = requests.get(i) else {
                        break;
                    };
                    if Instant::now() >= stop_at {
                        break;
                    }
                    next.set(i + 1);
                    let sent = Instant::now();
                    let answer = exchange_on(&mut slot, port, request).await;
                    tally.borrow_mut().record(sent, answer);
                }
            })
        })
        .collect();
    for worker in workers {
        if worker.await.is_err() {
            eprintln!("[bench] a load task panicked; its requests are missing");
        }
    }
    tally.take()
}

/// Requests sent at `rate` per second on schedule, whether or not earlier ones are answered:
/// a thread paces them (sleeping is finer than the runtime's 1 ms timer), each runs on its
/// own, and latency counts from its scheduled time.
async fn open_loop(port: u16, requests: Rc<Vec<Vec<u8>>>, rate: u32) -> Tally {
    let idle = Rc::new(RefCell::new(VecDeque::new()));
    for _ in 0..CONNECTIONS {
        if let Ok(conn) = Conn::open(port).await {
            idle.borrow_mut().push_back(conn);
        }
    }
    let start = Instant::now() + Duration::from_millis(100);
    let tally = Rc::new(RefCell::new(Tally {
        started: Some(start),
        latencies: Vec::with_capacity(requests.len()),
        ..Tally::default()
    }));
    let permits = Rc::new(Semaphore::new(OPEN_LOOP_MAX_CONNECTIONS));
    let (schedule, mut due) = tokio::sync::mpsc::unbounded_channel();
    let count = requests.len();
    let pacer = std::thread::spawn(move || {
        for i in 0..count {
            let at = scheduled_at(start, i, rate);
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if schedule.send((i, at)).is_err() {
                break;
            }
        }
    });
    let mut tasks = Vec::with_capacity(count);
    while let Some((i, at)) = due.recv().await {
        let (requests, idle, permits, tally) = (
            Rc::clone(&requests),
            Rc::clone(&idle),
            Rc::clone(&permits),
            Rc::clone(&tally),
        );
        tasks.push(actix_web::rt::spawn(async move {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            // Oldest idle connection first, so none idles long enough to be closed.
            let mut slot = idle.borrow_mut().pop_front();
            let answer = exchange_on(&mut slot, port, &requests[i]).await;
            tally.borrow_mut().record(at, answer);
            if let Some(conn) = slot {
                idle.borrow_mut().push_back(conn);
            }
        }));
    }
    for task in tasks {
        if task.await.is_err() {
            eprintln!("[bench] a load task panicked; its request is missing");
        }
    }
    if pacer.join().is_err() {
        eprintln!("[bench] the open-loop pacer panicked");
    }
    tally.take()
}

/// When a schedule that starts at `start` sends its request `i` at `rate` per second.
fn scheduled_at(start: Instant, i: usize, rate: u32) -> Instant {
    start + Duration::from_nanos(i as u64 * 1_000_000_000 / u64::from(rate))
}

/// A finished load run, latencies sorted.
struct LoadRun {
    latencies: Vec<Duration>,
    ok: usize,
    /// When each 200 came, in order.
    ok_times: Vec<Instant>,
    errors: BTreeMap<String, usize>,
    /// When the load began (an open loop: its schedule's start).
    started: Option<Instant>,
    elapsed: Duration,
    last_answer: Option<Instant>,
    server_cpu: Option<f64>,
    load_cpu: Option<f64>,
    /// The PostgreSQL server's processes on this machine, % of one core; `None` when none
    /// runs here.
    database_cpu: Option<f64>,
}

impl LoadRun {
    fn new(mut tally: Tally, server_cpu: Option<f64>, load_cpu: Option<f64>) -> Self {
        tally.latencies.sort_unstable();
        let elapsed = match (tally.started, tally.last_answer) {
            (Some(start), Some(end)) => end.saturating_duration_since(start),
            _ => Duration::ZERO,
        };
        Self {
            latencies: tally.latencies,
            ok: tally.ok,
            ok_times: tally.ok_times,
            errors: tally.errors,
            started: tally.started,
            elapsed,
            last_answer: tally.last_answer,
            server_cpu,
            load_cpu,
            database_cpu: None,
        }
    }

    fn answered(&self) -> usize {
        self.latencies.len()
    }

    fn error_count(&self) -> usize {
        self.errors.values().sum()
    }

    /// 200 answers per second.
    fn throughput(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, q: f64) -> Duration {
        percentile(&self.latencies, q)
    }

    fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "0".into();
        }
        let kinds: Vec<String> = self
            .errors
            .iter()
            .map(|(kind, n)| format!("{kind} ×{n}"))
            .collect();
        format!("{} ({})", self.error_count(), kinds.join(", "))
    }

    fn cpu_text(&self) -> String {
        let pct = |x: Option<f64>| x.map_or("?".into(), |x| format!("{x:.0}%"));
        format!("{} / {}", pct(self.server_cpu), pct(self.load_cpu))
    }
}

/// Nearest-rank percentile of `sorted`; `q` = 1.0 is the maximum.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let n = sorted.len();
    if n == 0 {
        return Duration::ZERO;
    }
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

// ---- provider stand-in ------------------------------------------------------------------------

/// One text the server sent to the stand-in.
struct Arrival {
    at: Instant,
    to: String,
    text: String,
}

#[derive(Default)]
struct Arrivals {
    list: Mutex<Vec<Arrival>>,
    ids: AtomicU64,
}

/// Telnyx's `POST /v2/messages`, answered at once; in this process, on its own thread.
struct StandIn {
    port: u16,
    arrivals: Arc<Arrivals>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl StandIn {
    fn start() -> Res<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let arrivals = Arc::new(Arrivals::default());
        let shared = web::Data::from(Arc::clone(&arrivals));
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(shared.clone())
                        .route("/v2/messages", web::post().to(provider_send))
                })
                .workers(1)
                // Ctrl-C must stop the bench, not this server.
                .disable_signals()
                .listen(listener)?
                .run();
                let _ = handle_tx.send(server.handle());
                server.await
            })
        });
        let handle = handle_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the provider stand-in did not start")?;
        Ok(Self {
            port,
            arrivals,
            handle,
            thread: Some(thread),
        })
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arrival>> {
        self.arrivals
            .list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything that arrived so far, leaving the record empty.
    fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.list())
    }

    /// Waits until `count` texts are in (then `settle` more for late duplicates), or no new
    /// one came for `quiet`, or `deadline`.
    fn wait_for(&self, count: usize, quiet: Duration, settle: Duration, deadline: Instant) {
        let mut seen = self.list().len();
        let mut last_change = Instant::now();
        loop {
            let now = Instant::now();
            let n = self.list().len();
            if n >= count {
                std::thread::sleep(settle.min(deadline.saturating_duration_since(now)));
                return;
            }
            if n != seen {
                seen = n;
                last_change = now;
            }
            if now >= deadline || now - last_change >= quiet {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// When the first text arrived, waiting up to `wait` for one.
    fn first_arrival(&self, wait: Duration) -> Option<Instant> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(first) = self.list().iter().map(|a| a.at).min() {
                return Some(first);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(mut self, system: &SystemRunner) {
        system.block_on(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            if !matches!(thread.join(), Ok(Ok(()))) {
                eprintln!("[bench] the provider stand-in did not stop cleanly");
            }
        }
    }
}

#[derive(Deserialize, Default)]
struct SendBody {
    #[serde(default)]
    to: String,
    #[serde(default)]
    text: String,
}

async fn provider_send(body: web::Bytes, arrivals: web::Data<Arrivals>) -> HttpResponse {
    let at = Instant::now();
    // An unreadable body still counts as a text; it shows up as one to an unknown number.
    let sent: SendBody = serde_json::from_slice(&body).unwrap_or_default();
    let n = arrivals.ids.fetch_add(1, Ordering::Relaxed);
    let answer = json!({"data": {"id": format!("40017f3c-0000-4000-8000-{n:012x}"),
        "to": [{"phone_number": sent.to, "status": "queued"}]}});
    arrivals
        .list
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Arrival {
            at,
            to: sent.to,
            text: sent.text,
        });
    HttpResponse::Ok().json(answer)
}

/// Whether each expected recipient got exactly one text.
struct Delivery {
    duplicates: usize,
    missing: usize,
    unexpected: usize,
    count: usize,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Delivery {
    fn of(arrivals: &[Arrival], expected: &[String]) -> Self {
        let mut per_recipient: HashMap<&str, usize> = HashMap::new();
        for arrival in arrivals {
            *per_recipient.entry(arrival.to.as_str()).or_default() += 1;
        }
        let wanted: HashSet<&str> = expected.iter().map(String::as_str).collect();
        let distinct_texts: HashSet<(&str, &str)> = arrivals
            .iter()
            .map(|a| (a.to.as_str(), a.text.as_str()))
            .collect();
        let repeats_per_recipient: usize = per_recipient
            .iter()
            .filter(|(to, _)| wanted.contains(*to))
            .map(|(_, n)| n - 1)
            .sum();
        Self {
            // A text sent twice, or a second text to one recipient: either is a duplicate.
            duplicates: repeats_per_recipient.max(arrivals.len() - distinct_texts.len()),
            missing: wanted
                .iter()
                .filter(|to| !per_recipient.contains_key(*to))
                .count(),
            unexpected: arrivals
                .iter()
                .filter(|a| !wanted.contains(a.to.as_str()))
                .count(),
            count: arrivals.len(),
            first: arrivals.iter().map(|a| a.at).min(),
            last: arrivals.iter().map(|a| a.at).max(),
        }
    }

    /// (texts - 1) / (last arrival - first arrival).
    fn rate(&self) -> Option<f64> {
        let span = self.last?.checked_duration_since(self.first?)?;
        if self.count < 2 || span.is_zero() {
            return None;
        }
        Some((self.count - 1) as f64 / span.as_secs_f64())
    }
}

// ---- sustained pipeline -----------------------------------------------------------------------

/// One run of section 7: an open loop from distinct numbers, its replies matched to its
/// webhooks by number.
struct Sustained {
    rate: u32,
    offered: usize,
    run: LoadRun,
    delivery: Delivery,
    /// From each webhook's scheduled send time to its number's first reply, sorted.
    to_reply: Vec<Duration>,
    /// Every `BACKLOG_SAMPLE` from the schedule's start to its end: webhooks answered 200
    /// less replies arrived.
    backlog: Vec<i64>,
    /// The same samples of the webhooks due by then that were not yet answered 200.
    unanswered: Vec<i64>,
    backlog_at_end: i64,
    last_reply: Option<Instant>,
    /// The last webhook's scheduled send time.
    end: Instant,
    bench_cpu: Option<f64>,
    rss: Option<u64>,
}

impl Sustained {
    fn of(
        rate: u32,
        run: LoadRun,
        arrivals: &[Arrival],
        numbers: &[String],
        bench_cpu: Option<f64>,
        rss: Option<u64>,
    ) -> Self {
        let start = run.started.unwrap_or_else(Instant::now);
        let offered = numbers.len();
        let end = scheduled_at(start, offered.saturating_sub(1), rate);
        let mut first: HashMap<&str, Instant> = HashMap::new();
        for arrival in arrivals {
            let at = first.entry(arrival.to.as_str()).or_insert(arrival.at);
            *at = (*at).min(arrival.at);
        }
        let mut to_reply = Vec::with_capacity(offered);
        let mut replied = Vec::with_capacity(offered);
        for (i, to) in numbers.iter().enumerate() {
            if let Some(&at) = first.get(to.as_str()) {
                to_reply.push(at.saturating_duration_since(scheduled_at(start, i, rate)));
                replied.push(at);
            }
        }
        to_reply.sort_unstable();
        replied.sort_unstable();
        let by = |times: &[Instant], t: Instant| times.partition_point(|x| *x <= t) as i64;
        let due_by = |t: Instant| {
            let since = t.saturating_duration_since(start).as_nanos();
            let due = since * u128::from(rate) / 1_000_000_000 + 1;
            due.min(offered as u128) as i64
        };
        let samples: Vec<Instant> = (0u32..)
            .map(|k| start + BACKLOG_SAMPLE * k)
            .take_while(|t| *t <= end)
            .collect();
        let backlog_at = |t: Instant| by(&run.ok_times, t) - by(&replied, t);
        Self {
            rate,
            offered,
            delivery: Delivery::of(arrivals, numbers),
            to_reply,
            backlog: samples.iter().map(|t| backlog_at(*t)).collect(),
            unanswered: samples
                .iter()
                .map(|t| due_by(*t) - by(&run.ok_times, *t))
                .collect(),
            backlog_at_end: backlog_at(end),
            last_reply: replied.last().copied(),
            end,
            run,
            bench_cpu,
            rss,
        }
    }

    /// Whether `samples` grew: their mean over the last third is above the first third's by
    /// more than `BACKLOG_MARGIN` of this rate's webhooks.
    fn grows(&self, samples: &[i64]) -> bool {
        let (early, late) = thirds(samples);
        late - early > f64::from(self.rate) * BACKLOG_MARGIN.as_secs_f64()
    }

    /// Why the rate was not held; none when it was.
    fn shortfalls(&self) -> Vec<String> {
        let mut shortfalls = Vec::new();
        if self.run.ok < self.offered {
            shortfalls.push(format!("{} not answered 200", self.offered - self.run.ok));
        }
        let d = &self.delivery;
        for (n, what) in [
            (d.missing, "replies missing"),
            (d.duplicates, "duplicate replies"),
            (d.unexpected, "replies to unknown numbers"),
        ] {
            if n > 0 {
                shortfalls.push(format!("{n} {what}"));
            }
        }
        if self.grows(&self.backlog) {
            shortfalls.push("backlog grew".into());
        }
        if self.grows(&self.unanswered) {
            shortfalls.push("answers fell behind".into());
        }
        match self.last_reply {
            Some(last) if last > self.end + REPLY_GRACE => shortfalls.push(format!(
                "last reply {:.1} s after the last webhook",
                (last - self.end).as_secs_f64()
            )),
            None => shortfalls.push("no reply".into()),
            _ => {}
        }
        shortfalls
    }

    fn held(&self) -> bool {
        self.shortfalls().is_empty()
    }
}

/// The mean of the first third of `samples` and that of the last third.
fn thirds(samples: &[i64]) -> (f64, f64) {
    let third = (samples.len() / 3).max(1);
    let mean = |s: &[i64]| s.iter().sum::<i64>() as f64 / s.len().max(1) as f64;
    let late = &samples[samples.len().saturating_sub(third)..];
    (mean(&samples[..third.min(samples.len())]), mean(late))
}

/// The next rate section 7 probes after `held` was held and `failed` (if any) was not:
/// double until one fails, then halve the gap, in steps of `SUSTAINED_STEP`; `None` once the
/// gap is one step.
fn next_probe(held: u32, failed: Option<u32>) -> Option<u32> {
    match failed {
        None => Some((held * 2).max(SUSTAINED_STEP)),
        Some(failed) => {
            let mid = (held + failed) / 2 / SUSTAINED_STEP * SUSTAINED_STEP;
            (mid > held).then_some(mid)
        }
    }
}

// ---- baselines (this binary re-executed) ------------------------------------------------------

fn listen_port(arg: Option<&String>) -> Res<u16> {
    arg.ok_or("missing port")?
        .parse()
        .map_err(|e| format!("bad port: {e}").into())
}

/// Two workers (actix's default on two cores) answering every webhook at once.
fn serve_bare(args: &[String]) -> Res<()> {
    let port = listen_port(args.first())?;
    System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
                .route("/healthz", web::get().to(healthz))
                .route(WEBHOOK_PATH, web::post().to(bare_webhook))
        })
        .workers(2)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })?;
    Ok(())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

async fn bare_webhook(_body: web::Bytes) -> HttpResponse {
    received()
}

fn received() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"message":"Received"}"#)
}

struct Naive {
    pool: r2d2::Pool<SqliteConnectionManager>,
    key: VerifyingKey,
    public_url: String,
}

const NAIVE_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY,
        direction TEXT NOT NULL,
        phone TEXT NOT NULL,
        body TEXT NOT NULL,
        provider_message_id TEXT,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS messages_provider_id
        ON messages (direction, provider_message_id) WHERE provider_message_id IS NOT NULL;
    CREATE TABLE IF NOT EXISTS moments (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id),
        title TEXT NOT NULL,
        price_micro_usdc INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );";

/// What a straightforward handler would do: check the signature, parse, and write the
/// inbound message, its Moment and the queued reply in one transaction per request.
fn serve_naive(args: &[String]) -> Res<()> {
    let port = listen_port(args.first())?;
    let db = args.get(1).ok_or("missing database path")?;
    let manager = SqliteConnectionManager::file(db).with_init(|conn| {
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")
    });
    let pool = r2d2::Pool::builder().max_size(8).build(manager)?;
    pool.get()?
        .execute_batch(&format!("PRAGMA journal_mode = WAL; {NAIVE_SCHEMA}"))?;
    let naive = web::Data::new(Naive {
        pool,
        key: signing_key().verifying_key(),
        public_url: format!("http://127.0.0.1:{port}"),
    });
    System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(naive.clone())
                .route("/healthz", web::get().to(healthz))
                .route(WEBHOOK_PATH, web::post().to(naive_webhook))
        })
        .workers(2)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })?;
    Ok(())
}

#[derive(Deserialize)]
struct NaiveEnvelope {
    data: NaiveEvent,
}

#[derive(Deserialize)]
struct NaiveEvent {
    payload: NaivePayload,
}

#[derive(Deserialize)]
struct NaivePayload {
    id: String,
    from: NaiveEndpoint,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct NaiveEndpoint {
    phone_number: String,
}

async fn naive_webhook(
    req: HttpRequest,
    body: web::Bytes,
    naive: web::Data<Naive>,
) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let signed = naive_verify(
        &naive.key,
        header("telnyx-timestamp"),
        header("telnyx-signature-ed25519"),
        &body,
    );
    if !signed {
        return HttpResponse::Unauthorized().finish();
    }
    let Ok(envelope) = serde_json::from_slice::<NaiveEnvelope>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let app = naive.clone();
    match web::block(move || naive_record(&app, &envelope.data.payload)).await {
        Ok(Ok(())) => received(),
        _ => HttpResponse::InternalServerError().finish(),
    }
}

fn naive_verify(
    key: &VerifyingKey,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> bool {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return false;
    };
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| Utc::now().timestamp().abs_diff(t) <= 300);
    let Some(signature) = BASE64
        .decode(signature)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
    else {
        return false;
    };
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    fresh
        && key
            .verify_strict(&signed, &Signature::from_bytes(&signature))
            .is_ok()
}

fn naive_record(naive: &Naive, payload: &NaivePayload) -> Res<()> {
    let mut conn = naive.pool.get()?;
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let added = tx.execute(
        "INSERT OR IGNORE INTO messages (direction, phone, body, provider_message_id, state,
             created_at)
         VALUES ('inbound', ?1, ?2, ?3, 'received', ?4)",
        params![payload.from.phone_number, payload.text, payload.id, now],
    )?;
    if added == 1 {
        let message_id = tx.last_insert_rowid();
        let title = payload.text.lines().next().unwrap_or_default();
        tx.execute(
            "INSERT INTO moments (message_id, title, price_micro_usdc, created_at)
             VALUES (?1, ?2, 2000000, ?3)",
            params![message_id, title, now],
        )?;
        let moment_id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO messages (direction, phone, body, state, created_at)
             VALUES ('outbound', ?1, ?2, 'unconfirmed', ?3)",
            params![
                payload.from.phone_number,
                format!("Moment posted: {}/moments/{moment_id}", naive.public_url),
                now
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

// ---- report -----------------------------------------------------------------------------------

struct Report {
    text: String,
    phases: Vec<(&'static str, Duration)>,
    started: Instant,
}

impl Report {
    fn new(plan: &Plan) -> Self {
        let mut report = Self {
            text: String::new(),
            phases: Vec::new(),
            started: Instant::now(),
        };
        report.line("# momentline benchmark");
        report.line("");
        report.line(&machine());
        report.line(&format!(
            "command: `{}` ({} run)",
            plan.command(),
            if plan.quick { "quick" } else { "full" }
        ));
        report.line("");
        report
    }

    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn title(&mut self, title: &str) {
        self.line(&format!("## {title}"));
        self.line("");
    }

    fn row(&mut self, cells: &[String]) {
        self.line(&format!("| {} |", cells.join(" | ")));
    }

    fn header(&mut self, cells: &[&str]) {
        self.line(&format!("| {} |", cells.join(" | ")));
        self.line(&format!("|{}", "---|".repeat(cells.len())));
    }

    fn checks(&mut self) {
        self.line("");
        self.header(&["check", "measured", "target", "result"]);
    }

    fn check(&mut self, what: &str, measured: String, target: &str, met: Option<bool>) {
        let result = match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "n/a",
        };
        self.row(&[what.into(), measured, target.into(), result.into()]);
    }

    fn finish(&mut self) {
        self.title("Phase times");
        self.header(&["phase", "took"]);
        let phases = std::mem::take(&mut self.phases);
        for (name, took) in &phases {
            self.row(&[(*name).into(), format!("{:.1} s", took.as_secs_f64())]);
        }
        let total = self.started.elapsed();
        self.row(&["whole run".into(), format!("{:.1} s", total.as_secs_f64())]);
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or("unknown memory".into(), |kib| {
            format!("{:.1} GiB RAM", kib as f64 / 1024.0 / 1024.0)
        });
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    format!("machine: {cores} CPUs (nproc), {cpu}, {memory}; load average at start: {load}")
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `a` after `b` in milliseconds, negative when it came before.
fn signed_ms(a: Instant, b: Instant) -> String {
    match a.checked_duration_since(b) {
        Some(d) => ms(d),
        None => format!("-{}", ms(b - a)),
    }
}

fn per_sec(x: f64) -> String {
    format!("{x:.0}/s")
}

fn texts_per_sec(rate: Option<f64>) -> String {
    rate.map_or("n/a".into(), |x| format!("{x:.0} texts/s"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / 1024.0 / 1024.0 / 1024.0)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}
