//! PostgreSQL failing under momentline: two instances on one database, a steady stream of
//! signed webhooks and the replies they send, while the database is cut off, black-holed,
//! slowed or restarted.
//!
//! Between the instances and the server sits `ChaosProxy`, a TCP proxy of the tests' own
//! (as crates.io's test suite has one): it passes bytes through until told to cut every
//! connection (refusing new ones meanwhile), to hold every byte (a network that drops
//! packets, healed before TCP gives up: nothing is lost, all of it arrives late), or to delay
//! each byte from the server. The restart is the server's own (`scripts/postgres restart`),
//! on a server of the test's own.
//!
//! Each case asserts: every webhook answered `200` is exactly one message and its Moment;
//! nothing else was answered but `503`/`500` with `Retry-After`; every reply reaches the
//! provider exactly once (no job run twice by the two instances); `/healthz` is `503` during
//! the fault and `200` within seconds of its end, without a restart; and each instance says
//! the database failed a few times, not once a request.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::*;
use crate::instances::postgres_server_for;
use crate::process::{deliver_answer, numbers, signed_events, Site};

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Every connection closed, new ones closed as soon as accepted.
    Cut,
    /// Every byte held until the fault ends.
    Blackhole,
    /// Every chunk from the server delayed this long.
    Latency(Duration),
}

/// A TCP proxy to `upstream`, on a thread and runtime of its own (the tests block theirs).
struct ChaosProxy {
    address: SocketAddr,
    fault: watch::Sender<(Fault, u64)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ChaosProxy {
    fn start(upstream: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("the proxy listens");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("its address");
        // The fault, and how many cuts there have been (a cut closes what was open then).
        let (fault, watching) = watch::channel((Fault::None, 0_u64));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the proxy's runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a tokio listener");
                let accepting = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(relay(client, upstream, watching.clone()));
                    }
                };
                tokio::select! {
                    _ = accepting => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            address,
            fault,
            stop: Some(stop),
        }
    }

    fn set(&self, fault: Fault) {
        self.fault.send_modify(|(now, cuts)| {
            if fault == Fault::Cut {
                *cuts += 1;
            }
            *now = fault;
        });
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One connection through the proxy, both ways, until either side closes or a cut.
async fn relay(client: TcpStream, upstream: SocketAddr, watching: watch::Receiver<(Fault, u64)>) {
    if watching.borrow().0 == Fault::Cut {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let cuts = watching.borrow().1;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, watching.clone(), cuts, false);
    let down = pump(server_read, client_write, watching, cuts, true);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies `from` to `to` as `watching` says, until either closes or a cut after `cuts`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut watching: watch::Receiver<(Fault, u64)>,
    cuts: u64,
    from_server: bool,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = watching.wait_for(|(_, now)| *now != cuts) => return,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Held while black-holed; dropped with the connection on a cut.
        let state = *watching
            .wait_for(|(fault, now)| *fault != Fault::Blackhole || *now != cuts)
            .await
            .expect("the proxy is there");
        if state.1 != cuts {
            return;
        }
        if let (Fault::Latency(delay), true) = (state.0, from_server) {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// A PostgreSQL server of the test's own, stopped when dropped.
struct OwnServer(String);

impl OwnServer {
    fn start() -> Self {
        let out = Command::new("scripts/postgres")
            .arg("start")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("scripts/postgres runs");
        assert!(
            out.status.success(),
            "a server of the test's own: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server and starts it again `down` later, from another thread.
    fn restart_after(&self, down: Duration) -> std::thread::JoinHandle<()> {
        let url = self.0.clone();
        std::thread::spawn(move || {
            let out = Command::new("scripts/postgres")
                .args(["restart", &url, &down.as_secs().to_string()])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .expect("scripts/postgres runs");
            assert!(
                out.status.success(),
                "restart: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new("scripts/postgres")
            .args(["stop", &self.0])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
    }
}

/// `url` with its host and port replaced by `address`.
fn through(url: &str, address: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, rest) = rest.split_once('@').expect("a URL with a user");
    let (_, path) = rest.split_once('/').expect("a URL with a database");
    format!("{scheme}://{user}@{address}/{path}")
}

/// Where `url`'s server listens.
fn server_address(url: &str) -> SocketAddr {
    let (_, rest) = url.split_once('@').expect("a URL with a user");
    let authority = rest.split('/').next().expect("an authority");
    authority.parse().expect("host:port")
}

/// One webhook's answers, in order: status and whether it had `Retry-After`.
type Answers = Vec<(u16, bool)>;

/// Runs one case: two instances through the proxy (or on `own`, restarted), webhooks at a
/// steady rate from 2 s before `fault` for `lasting` until 6 s after, each redelivered until
/// taken.
async fn case(name: &str, fault: Option<Fault>, own: Option<&OwnServer>, lasting: Duration) {
    // A slow database is not a down one: reads that still answer within /healthz's 2 s
    // keep it 200 (the writers hold a few of the pool's connections, not all of them).
    let down = !matches!(fault, Some(Fault::Latency(_)));
    let database = match own {
        Some(server) => PgDatabase::create_on(&server.0),
        None => PgDatabase::create(),
    };
    let proxy = ChaosProxy::start(server_address(&database.url));
    let url = match own {
        Some(_) => database.url.clone(),
        None => through(&database.url, proxy.address),
    };
    let site = Site::on(Some(url)).await;
    telnyx_accepts_texts(&site.provider_api).await;
    let count = usize::try_from((lasting.as_secs() + 8) * 20).expect("count");
    // At most 20 texts a number: more would meet the cap of 30 automatic replies an hour.
    let phones = numbers(count.div_ceil(18));
    site.verify_numbers(&phones);
    let env = [
        ("MOMENTLINE_JOB_LEASE_SECS", "3"),
        ("MOMENTLINE_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1,1,1"),
    ];
    let first = site.serve(&env).await;
    let second = site.serve(&env).await;
    let addresses = [first.address.clone(), second.address.clone()];

    // The health of the first instance, every 100 ms, with when it was asked.
    let started = Instant::now();
    let health = Arc::new(Mutex::new(Vec::<(Duration, u16)>::new()));
    let polling = {
        let (health, address) = (Arc::clone(&health), addresses[0].clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let asked = started.elapsed();
                let status = http
                    .get(format!("{address}/healthz"))
                    .timeout(Duration::from_secs(4))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                health.lock().expect("health").push((asked, status));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // 20 webhooks a second, alternating instances; each redelivered (to the other) until 200.
    let events = signed_events(name, &phones, count);
    let answers: Arc<Mutex<Vec<Answers>>> = Arc::new(Mutex::new(vec![Vec::new(); events.len()]));
    let taken = Arc::new(AtomicUsize::new(0));
    let mut deliveries = tokio::task::JoinSet::new();
    let stream = tokio::spawn({
        let (answers, taken, addresses) =
            (Arc::clone(&answers), Arc::clone(&taken), addresses.clone());
        async move {
            let http = reqwest::Client::new();
            for (i, (_, body)) in events.into_iter().enumerate() {
                let (http, answers, taken, addresses) = (
                    http.clone(),
                    Arc::clone(&answers),
                    Arc::clone(&taken),
                    addresses.clone(),
                );
                deliveries.spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(90);
                    for attempt in 0.. {
                        let answer =
                            deliver_answer(&http, &addresses[(i + attempt) % 2], &body).await;
                        answers.lock().expect("answers")[i].push(answer);
                        if answer.0 == 200 {
                            taken.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        assert!(Instant::now() < deadline, "webhook {i} was never taken");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            while let Some(delivery) = deliveries.join_next().await {
                delivery.expect("a delivery");
            }
        }
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    let fault_began = started.elapsed();
    let restarting = match (fault, own) {
        (Some(fault), _) => {
            proxy.set(fault);
            tokio::time::sleep(lasting).await;
            proxy.set(Fault::None);
            None
        }
        (None, Some(server)) => Some(server.restart_after(lasting)),
        (None, None) => unreachable!("a fault or a server to restart"),
    };
    if let Some(restart) = restarting {
        tokio::task::spawn_blocking(move || restart.join().expect("restarted"))
            .await
            .expect("restart");
    }
    let fault_ended = started.elapsed();
    stream.await.expect("the stream");
    let watched = fault_ended + Duration::from_secs(7);
    if let Some(left) = watched.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    polling.abort();

    // Health: 503 at some point during the fault, 200 within 5 s of its end and after.
    let health = health.lock().expect("health").clone();
    let during: Vec<u16> = health
        .iter()
        .filter(|(at, _)| *at > fault_began + Duration::from_millis(500) && *at < fault_ended)
        .map(|(_, s)| *s)
        .collect();
    assert!(
        !down || during.contains(&503),
        "{name}: /healthz never said the database was down during the fault: {during:?}"
    );
    let after: Vec<(Duration, u16)> = health
        .iter()
        .filter(|(at, _)| *at > fault_ended + Duration::from_secs(5))
        .copied()
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|(_, s)| *s == 200),
        "{name}: /healthz was not 200 from 5 s after the fault: {after:?}"
    );

    // Every answer was 200, or 503/500 with Retry-After; some were not 200.
    let answers = answers.lock().expect("answers").clone();
    let refused: Vec<(u16, bool)> = answers
        .iter()
        .flatten()
        .filter(|(status, _)| *status != 200)
        .copied()
        .collect();
    assert!(
        refused
            .iter()
            .all(|(status, retry)| matches!(status, 500 | 503) && *retry),
        "{name}: answers other than 200 and 503/500 with Retry-After: {refused:?}"
    );
    assert!(
        !refused.is_empty(),
        "{name}: no webhook was refused during the fault: it proved nothing"
    );

    // Exactly one message and one Moment for each of the 200 webhooks, every reply sent once.
    let n = i64::try_from(answers.len()).expect("count");
    assert_eq!(taken.load(Ordering::SeqCst), answers.len());
    site.until_count(
        "SELECT count(*) FROM messages WHERE purpose = 'moment_posted' AND state = 'sent'",
        n,
        Duration::from_secs(60),
    )
    .await;
    site.until_count("SELECT count(*) FROM jobs", 0, Duration::from_secs(20))
        .await;
    assert_eq!(
        site.count("SELECT count(*) FROM messages WHERE direction = 'inbound'"),
        n
    );
    assert_eq!(site.count("SELECT count(*) FROM moments"), n);
    let mut texts = telnyx_texts(&site.provider_api).await;
    let all = texts.len();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), answers.len(), "{name}: every reply sent");
    assert_eq!(all, texts.len(), "{name}: no reply sent twice");

    // Said a few times by each instance, not once a request. A job whose claim ran out
    // (its lease is 3 s here) before its outcome could be recorded is said for that job: it
    // is what may send a text twice, and the test above counts those.
    let attempts: usize = answers.iter().map(Vec::len).sum();
    for served in [&first, &second] {
        let lines = served.lines.lock().expect("lines").clone();
        let said: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .filter(|l| !l.contains("a job's claim ran out before it finished"))
            .collect();
        assert!(
            said.len() <= 4,
            "{name}: {} warnings for {} deliveries: {said:#?}",
            said.len(),
            attempts
        );
    }
    eprintln!(
        "chaos {name}: {} webhooks, {} deliveries, {} refused; health during the fault {:?}",
        answers.len(),
        attempts,
        refused.len(),
        during
    );
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_to_postgresql_cut_loses_nothing_and_recovers() {
    if !postgres_server_for("chaos_cut") {
        return;
    }
    case("cut", Some(Fault::Cut), None, Duration::from_secs(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_black_holed_for_10_s_loses_nothing_and_recovers() {
    if !postgres_server_for("chaos_blackhole") {
        return;
    }
    case(
        "blackhole",
        Some(Fault::Blackhole),
        None,
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_500_ms_slower_loses_nothing_and_recovers() {
    if !postgres_server_for("chaos_latency") {
        return;
    }
    case(
        "latency",
        Some(Fault::Latency(Duration::from_millis(500))),
        None,
        Duration::from_secs(8),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_loses_nothing_and_recovers() {
    if !postgres_server_for("chaos_restart") {
        return;
    }
    let server = OwnServer::start();
    case("restart", None, Some(&server), Duration::from_secs(4)).await;
}
