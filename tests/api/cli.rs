//! The `momentline` binary: artists and keys from the command line.

use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use momentline::domain::sealed::SealingKey;

use crate::helpers::*;

/// Runs the binary on `db`, whichever engine it is on.
fn momentline(db: &BinaryDatabase, args: &[&str]) -> std::process::Output {
    run_binary(&db.env(), args)
}

/// Asserts the binary failed and said `words` on stderr.
fn assert_fails_saying(out: &std::process::Output, words: &str) {
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(words));
}

/// Runs the binary on the SQLite file `db`.
fn momentline_on_file(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_momentline"))
        .args(args)
        .env_clear()
        .envs(clock_env())
        .env("MOMENTLINE_DB", db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs")
}

#[tokio::test]
async fn artists_add_prints_a_key_that_works_and_revoke_stops_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = BinaryDatabase::new(dir.path().join("cli.db"));
    let out = momentline(
        &db,
        &[
            "artists",
            "add",
            "--name",
            "Ada",
            "--address",
            "0x0123456789abcdef0123456789abcdef01234567",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let key = stdout.trim();
    assert_eq!(
        stdout.lines().count(),
        1,
        "the key alone on stdout: {stdout:?}"
    );
    assert!(key.starts_with("art_sk_") && key.len() == 71, "{key}");
    assert!(key[7..]
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

    let app = spawn_app_with(|s| db.adjust(s)).await;
    let phones = app.get_as(key, "/api/phones").await;
    assert_eq!(phones.status(), 200);

    // The database keeps only a hash of it.
    let stored: i64 = app.with_db(|c| {
        c.query_value(
            "SELECT count(*) FROM api_keys WHERE hash = ?1 OR prefix = ?1",
            &[key],
        )
    });
    assert_eq!(stored, 0);

    let out = momentline(&db, &["keys", "create", "--artist", "Ada"]);
    assert!(out.status.success());
    let second = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_ne!(second, key);

    let out = momentline(&db, &["keys", "revoke", &key[..15]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.get_as(key, "/api/phones").await.status(), 401);
    assert_eq!(app.get_as(&second, "/api/phones").await.status(), 200);

    // A second revoke says it was done before; a key that never was says so.
    let again = momentline(&db, &["keys", "revoke", &key[..15]]);
    assert_fails_saying(&again, "was already revoked, at ");
    let whole = momentline(&db, &["keys", "revoke", key]);
    assert_fails_saying(&whole, "was already revoked, at ");
    assert!(
        !String::from_utf8_lossy(&whole.stderr).contains(key),
        "never said back"
    );
    let never = momentline(&db, &["keys", "revoke", "art_sk_00000000"]);
    assert_fails_saying(&never, "no key matches art_sk_00000000");
}

#[test]
fn artists_add_refuses_a_taken_name_or_a_bad_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = BinaryDatabase::new(dir.path().join("cli.db"));
    assert!(momentline(&db, &["artists", "add", "--name", "Ada"])
        .status
        .success());
    let again = momentline(&db, &["artists", "add", "--name", "Ada"]);
    assert_fails_saying(&again, "exists already");
    let bad = momentline(
        &db,
        &["artists", "add", "--name", "Bo", "--address", "0x12"],
    );
    assert_fails_saying(&bad, "--address");
}

#[test]
fn a_missing_provider_credential_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .arg("serve")
        .env_clear()
        .envs(clock_env())
        .env("MOMENTLINE_DB", dir.path().join("x.db"))
        .env("MOMENTLINE_SMS_PROVIDER", "telnyx")
        .env("TELNYX_FROM_NUMBER", "+18445550001")
        .output()
        .expect("runs");
    assert_fails_saying(&out, "TELNYX_API_KEY");
}

#[tokio::test]
async fn artists_and_keys_are_listed_by_prefix_never_the_key_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = BinaryDatabase::new(dir.path().join("cli.db"));
    let out = momentline(&db, &["artists", "add", "--name", "Ada"]);
    let key = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert!(momentline(&db, &["artists", "add", "--name", "Bo"])
        .status
        .success());
    assert!(momentline(&db, &["keys", "revoke", &key]).status.success());

    let artists = String::from_utf8(momentline(&db, &["artists", "list"]).stdout).expect("utf-8");
    let rows: Vec<Vec<&str>> = artists.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 3, "{artists}");
    assert_eq!(
        rows[1][..4],
        ["1", "Ada", "0", "0"],
        "Ada's one key is revoked"
    );
    assert_eq!(rows[2][..4], ["2", "Bo", "1", "0"]);

    let keys = momentline(&db, &["keys", "list", "--artist", "Ada"]);
    let keys = String::from_utf8(keys.stdout).expect("utf-8");
    assert!(keys.contains(&key[..15]), "{keys}");
    assert!(!keys.contains(&key), "the key itself is never shown");
    let ada = keys.lines().nth(1).expect("Ada's key");
    assert_ne!(ada.rsplit('\t').next(), Some("-"), "shown revoked: {ada}");
    assert_eq!(
        String::from_utf8(momentline(&db, &["keys", "list"]).stdout)
            .expect("utf-8")
            .lines()
            .count(),
        3
    );
    let nobody = momentline(&db, &["keys", "list", "--artist", "Nobody"]);
    assert_fails_saying(&nobody, "no artist named 'Nobody'");
}

#[test]
fn the_db_flag_wins_over_the_variable_and_help_lists_every_variable() {
    if skip_on_postgres("--db and MOMENTLINE_DB name a SQLite file") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let flagged = dir.path().join("flag.db");
    let out = momentline_on_file(
        &dir.path().join("env.db"),
        &[
            "--db",
            flagged.to_str().expect("utf-8"),
            "artists",
            "add",
            "--name",
            "Ada",
        ],
    );
    assert!(out.status.success());
    assert!(flagged.exists());
    assert!(!dir.path().join("env.db").exists());

    let help = momentline_on_file(&flagged, &["--help"]);
    let help = String::from_utf8(help.stdout).expect("utf-8");
    for (name, _, _) in momentline::config::variables() {
        assert!(help.contains(name), "{name} missing from --help");
    }
    assert!(
        help.contains("--db <PATH>") && help.contains("--addr <ADDR>"),
        "{help}"
    );
}

#[tokio::test]
async fn backup_copies_a_live_database_and_never_overwrites() {
    if skip_on_postgres("`momentline backup` copies a SQLite file (PostgreSQL: pg_dump)") {
        return;
    }
    let app = spawn_verified_app().await;
    app.text_and_drain(PHONE, "Kept in the copy").await;
    let db = app.db_path();
    let copy = tempfile::tempdir().expect("temp dir");
    let to = copy.path().join("backup.db");
    let out = momentline_on_file(&db, &["backup", to.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(&to).expect("the copy opens");
    let title: String = conn
        .query_row("SELECT title FROM moments", [], |r| r.get(0))
        .expect("the Moment is in the copy");
    assert_eq!(title, "Kept in the copy");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&to).expect("meta").permissions().mode();
    assert_eq!(mode & 0o077, 0, "owner only: {mode:o}");

    let again = momentline_on_file(&db, &["backup", to.to_str().expect("utf-8")]);
    assert_fails_saying(&again, "exists already");
}

/// Runs `momentline dev text` against `app`, as the server's own environment would.
fn dev_text(app: &TestApp, args: &[&str]) -> std::process::Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_momentline"));
    command
        .args(["dev", "text", "--url", &app.address])
        .args(args)
        .env_clear()
        .envs(clock_env())
        .envs(app.database_env())
        .env("MOMENTLINE_PUBLIC_URL", PUBLIC_URL)
        .env("TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN)
        .env("VONAGE_SIGNATURE_SECRET", VONAGE_SIGNATURE_SECRET)
        .env("RUST_LOG", "warn");
    command
}

#[tokio::test]
async fn dev_text_plays_the_phone_as_twilio_or_vonage_signs() {
    let app = spawn_app().await;
    telnyx_accepts_texts(&app.provider_api).await;
    assert_eq!(app.connect(PHONE).await.status(), 200);
    let out = dev_text(&app, &["--from", PHONE, "--wait", "0", "yes"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.number_state(PHONE).await.as_deref(), Some("verified"));

    let out = dev_text(
        &app,
        &[
            "--from",
            PHONE,
            "--provider",
            "vonage",
            "--wait",
            "0",
            "By Vonage",
        ],
    )
    .output()
    .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE provider = 'vonage' AND body = 'By Vonage'"),
        1
    );

    let telnyx = dev_text(&app, &["--from", PHONE, "--provider", "telnyx", "hi"])
        .output()
        .expect("runs");
    assert_fails_saying(&telnyx, "private key");
}

#[tokio::test]
async fn dev_text_attaches_a_photo_served_on_loopback_and_prints_the_answers() {
    let app = spawn_verified_app().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = dir.path().join("studio.png");
    std::fs::write(
        &photo,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01",
    )
    .expect("photo");
    let child = dev_text(
        &app,
        &[
            "--from",
            PHONE,
            "--media",
            photo.to_str().expect("utf-8"),
            "Studio wall",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("runs");
    // The server fetches the photo while the command waits for its answers.
    for _ in 0..100 {
        if app.count("SELECT count(*) FROM moments") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.drain_media().await;
    app.drain().await;
    let out = child.wait_with_output().expect("finishes");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE media_state = 'kept'"),
        1
    );
    assert!(
        stdout.contains(&format!("momentline -> {PHONE}")) && stdout.contains("Moment posted: "),
        "{stdout}"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_the_dev_phone_on_a_public_address() {
    if skip_on_postgres("it checks that no SQLite file was made") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .env_clear()
        .envs(clock_env())
        .env("MOMENTLINE_DB", dir.path().join("dev.db"))
        .env("MOMENTLINE_ADDR", "0.0.0.0:0")
        .env("MOMENTLINE_DEV_PHONE", "1")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    // A server that started anyway would never exit: stop waiting after a while.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("momentline served the dev phone on 0.0.0.0");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!status.success());
    assert!(
        stderr.contains("MOMENTLINE_DEV_PHONE") && stderr.contains("MOMENTLINE_ADDR"),
        "{stderr}"
    );
    assert!(!dir.path().join("dev.db").exists(), "nothing was opened");

    // The refusal is `serve`'s: an operator command under the same variables still runs.
    let listed = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .args(["artists", "add", "--name", "Ada"])
        .env_clear()
        .envs(clock_env())
        .env("MOMENTLINE_DB", dir.path().join("dev.db"))
        .env("MOMENTLINE_ADDR", "0.0.0.0:0")
        .env("MOMENTLINE_DEV_PHONE", "1")
        .output()
        .expect("runs");
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

#[test]
fn listing_never_makes_a_database_where_there_is_none() {
    if skip_on_postgres("a missing SQLite file is what it is about") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("nothing-here.db");
    for args in [
        &["artists", "list"][..],
        &["keys", "list"][..],
        &["broadcast", "status", "1"][..],
    ] {
        let out = momentline_on_file(&db, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no database at"),
            "{args:?}"
        );
    }
    assert!(!db.exists());
}

/// Runs the binary on `db` with `extra` variables, `input` on its standard input.
fn momentline_reading(
    db: &BinaryDatabase,
    extra: &[(&str, &str)],
    args: &[&str],
    input: &str,
) -> std::process::Output {
    run_binary_reading(&db.env(), extra, args, input)
}

#[test]
fn an_in_process_key_is_read_from_standard_input_and_kept_sealed_never_in_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = BinaryDatabase::new(dir.path().join("cli.db"));
    assert!(momentline(&db, &["artists", "add", "--name", "Ada"])
        .status
        .success());
    let sealing = BASE64.encode([7u8; 32]);
    let with_secret = [("MOMENTLINE_SECRET_KEY", sealing.as_str())];
    let key = "art_sk_Jx3kP9qLm2Vn8Rt5Yw1Zb6Hc4Df7Gs0Ae_Ku-Qo";
    let register = |extra: &[(&str, &str)], args: &[&str], input: &str| {
        let mut all = vec!["artists", "inprocess-key", "--artist"];
        all.extend_from_slice(args);
        momentline_reading(&db, extra, &all, input)
    };

    // Without the key that seals it, nothing is kept.
    let out = register(&[], &["Ada"], key);
    assert_fails_saying(&out, "MOMENTLINE_SECRET_KEY is not set");
    for (args, input, says) in [
        (&["Ada"][..], "not a key", "art_sk_"),
        (&["Ada"][..], "", "art_sk_"),
        (&["Nobody"][..], key, "no artist named 'Nobody'"),
        (
            &["Ada", "--collection", "0x123"][..],
            key,
            "--collection must be 0x followed by 40 hex characters",
        ),
    ] {
        let out = register(&with_secret, args, input);
        assert_fails_saying(&out, says);
    }
    assert_eq!(
        db.count("SELECT count(*) FROM artists WHERE inprocess_key IS NOT NULL"),
        0
    );

    let collection = "0x2222222222222222222222222222222222222222";
    let out = register(
        &with_secret,
        &["Ada", "--collection", collection],
        &format!("{key}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(key));
    let sealed = db
        .bytes("SELECT inprocess_key FROM artists WHERE name = 'Ada'")
        .expect("kept");
    assert!(
        !sealed.windows(key.len()).any(|w| w == key.as_bytes()),
        "the key is not kept in clear"
    );
    let id = db.count("SELECT id FROM artists WHERE name = 'Ada'");
    let opened = SealingKey::parse(&sealing)
        .expect("key")
        .open(&sealed, format!("artist:{id}").as_bytes())
        .expect("opens with MOMENTLINE_SECRET_KEY, for this artist");
    assert_eq!(opened.expose(), key);
    assert!(SealingKey::parse(&BASE64.encode([8u8; 32]))
        .expect("key")
        .open(&sealed, format!("artist:{id}").as_bytes())
        .is_err());

    let listed = momentline(&db, &["artists", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    let ada = listed
        .lines()
        .find(|l| l.contains("\tAda\t"))
        .expect("Ada listed");
    assert!(ada.ends_with(&format!("\tset\t{collection}")), "{listed}");
    assert!(!listed.contains(key), "{listed}");
}

/// Runs `dev text` to its end while `meanwhile` plays the server's jobs; answers its output
/// and how long it took.
async fn dev_text_while<F: std::future::Future<Output = ()>>(
    app: &TestApp,
    args: &[&str],
    meanwhile: F,
) -> (std::process::Output, std::time::Duration) {
    let started = std::time::Instant::now();
    let child = dev_text(app, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    meanwhile.await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("finishes"))
        .await
        .expect("joined");
    (out, started.elapsed())
}

/// Waits until the server has recorded `n` Moments.
async fn moments_recorded(app: &TestApp, n: i64) {
    for _ in 0..200 {
        if app.count("SELECT count(*) FROM moments") >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no Moment was recorded");
}

/// A 1×1 PNG in a file of its own.
fn photo_file(dir: &tempfile::TempDir) -> String {
    let photo = dir.path().join("studio.png");
    std::fs::write(
        &photo,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01",
    )
    .expect("photo");
    photo.to_str().expect("utf-8").to_owned()
}

#[tokio::test]
async fn dev_text_stops_once_the_photo_is_refused_for_good_and_says_why() {
    // Media fetches held to public addresses, as in production: the loopback file is refused.
    let app = spawn_verified_app_with_env(&[("MOMENTLINE_MEDIA_ALLOW_PRIVATE", "")]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = photo_file(&dir);
    let args = [
        "--from",
        PHONE,
        "--wait",
        "60",
        "--media",
        &photo,
        "Studio wall",
    ];
    let (out, took) = dev_text_while(&app, &args, async {
        moments_recorded(&app, 1).await;
        app.drain_all().await;
    })
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        app.count("SELECT count(*) FROM moments WHERE media_state = 'failed'"),
        1
    );
    assert!(
        stderr.contains("The media could not be kept: refused:")
            && stderr.contains("MOMENTLINE_MEDIA_ALLOW_PRIVATE=1"),
        "{stderr}"
    );
    assert!(
        took < std::time::Duration::from_secs(30),
        "waited {took:?} of its 60 s although the fetch had failed for good"
    );
}

#[tokio::test]
async fn dev_text_says_a_photo_waits_for_its_caption_then_prints_the_link() {
    let app = spawn_verified_app_with_env(&[("MOMENTLINE_MERGE_SECS", "2")]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = photo_file(&dir);
    let args = ["--from", PHONE, "--wait", "60", "--media", &photo, ""];
    let (out, took) = dev_text_while(&app, &args, async {
        moments_recorded(&app, 1).await;
        app.drain_media().await;
        // The photo alone waits out its window for a caption, then is posted.
        tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
        app.drain_all().await;
    })
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("… the Moment is waiting")
            && stderr.contains("s for a caption to join it (MOMENTLINE_MERGE_SECS)"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("momentline -> {PHONE} (sent): Moment posted: ")),
        "{stdout}"
    );
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
}

#[tokio::test]
async fn dev_text_shows_a_reply_not_yet_sent_as_queued_and_says_why_it_stopped() {
    let app = spawn_verified_app().await;
    // Nothing sends the reply: it stays queued.
    let out = dev_text(&app, &["--from", PHONE, "--wait", "2", "HELP"])
        .output()
        .expect("runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("momentline -> {PHONE} (queued): Text a photo"))
            && !stdout.contains("unconfirmed"),
        "{stdout}"
    );
    // Told about prices, the artist is told the default too.
    assert!(stdout.contains("'price: 5' (USDC, default 1)"), "{stdout}");
    assert!(
        stderr.contains("… waiting for the reply to be sent")
            && stderr.contains("Stopped waiting after 2 s (--wait)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn dev_text_refused_as_unsigned_names_the_variable_the_server_needs() {
    let app = spawn_app_with_env(
        &[("TWILIO_AUTH_TOKEN", ""), ("VONAGE_SIGNATURE_SECRET", "")],
        |_| {},
    )
    .await;
    for (provider, variable) in [
        ("twilio", "TWILIO_AUTH_TOKEN"),
        ("vonage", "VONAGE_SIGNATURE_SECRET"),
    ] {
        let out = dev_text(&app, &["--from", PHONE, "--provider", provider, "hi"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{provider}");
        assert!(
            stderr.contains("HTTP 401")
                && stderr.contains(&format!("Start the server with {variable} set")),
            "{provider}: {stderr}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM messages"), 0);
}

#[test]
fn addr_is_a_flag_of_serve_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("addr.db");
    let added = momentline_on_file(&db, &["artists", "add", "--name", "Ada", "--addr", ":0"]);
    assert_fails_saying(&added, "unexpected argument '--addr'");
    let listed = momentline_on_file(&db, &["--addr", ":0", "keys", "list"]);
    assert_fails_saying(&listed, "--addr is the address `serve` listens on");
    let texted = momentline_on_file(&db, &["--addr", ":0", "dev", "text", "--from", PHONE, "hi"]);
    assert_fails_saying(&texted, "with --url");
    assert!(!db.exists(), "nothing was opened");

    let help =
        |args: &[&str]| String::from_utf8(momentline_on_file(&db, args).stdout).expect("utf-8");
    assert!(help(&["serve", "--help"]).contains("--addr <ADDR>"));
    for command in [
        &["artists", "add", "--help"][..],
        &["keys", "revoke", "--help"],
        &["backup", "--help"],
    ] {
        assert!(!help(command).contains("--addr <"), "{command:?}");
    }
    let dev_text_help = help(&["dev", "text", "--help"]);
    assert!(
        dev_text_help.contains("--url <URL>") && !dev_text_help.contains("--addr <"),
        "{dev_text_help}"
    );

    // `serve --addr` and `momentline --addr` are where the server listens: a public one is
    // refused to the dev phone, by name.
    for args in [
        &["serve", "--addr", "0.0.0.0:0"][..],
        &["--addr", "0.0.0.0:0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_momentline"))
            .args(args)
            .env_clear()
            .envs(clock_env())
            .env("MOMENTLINE_DB", &db)
            .env("MOMENTLINE_DEV_PHONE", "1")
            .env("RUST_LOG", "warn")
            .output()
            .expect("runs");
        assert_fails_saying(&out, "MOMENTLINE_DEV_PHONE");
    }
}
