//! Starts the real server on port 0 with a fresh database, and a local server standing in for
//! the SMS provider's API (Telnyx unless a test picks another).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::Utc;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use tempfile::TempDir;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use momentline::config::Settings;
use momentline::db::sql::Params;
use momentline::db::{self, Conn, DbError};
/// For the tests' own SQL: parameters, and the engine to choose SQL by.
pub use momentline::db::{params, Engine};
use momentline::domain::api_key::ApiKey;
use momentline::domain::JobKind;
use momentline::jobs::{Round, Runner};
use momentline::startup::Application;
use momentline::store::{Reads, Store};
/// The HTTP methods, for requests the helpers below do not make.
pub use reqwest::Method;

/// RFC 8032 §7.1 TEST 1: the key behind PROVIDERS.md's Telnyx test vector.
const TELNYX_SECRET: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
pub const TELNYX_PUBLIC_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
pub const TELNYX_API_KEY: &str = "KEY0123456789TEST";
pub const TWILIO_ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
pub const VONAGE_API_KEY: &str = "a1b2c3d4";
pub const VONAGE_API_SECRET: &str = "VonageSecret1";
pub const VONAGE_SIGNATURE_SECRET: &str = "my_secret_key_for_testing";
pub const TEXTFLOW_API_KEY: &str = "tf-key-0123";
pub const PHONIFY_API_KEY: &str = "ph-key-0123";
pub const PHONIFY_APP: &str = "momentline-test";
pub const OUR_NUMBER: &str = "+18445550001";
/// A second number of ours that artists may text.
pub const OTHER_NUMBER: &str = "+18445550002";
pub const PUBLIC_URL: &str = "https://moments.example";
pub const ARTIST: &str = "Sweetman";
/// A valid US mobile-style number.
pub const PHONE: &str = "+14155552671";

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    /// Stands in for every provider's API.
    pub provider_api: MockServer,
    /// Stands in for the host platform, when Moments are dispatched to one.
    pub host: Option<MockServer>,
    pub runner: Runner,
    pub store: Store,
    pub media_dir: std::path::PathBuf,
    /// The app's own read connections, on either engine: tests set scenes and look at rows
    /// through them (`with_db`, `count`, `execute`).
    pub db: Reads,
    pub api_key: String,
    message_ids: AtomicUsize,
    /// The SQLite file the app was given (unused on PostgreSQL).
    db_file: std::path::PathBuf,
    /// The PostgreSQL database the app runs on, if it does.
    database_url: Option<String>,
    /// On PostgreSQL, the test's database; dropped after the app's connections.
    _database: Option<PgDatabase>,
    _dir: TempDir,
}

/// Whether the suite runs on PostgreSQL: `MOMENTLINE_TEST_ENGINE=postgres`, each test on a
/// database of its own on the server at `MOMENTLINE_TEST_POSTGRES_URL`. SQLite otherwise.
pub fn suite_on_postgres() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        match std::env::var("MOMENTLINE_TEST_ENGINE")
            .unwrap_or_default()
            .trim()
        {
            "postgres" => {
                postgres_server();
                true
            }
            "" | "sqlite" => false,
            other => panic!(
                "MOMENTLINE_TEST_ENGINE={other:?}: set it to `postgres`, or unset it for SQLite"
            ),
        }
    })
}

/// On PostgreSQL, says the test is skipped there and why, and answers `true`: a test about
/// SQLite itself starts with `if skip_on_postgres("why") { return; }`.
pub fn skip_on_postgres(why: &str) -> bool {
    let skip = suite_on_postgres();
    if skip {
        let test = std::thread::current()
            .name()
            .unwrap_or("this test")
            .to_owned();
        // Straight to stderr, past the test harness's capture: a skip is seen in every run.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped on PostgreSQL: {test}: {why}");
    }
    skip
}

/// The PostgreSQL server the tests make their databases on.
fn postgres_server() -> String {
    std::env::var("MOMENTLINE_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "MOMENTLINE_TEST_ENGINE=postgres needs MOMENTLINE_TEST_POSTGRES_URL, the URL of \
                 a PostgreSQL server where the tests may create databases (e.g. \
                 postgres://postgres@127.0.0.1:55432/postgres; `scripts/postgres start` starts \
                 one and prints it)"
            )
        })
}

/// A connection to `url`, reached as momentline reaches it (its `sslmode` and `sslrootcert`
/// honoured). Blocks.
pub fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    momentline::db::sql::PgTarget::parse(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .connect()
}

/// Runs `work` on a new connection to the server at `url`, from a plain thread: the
/// synchronous client cannot run on an async thread.
pub fn on_server<T: Send>(
    url: &str,
    work: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send,
) -> Result<T, postgres::Error> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| work(&mut connect(url)?))
            .join()
            .expect("the PostgreSQL thread")
    })
}

/// A PostgreSQL error with the server's own message, which `postgres::Error` shows only as
/// "db error".
fn pg_error(e: &postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), ToString::to_string)
}

/// A database of a test's own on the PostgreSQL test server. Dropped after the test (its
/// connections ended), unless the test failed: then it is kept, and named, to look at until
/// the next run.
pub struct PgDatabase {
    /// Where the app finds it, as `MOMENTLINE_DATABASE_URL`.
    pub url: String,
    name: String,
    server: String,
}

impl PgDatabase {
    /// Creates an empty database, `mlt_<pid>_<counter>_<random>`, on the suite's server.
    pub fn create() -> Self {
        Self::create_on(&postgres_server())
    }

    /// Creates an empty database on the server at `server`.
    pub fn create_on(server: &str) -> Self {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let server = server.to_owned();
        // Earlier runs' databases go while this run's tests start.
        Dropper::on(&server);
        let mut random = [0_u8; 4];
        getrandom::fill(&mut random).expect("randomness");
        let name = format!(
            "mlt_{}_{}_{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed),
            hex::encode(random)
        );
        // Commits need not wait for the server's disk: a test outlives no server crash, and
        // what every other session sees is the same.
        on_server(&server, |c| {
            c.batch_execute(&format!("CREATE DATABASE {name}"))?;
            c.batch_execute(&format!(
                "ALTER DATABASE {name} SET synchronous_commit = off"
            ))
        })
        .unwrap_or_else(|e| {
            panic!(
                "cannot create database {name} on {server}: {}",
                pg_error(&e)
            )
        });
        Self {
            url: with_database(&server, &name),
            name,
            server,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kept the failed test's database until the next run: {}",
                self.url
            );
            return;
        }
        Dropper::on(&self.server).drop_later(self.name.clone());
    }
}

/// Drops the tests' databases on threads of their own. A DROP DATABASE waits for a
/// checkpoint, up to a second while the tests write: no test waits for it unless more than
/// `DROPS_PENDING` are still to go, which bounds what is left when the tests end. The
/// droppers start with what earlier runs left (a failed test's database, or one still queued
/// when they ended): the databases of test processes no longer running here.
struct Dropper {
    queue: std::sync::mpsc::Sender<String>,
    pending: Arc<AtomicUsize>,
}

/// Threads dropping at once: drops waiting together share one checkpoint.
const DROPPERS: usize = 4;
/// Drops still to go past which a finished test waits for them.
const DROPS_PENDING: usize = 16;

impl Dropper {
    /// The droppers for `server`, started on first use.
    fn on(server: &str) -> &'static Dropper {
        static DROPPER: OnceLock<Dropper> = OnceLock::new();
        DROPPER.get_or_init(|| {
            let (queue, names) = std::sync::mpsc::channel::<String>();
            let names = Arc::new(std::sync::Mutex::new(names));
            let pending = Arc::new(AtomicUsize::new(0));
            for n in 0..DROPPERS {
                let (server, names, pending) =
                    (server.to_owned(), Arc::clone(&names), Arc::clone(&pending));
                std::thread::Builder::new()
                    .name(format!("test-database-dropper-{n}"))
                    .spawn(move || drop_databases(&server, &names, &pending))
                    .expect("a dropping thread starts");
            }
            // Listed from a thread of its own, as the client needs (this may be an async one).
            let (server, earlier, counted) =
                (server.to_owned(), queue.clone(), Arc::clone(&pending));
            std::thread::spawn(move || {
                for name in left_behind(&server) {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = earlier.send(name);
                }
            });
            Dropper { queue, pending }
        })
    }

    /// Queues `name` to be dropped; waits while too many drops are still to go.
    fn drop_later(&self, name: String) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        let _ = self.queue.send(name);
        while self.pending.load(Ordering::SeqCst) > DROPS_PENDING {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// One dropper's work: the next queued database, dropped, until the tests end.
fn drop_databases(
    server: &str,
    names: &std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
    pending: &AtomicUsize,
) {
    let mut client: Option<postgres::Client> = None;
    loop {
        let next = names.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(name) = next else { return };
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let dropped = match client.take() {
            Some(c) => Ok(c),
            None => connect(server),
        }
        .and_then(|mut c| {
            c.batch_execute(&drop)?;
            Ok(c)
        });
        match dropped {
            Ok(c) => client = Some(c),
            Err(e) => eprintln!("could not drop the test database {name}: {}", pg_error(&e)),
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The test databases on `server` of earlier runs.
fn left_behind(server: &str) -> Vec<String> {
    let names = connect(server).and_then(|mut c| {
        c.query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'mlt\\_%'",
            &[],
        )
    });
    names
        .map(|rows| {
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .filter(|name| of_an_ended_process(name))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the test database `name` (`mlt_<pid>_...`) is of a test process on this machine
/// that has ended. Without `/proc` to tell, none is.
fn of_an_ended_process(name: &str) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return false;
    }
    let pid = name
        .strip_prefix("mlt_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    pid.is_some_and(|pid| {
        pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// A database for the `momentline` binary, and for apps started on it: a SQLite file, or on
/// PostgreSQL a database of its own.
pub struct BinaryDatabase {
    file: std::path::PathBuf,
    postgres: Option<PgDatabase>,
}

impl BinaryDatabase {
    /// At `file` on SQLite (made when first used), or a new database on PostgreSQL.
    pub fn new(file: std::path::PathBuf) -> Self {
        Self {
            file,
            postgres: suite_on_postgres().then(PgDatabase::create),
        }
    }

    /// The variables that point the binary at it.
    pub fn env(&self) -> [(&'static str, String); 2] {
        database_env(&self.file, self.postgres.as_ref().map(|d| d.url.as_str()))
    }

    /// Points an app's settings at it: `spawn_app_with(|s| db.adjust(s))`.
    pub fn adjust(&self, settings: &mut Settings) {
        settings.db_path = self.file.clone();
        settings.database_url = self.postgres.as_ref().map(|d| d.url.clone());
    }

    /// The bytes `sql` answers (`None` for NULL), read on a connection of its own.
    pub fn bytes(&self, sql: &str) -> Option<Vec<u8>> {
        self.value(sql)
    }

    /// The one number `sql` answers, read on a connection of its own.
    pub fn count(&self, sql: &str) -> i64 {
        self.value(sql)
    }

    /// The one value `sql` answers, read on a connection of its own.
    fn value<T>(&self, sql: &str) -> T
    where
        T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> + Send + 'static,
    {
        match &self.postgres {
            Some(database) => on_server(&database.url, |c| c.query_one(sql, &[])?.try_get(0))
                .unwrap_or_else(|e| panic!("{sql}: {}", pg_error(&e))),
            None => rusqlite::Connection::open(&self.file)
                .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }
}

/// `MOMENTLINE_DB` and `MOMENTLINE_DATABASE_URL` (empty: SQLite) for the binary.
fn database_env(file: &std::path::Path, url: Option<&str>) -> [(&'static str, String); 2] {
    [
        ("MOMENTLINE_DB", file.display().to_string()),
        (
            "MOMENTLINE_DATABASE_URL",
            url.unwrap_or_default().to_owned(),
        ),
    ]
}

/// `server`'s URL naming the database `name` instead of its own.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let (scheme, rest) = base
        .split_once("://")
        .unwrap_or_else(|| panic!("MOMENTLINE_TEST_POSTGRES_URL is not a URL: {server}"));
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app with Telnyx accepting texts and `PHONE` verified for the test artist.
pub async fn spawn_verified_app() -> TestApp {
    spawn_verified_app_with_env(&[]).await
}

/// As `spawn_verified_app`, with some environment variables of its own.
pub async fn spawn_verified_app_with_env(extra: &[(&str, &str)]) -> TestApp {
    let app = spawn_app_with_env(extra, |_| {}).await;
    telnyx_accepts_texts(&app.provider_api).await;
    app.verified(PHONE).await;
    app
}

/// Starts the app with settings from its environment variables, then `adjust`ed.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_env(&[], adjust).await
}

pub async fn spawn_app_with_env(
    extra: &[(&str, &str)],
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_on(None, extra, adjust).await
}

/// Starts the app told of a stand-in host (kept in `app.host`) by `env` and by `url_var`,
/// which names the host's `at`; Telnyx accepts every text.
pub async fn spawn_app_with_host(at: &str, url_var: &str, env: &[(&str, &str)]) -> TestApp {
    let host = MockServer::start().await;
    let url = format!("{}{at}", host.uri());
    let mut all = vec![(url_var, url.as_str())];
    all.extend_from_slice(env);
    let mut app = spawn_app_with_env(&all, |_| {}).await;
    app.host = Some(host);
    telnyx_accepts_texts(&app.provider_api).await;
    app
}

/// Starts the app on a database made from `dump` (SQL, e.g. one written by an earlier
/// momentline), whose artist's key is `key`; the test artist is not created.
pub async fn spawn_app_on_dump(dump: &str, key: &str) -> TestApp {
    spawn_app_on(Some((dump, key)), &[], |_| {}).await
}

/// `dump` with every time in it moved by one offset, so that its latest time is a minute
/// before `now` and the gaps between its times stay as they were. A dump written on some day
/// then reads the same whatever day it is loaded on: a pending number is as young, a retry as
/// near, as when the dump was made.
pub fn dump_as_of(dump: &str, now: chrono::DateTime<Utc>) -> String {
    let time = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z").expect("regex");
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .expect("a dump's time")
            .with_timezone(&Utc)
    };
    let Some(latest) = time.find_iter(dump).map(|m| parse(m.as_str())).max() else {
        return dump.to_owned();
    };
    let shift = now - chrono::Duration::minutes(1) - latest;
    time.replace_all(dump, |c: &regex::Captures| {
        (parse(&c[0]) + shift)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    })
    .into_owned()
}

async fn spawn_app_on(
    dump: Option<(&str, &str)>,
    extra: &[(&str, &str)],
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        momentline::telemetry::init();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let provider_api = MockServer::start().await;
    let api_base = provider_api.uri();
    let db_path = dir.path().join("momentline.db");
    let media_dir = dir.path().join("media");
    let mut env: Vec<(String, String)> = [
        ("MOMENTLINE_ADDR", "127.0.0.1:0"),
        ("MOMENTLINE_DB", db_path.to_str().expect("utf-8 path")),
        ("MOMENTLINE_PUBLIC_URL", PUBLIC_URL),
        ("MOMENTLINE_SMS_PROVIDER", "telnyx"),
        ("MOMENTLINE_RETRY_SCHEDULE", "0,0"),
        ("TELNYX_API_KEY", TELNYX_API_KEY),
        ("TELNYX_FROM_NUMBER", OUR_NUMBER),
        ("TELNYX_PUBLIC_KEY", TELNYX_PUBLIC_KEY),
        ("TELNYX_API_BASE", &api_base),
        ("TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN),
        ("TWILIO_FROM_NUMBER", OUR_NUMBER),
        ("TWILIO_API_BASE", &api_base),
        ("VONAGE_API_KEY", VONAGE_API_KEY),
        ("VONAGE_API_SECRET", VONAGE_API_SECRET),
        ("VONAGE_SIGNATURE_SECRET", VONAGE_SIGNATURE_SECRET),
        ("VONAGE_FROM", OUR_NUMBER),
        ("VONAGE_API_BASE", &api_base),
        ("TEXTFLOW_API_KEY", TEXTFLOW_API_KEY),
        ("TEXTFLOW_API_BASE", &api_base),
        ("PHONIFY_API_KEY", PHONIFY_API_KEY),
        ("PHONIFY_APP", PHONIFY_APP),
        ("PHONIFY_API_BASE", &api_base),
        (
            "MOMENTLINE_MEDIA_DIR",
            media_dir.to_str().expect("utf-8 path"),
        ),
        // The provider's stand-in, media included, is on loopback.
        ("MOMENTLINE_MEDIA_ALLOW_PRIVATE", "1"),
        // Tests drain the jobs a text queues at once: a photo or caption held back for its
        // other half would not be due yet. The merge tests set a short window of their own.
        ("MOMENTLINE_MERGE_SECS", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        if !v.is_empty() {
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    if let Some((sql, _)) = dump {
        assert!(
            !suite_on_postgres(),
            "a dump is SQL for SQLite: skip the test on PostgreSQL"
        );
        let conn = rusqlite::Connection::open(&db_path).expect("database for the dump");
        conn.execute_batch(sql).expect("the dump loads");
    }
    let mut settings =
        Settings::from_lookup(|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("test settings");
    settings.run_workers = false;
    adjust(&mut settings);
    // On PostgreSQL, a database of the test's own (unless the test named one).
    let database = match settings.database_url {
        None if suite_on_postgres() => Some(PgDatabase::create()),
        _ => None,
    };
    if let Some(database) = &database {
        settings.database_url = Some(database.url.clone());
    }
    let db_file = settings.db_path.clone();
    let database_url = settings.database_url.clone();

    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let runner = app.runner();
    let store = app.store();
    tokio::spawn(app.run_until_stopped());

    let api_key = match dump {
        Some((_, key)) => key.to_owned(),
        None => create_artist(&store, ARTIST).await,
    };
    TestApp {
        address,
        http: reqwest::Client::new(),
        provider_api,
        host: None,
        runner,
        media_dir: media_dir.clone(),
        db: store.reads(),
        store,
        api_key,
        message_ids: AtomicUsize::new(0),
        db_file,
        database_url,
        _database: database,
        _dir: dir,
    }
}

/// Creates an artist the way `momentline artists add` does, returning its key.
pub async fn create_artist(store: &Store, name: &str) -> String {
    let key = Arc::new(ApiKey::generate().expect("randomness"));
    let (name, made) = (name.to_owned(), Arc::clone(&key));
    store
        .write_waiting(move |tx| db::artists::create(tx, &name, None, &made, Utc::now()))
        .await
        .expect("insert")
        .expect("new artist");
    key.expose().to_owned()
}

/// The variables that move a process's clock (libfaketime's `LD_PRELOAD` and `FAKETIME*`),
/// as this test process has them: a binary started with an emptied environment keeps them, so
/// the suite run with its clock moved (as `.ci/run` does) moves the server's clock too.
pub fn clock_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| name == "LD_PRELOAD" || name.to_string_lossy().starts_with("FAKETIME"))
        .collect()
}

/// Signs `body` as Telnyx does, at `timestamp`.
pub fn telnyx_signature(timestamp: i64, body: &str) -> String {
    let key = SigningKey::from_bytes(&TELNYX_SECRET);
    let signed = format!("{timestamp}|{body}");
    BASE64.encode(key.sign(signed.as_bytes()).to_bytes())
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Runs the binary with `args` on the database `db` names, with nothing else in its
/// environment but warnings for a log.
pub fn run_binary(db: &[(&'static str, String); 2], args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_momentline"))
        .args(args)
        .env_clear()
        .envs(clock_env())
        .envs(db.clone())
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs")
}

/// As `run_binary`, with more variables and `input` on standard input.
pub fn run_binary_reading(
    db: &[(&'static str, String); 2],
    extra: &[(&str, &str)],
    args: &[&str],
    input: &str,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_momentline"))
        .args(args)
        .env_clear()
        .envs(clock_env())
        .envs(db.clone())
        .envs(extra.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("input");
    child.wait_with_output().expect("ends")
}

/// Sends `request`, which must reach the server (whatever it answers).
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.expect("request")
}

/// Sends every request at once, and asserts each was answered 200.
pub async fn send_at_once_each_ok(requests: impl IntoIterator<Item = reqwest::RequestBuilder>) {
    let mut deliveries = tokio::task::JoinSet::new();
    for request in requests {
        deliveries.spawn(send(request));
    }
    while let Some(response) = deliveries.join_next().await {
        assert_eq!(response.expect("task").status(), 200);
    }
}

/// The text each item of the JSON list `list` holds at `field`, skipping items without one.
pub fn texts_at<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter_map(|item| item[field].as_str())
        .collect()
}

/// A response header as text.
/// Every text the Telnyx stand-in `api` was asked to send, as "to text", in order.
pub async fn telnyx_texts(api: &MockServer) -> Vec<String> {
    requests_to(api, "/v2/messages")
        .await
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("json");
            format!("{} {}", body["to"], body["text"])
        })
        .collect()
}

pub fn header_of<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A header of a request a provider's stand-in received, as text.
pub fn request_header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Retry-After`, in whole seconds.
pub fn retry_after_secs(response: &reqwest::Response) -> i64 {
    header_of(response, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds")
}

/// An HTTP Basic `Authorization` value.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// A form fixture as name/value pairs, in order.
pub fn fixture_form(name: &str) -> Vec<(String, String)> {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_urlencoded::from_str(text.trim()).expect("fixture is a form")
}

/// A provider's API accepting every text POSTed to `at`: the `n`th answer (from 0) is
/// `answer(n)`.
async fn accept_texts(
    server: &MockServer,
    at: String,
    answer: impl Fn(usize) -> ResponseTemplate + Send + Sync + 'static,
) {
    let counter = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(move |_: &Request| answer(counter.fetch_add(1, Ordering::SeqCst)))
        .mount(server)
        .await;
}

/// Twilio's API accepting every text, each with a `sid` of its own.
pub async fn twilio_accepts_texts(server: &MockServer) {
    let at = format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json");
    accept_texts(server, at, |n| {
        let mut body = fixture("twilio/message.created.json");
        body["sid"] = json!(format!("SM{n:032}"));
        ResponseTemplate::new(201).set_body_json(body)
    })
    .await;
}

/// Vonage's API accepting every text, each with a `message-id` of its own.
pub async fn vonage_accepts_texts(server: &MockServer) {
    accept_texts(server, "/sms/json".to_owned(), |n| {
        let mut body = fixture("vonage/send.response.json");
        body["messages"][0]["message-id"] = json!(format!("0B{n:014}"));
        ResponseTemplate::new(200).set_body_json(body)
    })
    .await;
}

/// The requests momentline made to `path` on the provider's stand-in, in order.
pub async fn requests_to(server: &MockServer, path: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect()
}

/// A form body as name/value pairs.
pub fn form_of(request: &Request) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(&request.body).expect("a form body")
}

/// The value of one form field.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The provider's stand-in answering every POST to `at` with `template`.
pub async fn answer_posts(server: &MockServer, at: impl Into<String>, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(at.into()))
        .respond_with(template)
        .mount(server)
        .await;
}

/// The provider's stand-in answering only the first POST to `at` with `template`, ahead of
/// whatever else answers there.
pub async fn answer_first_post(
    server: &MockServer,
    at: impl Into<String>,
    template: ResponseTemplate,
) {
    Mock::given(method("POST"))
        .and(path(at.into()))
        .respond_with(template)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
}

/// The provider's stand-in answering the first POST to `at` with `first` (an outage, a delay,
/// a refusal), and every POST after it with `then`.
pub async fn answer_first_post_then(
    server: &MockServer,
    at: &str,
    first: ResponseTemplate,
    then: ResponseTemplate,
) {
    answer_first_post(server, at, first).await;
    answer_posts(server, at, then).await;
}

/// Telnyx's API answering the first text with `first` (an outage, a delay, a refusal), then
/// accepting every text as `telnyx_accepts_texts` does.
pub async fn telnyx_accepts_texts_after_first(server: &MockServer, first: ResponseTemplate) {
    answer_first_post(server, "/v2/messages", first).await;
    telnyx_accepts_texts(server).await;
}

/// Telnyx's API accepting every text, each with an id of its own.
pub async fn telnyx_accepts_texts(server: &MockServer) {
    telnyx_accepts_texts_after(server, std::time::Duration::ZERO).await;
}

/// As `telnyx_accepts_texts`, each answer taking `delay`.
pub async fn telnyx_accepts_texts_after(server: &MockServer, delay: std::time::Duration) {
    accept_texts(server, "/v2/messages".to_owned(), move |n| {
        let mut body = fixture("telnyx/send.response.json");
        body["data"]["id"] = json!(format!("40385f64-0000-4000-8000-{n:012}"));
        ResponseTemplate::new(200)
            .set_body_json(body)
            .set_delay(delay)
    })
    .await;
}

/// Starts the app sending through `provider` (every provider's credentials are set).
pub async fn spawn_app_sending_with(provider: &str) -> TestApp {
    spawn_app_with_env(&[("MOMENTLINE_SMS_PROVIDER", provider)], |_| {}).await
}

/// Signs Twilio form parameters for `path` as Twilio does.
pub fn twilio_signature(path: &str, params: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    momentline::providers::twilio::signature(
        TWILIO_AUTH_TOKEN,
        &format!("{PUBLIC_URL}{path}"),
        &owned,
    )
}

/// Adds Vonage's `timestamp`, `nonce` and `sig` (HMAC-SHA256, the default method).
pub fn vonage_signed(params: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    owned.push(("timestamp".into(), Utc::now().timestamp().to_string()));
    owned.push((
        "nonce".into(),
        "6d1d5e3a-1b2c-4f1e-9a0b-0c1d2e3f4a5b".into(),
    ));
    let secret = momentline::providers::vonage::SignatureSecret {
        secret: VONAGE_SIGNATURE_SECRET.into(),
        method: momentline::providers::vonage::SignatureMethod::HmacSha256,
    };
    let sig = momentline::providers::vonage::signature(&secret, &owned);
    owned.push(("sig".into(), sig));
    owned
}

/// The bearer JWT Vonage's Messages API signs a webhook body with (HS256, the signature
/// secret, the body's SHA-256 as `payload_hash`).
pub fn vonage_jwt(body: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use hmac::Mac;
    use sha2::Digest;
    let header = B64URL.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = B64URL.encode(
        json!({
            "iat": Utc::now().timestamp(),
            "jti": "6e1f0d7a-3c2b-4a59-9e8d-7c6b5a4f3e2d",
            "iss": "Vonage",
            "payload_hash": hex::encode(sha2::Sha256::digest(body.as_bytes())),
            "api_key": VONAGE_API_KEY,
            "application_id": "5f4e3d2c-1b0a-4998-8776-655443322110",
        })
        .to_string(),
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(VONAGE_SIGNATURE_SECRET.as_bytes())
        .expect("HMAC key");
    mac.update(format!("{header}.{claims}").as_bytes());
    let signature = B64URL.encode(mac.finalize().into_bytes());
    format!("Bearer {header}.{claims}.{signature}")
}

impl TestApp {
    /// Posts a Messages API webhook to `/webhooks/vonage` with the given authorization.
    pub async fn vonage_messages_post(
        &self,
        body: &Value,
        authorization: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url("/webhooks/vonage"))
            .header("authorization", authorization)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    /// Posts a signed Twilio form to `path`.
    pub async fn twilio_post(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("x-twilio-signature", twilio_signature(path, params))
            .form(params)
            .send()
            .await
            .expect("request")
    }

    /// A Twilio inbound message, as Twilio posts it, with a fresh `MessageSid`.
    pub async fn twilio_text(
        &self,
        from: &str,
        body: &str,
        media: &[(&str, &str)],
    ) -> reqwest::Response {
        let n = self.message_ids.fetch_add(1, Ordering::SeqCst);
        let sid = format!("MM{n:032x}");
        let num_media = media.len().to_string();
        let mut params: Vec<(String, String)> = [
            ("ToCountry", "US"),
            ("ToState", "CA"),
            ("SmsMessageSid", sid.as_str()),
            ("NumMedia", num_media.as_str()),
            ("ToCity", ""),
            ("FromZip", "94105"),
            ("SmsSid", sid.as_str()),
            ("FromState", "CA"),
            ("SmsStatus", "received"),
            ("FromCity", "SAN FRANCISCO"),
            ("Body", body),
            ("FromCountry", "US"),
            ("To", OUR_NUMBER),
            ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
            ("ToZip", ""),
            ("NumSegments", "1"),
            ("MessageSid", sid.as_str()),
            ("AccountSid", TWILIO_ACCOUNT_SID),
            ("From", from),
            ("ApiVersion", "2010-04-01"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (i, (url, content_type)) in media.iter().enumerate() {
            params.push((format!("MediaContentType{i}"), (*content_type).to_owned()));
            params.push((format!("MediaUrl{i}"), (*url).to_owned()));
        }
        let borrowed: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.twilio_post("/webhooks/twilio", &borrowed).await
    }

    /// Sends signed Vonage parameters by GET (query) or POST (form).
    pub async fn vonage_webhook(
        &self,
        get: bool,
        params: &[(String, String)],
    ) -> reqwest::Response {
        let request = if get {
            self.http.get(self.url("/webhooks/vonage")).query(params)
        } else {
            self.http.post(self.url("/webhooks/vonage")).form(params)
        };
        request.send().await.expect("request")
    }

    /// A Vonage inbound SMS from `from` (E.164 with `+`), signed, with a fresh `messageId`.
    pub fn vonage_text(
        &self,
        from: &str,
        text: &str,
        extra: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let n = self.message_ids.fetch_add(1, Ordering::SeqCst);
        let id = format!("0A00000{n:09X}");
        let mut params = vec![
            ("msisdn", from.trim_start_matches('+')),
            ("to", OUR_NUMBER.trim_start_matches('+')),
            ("messageId", id.as_str()),
            ("text", text),
            ("type", "text"),
            ("keyword", "KEYWORD"),
            ("api-key", VONAGE_API_KEY),
            ("message-timestamp", "2026-11-22 18:10:02"),
        ];
        params.extend_from_slice(extra);
        vonage_signed(&params)
    }

    /// The SQLite file the app serves (its settings may have put it elsewhere); a test that
    /// reads it skips itself on PostgreSQL.
    pub fn db_path(&self) -> std::path::PathBuf {
        assert!(
            self.database_url.is_none(),
            "on PostgreSQL there is no database file: skip the test there"
        );
        self.db_file.clone()
    }

    /// The engine the app runs on.
    pub fn engine(&self) -> Engine {
        self.store.engine()
    }

    /// The variables that point the `momentline` binary at the app's database, whichever
    /// engine it is on.
    pub fn database_env(&self) -> [(&'static str, String); 2] {
        database_env(&self.db_file, self.database_url.as_deref())
    }

    /// Runs `work` on one of the app's own connections (outside any transaction).
    pub fn with_db<T: Send>(&self, work: impl FnOnce(&Conn) -> Result<T, DbError> + Send) -> T {
        self.on_db(work)
            .unwrap_or_else(|e| panic!("the test's database work: {e}"))
    }

    /// Runs `work` on a plain thread: PostgreSQL's synchronous client cannot run on the
    /// test's async thread.
    fn on_db<T: Send>(
        &self,
        work: impl FnOnce(&Conn) -> Result<T, DbError> + Send,
    ) -> Result<T, DbError> {
        std::thread::scope(|scope| scope.spawn(|| self.db.with(work)).join())
            .expect("the test's database thread")
    }

    /// Puts `numbers` in the database as verified for the test artist, in one write.
    pub async fn insert_verified(&self, numbers: &[String], updated_at: &str) {
        let (numbers, updated_at) = (numbers.to_vec(), updated_at.to_owned());
        self.store
            .write_waiting(move |tx| {
                for e164 in &numbers {
                    tx.execute(
                        "INSERT INTO phone_numbers (e164, state, owner_id, updated_at)
                         VALUES (?1, 'verified', 1, ?2)",
                        params![e164, updated_at],
                    )?;
                }
                Ok(())
            })
            .await
            .expect("verified numbers");
    }

    /// Runs one statement; answers the rows it changed.
    pub fn execute<P: Params + ?Sized>(&self, sql: &str, params: &P) -> usize {
        // Bound values, owned apart from `params` so they may cross to a PostgreSQL thread.
        let params = params.params();
        self.on_db(|c| c.execute(sql, &params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn connect(&self, phone: &str) -> reqwest::Response {
        self.connect_as(&self.api_key, phone).await
    }

    pub async fn connect_as(&self, key: &str, phone: &str) -> reqwest::Response {
        let body = json!({ "phone_number": phone });
        self.post_json_as(key, "/api/phones", &body).await
    }

    /// `POST /api/phones` with a `method` (`"code"`, `"prompt"`, or anything a client sends).
    pub async fn connect_by(&self, key: &str, phone: &str, method: &str) -> reqwest::Response {
        let body = json!({ "phone_number": phone, "method": method });
        self.post_json_as(key, "/api/phones", &body).await
    }

    /// `POST /api/phones/verify` as the artist whose key is `key`.
    pub async fn verify_code_as(&self, key: &str, phone: &str, code: &str) -> reqwest::Response {
        let body = json!({ "phone_number": phone, "code": code });
        self.post_json_as(key, "/api/phones/verify", &body).await
    }

    /// `POST` of `body` as JSON to `path`, as the artist whose key is `key`.
    async fn post_json_as(&self, key: &str, path: &str, body: &Value) -> reqwest::Response {
        send(
            self.http
                .post(self.url(path))
                .header("x-api-key", key)
                .json(body),
        )
        .await
    }

    /// A request to `path` carrying the test artist's key, to be finished and `sent`.
    pub fn keyed(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("x-api-key", &self.api_key)
    }

    /// `GET path` with no key, as a browser or a monitor asks.
    pub async fn get_keyless(&self, path: &str) -> reqwest::Response {
        send(self.http.get(self.url(path))).await
    }

    /// `DELETE /api/phones` as the test artist: of `phone`, or of every number.
    pub async fn disconnect(&self, phone: Option<&str>) -> reqwest::Response {
        let request = self.keyed(Method::DELETE, "/api/phones");
        send(match phone {
            Some(phone) => request.json(&json!({ "phone_number": phone })),
            None => request,
        })
        .await
    }

    /// Queues a text to `phone` through `provider` as momentline's own replies are queued.
    pub async fn queue_text(&self, provider: &'static str, phone: &str, body: &str) {
        let (phone, body) = (phone.to_owned(), body.to_owned());
        self.store
            .write_waiting(move |tx| {
                let text = db::messages::NewOutbound {
                    artist: None,
                    to: &phone,
                    from: None,
                    body: &body,
                    provider,
                    purpose: momentline::domain::number_state::ReplyKind::Help,
                };
                db::messages::queue_outbound(tx, &text, Utc::now())
            })
            .await
            .expect("queued");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(&self.api_key, path).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> reqwest::Response {
        send(self.http.get(self.url(path)).header("x-api-key", key)).await
    }

    /// A public page's HTML.
    pub async fn page(&self, path: &str) -> String {
        let response = self.get_keyless(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("html")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    /// Posts a body to the Telnyx webhook, signed now.
    pub async fn telnyx_webhook(&self, body: &str) -> reqwest::Response {
        let now = Utc::now().timestamp();
        self.telnyx_webhook_signed(body, now, &telnyx_signature(now, body))
            .await
    }

    pub async fn telnyx_webhook_signed(
        &self,
        body: &str,
        timestamp: i64,
        signature: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url("/webhooks/telnyx"))
            .header("content-type", "application/json")
            .header("telnyx-timestamp", timestamp.to_string())
            .header("telnyx-signature-ed25519", signature)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    /// A `message.received` event from `from` in the fixture's shape, with a fresh id.
    pub fn sms_event(&self, from: &str, text: &str) -> String {
        let mut event = fixture("telnyx/message.received.sms.json");
        let n = self.message_ids.fetch_add(1, Ordering::SeqCst);
        event["data"]["payload"]["id"] = json!(format!("84cca175-0000-4000-8000-{n:012}"));
        event["data"]["payload"]["from"]["phone_number"] = json!(from);
        event["data"]["payload"]["text"] = json!(text);
        event.to_string()
    }

    /// An MMS from `from` with `text` and one image the provider's stand-in holds at `at`
    /// (a path), with a fresh id.
    pub fn photo_event(&self, from: &str, text: &str, at: &str) -> String {
        let mut event: Value = serde_json::from_str(&self.sms_event(from, text)).expect("json");
        event["data"]["payload"]["type"] = json!("MMS");
        event["data"]["payload"]["media"] = json!([
            {"url": format!("{}{at}", self.provider_api.uri()), "content_type": "image/png"}
        ]);
        event.to_string()
    }

    /// Texts `text` from `from`, asserting the webhook took it.
    pub async fn text(&self, from: &str, text: &str) {
        let response = self.telnyx_webhook(&self.sms_event(from, text)).await;
        assert_eq!(response.status(), 200, "webhook for {text:?}");
    }

    /// Texts `text` from `from` as `text` does, then drains the jobs it set going.
    pub async fn text_and_drain(&self, from: &str, text: &str) {
        self.text(from, text).await;
        self.drain().await;
    }

    /// One round of sending texts (after dispatching the Moments that queue them).
    pub async fn send_round(&self) -> Round {
        self.runner
            .run_once(&[JobKind::DispatchMoment])
            .await
            .expect("dispatch round");
        self.runner
            .run_once(&[JobKind::SendText])
            .await
            .expect("send round")
    }

    /// Dispatches Moments and sends texts until nothing is due; counts the texts.
    pub async fn drain(&self) -> Round {
        self.drain_kinds(
            &[JobKind::DispatchMoment, JobKind::SendText],
            JobKind::SendText,
        )
        .await
    }

    /// Dispatches Moments and keeps media until nothing is due; counts the files.
    pub async fn drain_media(&self) -> Round {
        self.drain_kinds(
            &[JobKind::DispatchMoment, JobKind::KeepMedia],
            JobKind::KeepMedia,
        )
        .await
    }

    /// Delivers events until none is due; counts them.
    /// Keeps media, dispatches and hides Moments and sends texts until nothing is due;
    /// counts the texts.
    pub async fn drain_all(&self) -> Round {
        self.drain_kinds(
            &[
                JobKind::KeepMedia,
                JobKind::DispatchMoment,
                JobKind::HideMoment,
                JobKind::SendText,
            ],
            JobKind::SendText,
        )
        .await
    }

    pub async fn drain_events(&self) -> Round {
        self.drain_kinds(&[JobKind::DeliverEvent], JobKind::DeliverEvent)
            .await
    }

    async fn drain_kinds(&self, kinds: &[JobKind], counted: JobKind) -> Round {
        let mut total = Round::default();
        for _ in 0..50 {
            let mut busy = false;
            for kind in kinds {
                let round = self.runner.run_once(&[*kind]).await.expect("jobs round");
                busy |= round.claimed() > 0;
                if *kind == counted {
                    total.add(round);
                }
            }
            if !busy {
                return total;
            }
        }
        panic!("the jobs queue never emptied");
    }

    /// Every text momentline asked Telnyx to send, as JSON bodies, in order.
    pub async fn sent_to_telnyx(&self) -> Vec<Value> {
        self.provider_api
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/v2/messages")
            .map(|r| serde_json::from_slice(&r.body).expect("momentline sends JSON"))
            .collect()
    }

    /// The texts sent to `phone`, oldest first.
    pub async fn texts_to(&self, phone: &str) -> Vec<String> {
        self.sent_to_telnyx()
            .await
            .iter()
            .filter(|b| b["to"] == phone)
            .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The newest text sent to `phone`.
    pub async fn last_text_to(&self, phone: &str) -> Option<String> {
        self.texts_to(phone).await.pop()
    }

    /// Asserts `phone` was last told its Moment was removed, and never told one was posted.
    pub async fn assert_told_removed_never_posted(&self, phone: &str) {
        let texts = self.texts_to(phone).await;
        assert_eq!(
            texts.last().map(String::as_str),
            Some("Your last Moment was removed.")
        );
        assert!(
            !texts.iter().any(|t| t.starts_with("Moment posted")),
            "{texts:?}"
        );
    }

    /// Connects `phone` for the test artist and confirms it with "yes".
    pub async fn verified(&self, phone: &str) {
        assert_eq!(self.connect(phone).await.status(), 200);
        self.text(phone, "yes").await;
        self.drain().await;
        assert_eq!(self.number_state(phone).await.as_deref(), Some("verified"));
    }

    /// The state `GET /api/phones` shows for `phone`.
    pub async fn number_state(&self, phone: &str) -> Option<String> {
        self.number_state_as(&self.api_key, phone).await
    }

    pub async fn number_state_as(&self, key: &str, phone: &str) -> Option<String> {
        let response = self.get_as(key, "/api/phones").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json");
        body["phones"]
            .as_array()
            .expect("phones")
            .iter()
            .find(|p| p["phone_number"] == phone)
            .and_then(|p| p["state"].as_str().map(str::to_owned))
    }

    /// Moves every message `secs` seconds into the past, as if that time had gone by.
    pub fn backdate_messages(&self, secs: i64) {
        self.backdate("messages", "created_at", secs);
    }

    /// Moves `column` of every row of `table` `secs` seconds into the past.
    pub fn backdate(&self, table: &str, column: &str, secs: i64) {
        let earlier = earlier_sql(self.engine(), column);
        self.execute(&format!("UPDATE {table} SET {column} = {earlier}"), &[secs]);
    }

    /// The artist's newest Moment, as the API shows it.
    pub async fn newest_moment(&self) -> Value {
        self.get_json("/api/moments").await["moments"][0].clone()
    }

    /// One Moment and one "Moment posted" reply, whatever was delivered how often.
    pub fn assert_one_moment_posted(&self) {
        assert_eq!(self.count("SELECT count(*) FROM moments"), 1);
        assert_eq!(
            self.count("SELECT count(*) FROM messages WHERE purpose = 'moment_posted'"),
            1
        );
    }

    /// The one number `sql` answers (a count, say).
    pub fn count(&self, sql: &str) -> i64 {
        self.on_db(|c| c.query_value(sql, db::params![]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// SQL for the time in `column` (`2026-11-22T10:00:00.000Z`) `?1` seconds earlier, in the
/// same form.
fn earlier_sql(engine: Engine, column: &str) -> String {
    match engine {
        Engine::Sqlite => {
            format!("strftime('%Y-%m-%dT%H:%M:%fZ', julianday({column}) - ?1 / 86400.0)")
        }
        Engine::Postgres => format!(
            "to_char((CAST({column} AS timestamptz) - make_interval(secs => ?1)) AT TIME ZONE \
             'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        ),
    }
}

/// SQL for the whole seconds from now until the time in `column` (negative once past).
pub fn secs_until_sql(engine: Engine, column: &str) -> String {
    match engine {
        Engine::Sqlite => {
            format!("CAST((julianday({column}) - julianday('now')) * 86400 AS INTEGER)")
        }
        Engine::Postgres => format!(
            "CAST(trunc(EXTRACT(EPOCH FROM CAST({column} AS timestamptz) - now())) AS BIGINT)"
        ),
    }
}
