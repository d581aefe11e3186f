//! momentline reaching PostgreSQL over TLS, as `sslmode` and `sslrootcert` in
//! `MOMENTLINE_DATABASE_URL` say.
//!
//! These need the test server started with `scripts/postgres start --tls` (as `.ci/run` does):
//! TLS on, a certificate for the name `localhost` only, signed by a CA of its own, and a role
//! `tls` that may connect over TLS only. `MOMENTLINE_TEST_POSTGRES_TLS` names the directory
//! with its `ca.pem` and `other-ca.pem` (`scripts/postgres tls URL` prints it). Without them
//! they are skipped, said, except under `CI`, where they fail.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::helpers::*;
use crate::instances::postgres_server_for;
use crate::process::Site;

/// The directory holding the test server's CAs, when it was started with TLS.
fn tls_files(test: &str) -> Option<PathBuf> {
    if !postgres_server_for(test) {
        return None;
    }
    let dir = std::env::var_os("MOMENTLINE_TEST_POSTGRES_TLS").map(PathBuf::from);
    match dir.filter(|d| d.join("ca.pem").is_file()) {
        Some(dir) => Some(dir),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run {test}, but MOMENTLINE_TEST_POSTGRES_TLS names no directory with \
                 a ca.pem (.ci/run starts the server with `scripts/postgres start --tls`)"
            );
            eprintln!(
                "{test}: skipped, the test server has no TLS (start it with `scripts/postgres \
                 start --tls` and set MOMENTLINE_TEST_POSTGRES_TLS=$(scripts/postgres tls URL))"
            );
            None
        }
    }
}

/// A new database's URL for the role that must use TLS, at `host`, with `options`.
fn tls_url(database: &PgDatabase, host: &str, options: &str) -> String {
    let (_, rest) = database.url.split_once('@').expect("a URL with a user");
    let (_, path) = rest.split_once('/').expect("a URL with a database");
    let port = rest
        .split('/')
        .next()
        .and_then(|authority| authority.rsplit_once(':'))
        .map(|(_, port)| port)
        .expect("a URL with a port");
    let path = path.split('?').next().unwrap_or(path);
    format!("postgres://tls@{host}:{port}/{path}?{options}")
}

/// `momentline serve` on `url`, which must not start: what it said.
fn refused(url: &str) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_momentline"))
        .env_clear()
        .envs(clock_env())
        .env("MOMENTLINE_DB", dir.path().join("unused.db"))
        .env("MOMENTLINE_DATABASE_URL", url)
        .env("MOMENTLINE_ADDR", "127.0.0.1:0")
        .env("MOMENTLINE_MEDIA_DIR", dir.path().join("media"))
        .output()
        .expect("serve runs");
    assert!(!out.status.success(), "serve started on {url}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Serves on `url`, waits until a write commits (`/readyz`), and gives the start-up line
/// about the database connection.
async fn serves(url: String) -> String {
    let site = Site::on(Some(url)).await;
    let served = site.serve(&[]).await;
    let ready = reqwest::get(format!("{}/readyz", served.address))
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 200, "a write commits over the connection");
    let lines = served.lines.lock().expect("lines").clone();
    lines
        .iter()
        .find(|l| l.contains("database connection"))
        .unwrap_or_else(|| panic!("no line about the connection: {lines:#?}"))
        .clone()
}

#[tokio::test]
async fn require_connects_encrypted_without_checking_the_certificate() {
    let Some(_) = tls_files("tls_require") else {
        return;
    };
    let database = PgDatabase::create();
    let said = serves(tls_url(&database, "127.0.0.1", "sslmode=require")).await;
    assert!(
        said.contains("database connection encrypted (TLSv1."),
        "{said}"
    );
    assert!(
        said.contains("sslmode=require: the server's certificate is not checked"),
        "{said}"
    );
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_connects_and_with_another_is_refused() {
    let Some(files) = tls_files("tls_verify_full") else {
        return;
    };
    let database = PgDatabase::create();
    let ca = files.join("ca.pem");
    let said = serves(tls_url(
        &database,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ))
    .await;
    assert!(
        said.contains("database connection encrypted (TLSv1."),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "sslmode=verify-full: certificate and host name checked against {}",
            ca.display()
        )),
        "{said}"
    );

    let other = files.join("other-ca.pem");
    let said = refused(&tls_url(
        &database,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", other.display()),
    ));
    assert!(
        said.contains("the server's certificate is not signed by a CA trusted here"),
        "{said}"
    );
    assert!(said.contains(&other.display().to_string()), "{said}");
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_issued_for_another_name_which_verify_ca_takes() {
    let Some(files) = tls_files("tls_names") else {
        return;
    };
    let database = PgDatabase::create();
    let ca = files.join("ca.pem").display().to_string();
    // The certificate names localhost, not 127.0.0.1.
    let said = refused(&tls_url(
        &database,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    assert!(
        said.contains("the server's certificate was not issued for the host in the URL"),
        "{said}"
    );
    let said = serves(tls_url(
        &database,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await;
    assert!(
        said.contains(&format!(
            "sslmode=verify-ca: certificate checked against {ca}, not its host name"
        )),
        "{said}"
    );
}

#[tokio::test]
async fn disable_against_a_server_that_demands_tls_fails_saying_so() {
    let Some(_) = tls_files("tls_disable") else {
        return;
    };
    let database = PgDatabase::create();
    let said = refused(&tls_url(&database, "127.0.0.1", "sslmode=disable"));
    assert!(said.contains("no encryption"), "{said}");
    assert!(
        said.contains("the server requires TLS: set sslmode=verify-full"),
        "{said}"
    );
    // Not a wait for a pool that never fills: the refusal is said at once.
    let started = std::time::Instant::now();
    refused(&tls_url(&database, "127.0.0.1", "sslmode=disable"));
    assert!(started.elapsed() < Duration::from_secs(5));
}
