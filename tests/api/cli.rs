//! The `momentline` binary: artists and keys from the command line.

use std::process::Command;

use crate::helpers::*;

fn momentline(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_momentline"))
        .args(args)
        .env_clear()
        .env("MOMENTLINE_DB", db)
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs")
}

#[tokio::test]
async fn artists_add_prints_a_key_that_works_and_revoke_stops_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("cli.db");
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

    let app = spawn_app_with(|s| s.db_path = db.clone()).await;
    let phones = app.get_as(key, "/api/phones").await;
    assert_eq!(phones.status(), 200);

    // The database keeps only a hash of it.
    let stored: i64 = {
        let conn = app.pool.get().expect("connection");
        conn.query_row(
            "SELECT count(*) FROM api_keys WHERE hash = ?1 OR prefix = ?1",
            [key],
            |r| r.get(0),
        )
        .expect("query")
    };
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
}

#[test]
fn artists_add_refuses_a_taken_name_or_a_bad_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("cli.db");
    assert!(momentline(&db, &["artists", "add", "--name", "Ada"])
        .status
        .success());
    let again = momentline(&db, &["artists", "add", "--name", "Ada"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let bad = momentline(
        &db,
        &["artists", "add", "--name", "Bo", "--address", "0x12"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--address"));
}

#[test]
fn a_missing_provider_credential_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .arg("serve")
        .env_clear()
        .env("MOMENTLINE_DB", dir.path().join("x.db"))
        .env("MOMENTLINE_SMS_PROVIDER", "telnyx")
        .env("TELNYX_FROM_NUMBER", "+18445550001")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TELNYX_API_KEY"));
}

#[tokio::test]
async fn serve_refuses_to_start_the_dev_phone_on_a_public_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .env_clear()
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
}
