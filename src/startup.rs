//! Builds the application from settings: database, provider, HTTP server and jobs runner, and
//! runs them together until a signal or a failure stops them.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use tokio_util::sync::CancellationToken;

use crate::config::{DispatchSettings, ProviderSettings, Settings};
use crate::db::DbError;
use crate::events::Events;
use crate::flows::connect::ConnectSettings;
use crate::flows::inbound::ReceiveSettings;
use crate::host::embedded::Embedded;
use crate::host::webhook::Webhook;
use crate::host::{Endpoint, Host};
use crate::jobs::{JobContext, Pacer, Runner, RunnerSettings};
use crate::media::{MediaKeeper, TwilioMediaAuth};
use crate::metrics::Metrics;
use crate::providers::{
    console::Console, phonify::Phonify, telnyx::Telnyx, textflow::TextFlow, twilio::Twilio,
    vonage::Vonage, Sender,
};
use crate::routes::{self, AppState};
use crate::store::{Store, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// What stops the service before anything is opened, every problem on a line.
    #[error("{}", .0.join("\n"))]
    Preflight(Vec<String>),
    #[error("could not open the database {path}")]
    Database {
        path: String,
        #[source]
        source: DbError,
    },
    #[error("could not listen on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not build the HTTP client")]
    HttpClient(#[from] reqwest::Error),
    #[error("could not release the claims of an earlier run")]
    Release(#[source] WriteError),
    #[error("no randomness for the runner's name")]
    Random(#[from] getrandom::Error),
    #[error("could not set up the metrics")]
    Metrics(#[from] prometheus::Error),
}

/// Why the service stopped on its own, without being asked to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the HTTP server stopped with an error")]
    Server(#[source] std::io::Error),
    #[error("the HTTP server failed")]
    ServerTask(#[source] tokio::task::JoinError),
    #[error("the jobs runner stopped unexpectedly")]
    Runner(#[source] tokio::task::JoinError),
}

pub struct Application {
    server: Server,
    port: u16,
    /// What start-up tells the operator once it listens.
    summary: Vec<(tracing::Level, String)>,
    store: Store,
    runner: Runner,
    run_workers: bool,
}

impl Application {
    /// Opens the database, releases claims an earlier run left, and binds the listener;
    /// nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let problems = preflight(&settings);
        if !problems.is_empty() {
            return Err(StartupError::Preflight(problems));
        }
        let store =
            Store::open_database(&settings.database(), settings.writer).map_err(|source| {
                StartupError::Database {
                    path: settings.database_name(),
                    source,
                }
            })?;
        let metrics = Arc::new(Metrics::new(store.writer_stats())?);
        let http = reqwest::Client::builder()
            .timeout(settings.provider_timeout)
            .build()?;
        let sender = Arc::new(match &settings.provider {
            ProviderSettings::Console => Sender::Console(Console),
            ProviderSettings::Telnyx(c) => Sender::Telnyx(Telnyx::new(c.clone(), http.clone())),
            ProviderSettings::Twilio(c) => Sender::Twilio(Twilio::new(c.clone(), http.clone())),
            ProviderSettings::Vonage(c) => Sender::Vonage(Vonage::new(c.clone(), http.clone())),
            ProviderSettings::TextFlow(c) => {
                Sender::TextFlow(TextFlow::new(c.clone(), http.clone()))
            }
            ProviderSettings::Phonify(c) => Sender::Phonify(Phonify::new(c.clone(), http.clone())),
        });
        let addr = settings.addr.clone();
        let listen_error = |source| StartupError::Listen {
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&settings.addr).map_err(listen_error)?;
        let port = listener.local_addr().map_err(listen_error)?.port();
        let media = MediaKeeper::new(
            settings.media_dir.clone(),
            settings
                .twilio_account_sid
                .clone()
                .zip(settings.twilio_auth_token.clone())
                .map(|(sid, token)| TwilioMediaAuth {
                    account_sid: sid,
                    auth_token: token,
                    api_base: settings.twilio_api_base.clone(),
                }),
            settings.media_allow_private,
        )?;
        let dev_phone = settings.dev_phone;
        if dev_phone {
            tracing::warn!("MOMENTLINE_DEV_PHONE is set: /dev/phone texts as any number without a key; for development only");
        }
        if settings.media_allow_private {
            tracing::warn!("MOMENTLINE_MEDIA_ALLOW_PRIVATE is set: media may be fetched from this machine and its network");
        }
        let host = match &settings.dispatch {
            DispatchSettings::Embedded => {
                Host::Embedded(Embedded::new(settings.public_url.clone()))
            }
            DispatchSettings::Webhook { url, secret } => Host::Webhook(Webhook::new(
                url.clone(),
                secret.clone(),
                settings.provider_timeout,
            )?),
        };
        let events = settings
            .events
            .as_ref()
            .map(|e| Endpoint::new(e.url.clone(), e.secret.clone(), settings.provider_timeout))
            .transpose()?;
        let events_on = Events::when(events.is_some());
        let runner = Runner::new(
            JobContext {
                store: store.clone(),
                sender: Arc::clone(&sender),
                pacer: Pacer::new(settings.send_rate),
                media,
                public_url: settings.public_url.clone(),
                host: host.clone(),
                events,
                code_ttl: settings.code_ttl,
                metrics: Arc::clone(&metrics),
            },
            RunnerSettings {
                concurrency: settings.job_concurrency,
                lease: settings.job_lease,
                schedule: settings.retry_schedule.clone(),
                grace: settings.shutdown_grace,
            },
        )?;
        runner
            .release_stale_claims()
            .await
            .map_err(StartupError::Release)?;
        let run_workers = settings.run_workers;
        let grace_secs = settings.shutdown_grace.as_secs();
        let state = web::Data::new(AppState {
            store: store.clone(),
            pool: store.reads(),
            receive: Arc::new(ReceiveSettings {
                manage_url: settings.manage_url.clone(),
                pending_ttl: settings.pending_ttl,
                reply_limits: settings.reply_limits,
                sender: sender.name(),
                host: host.clone(),
                events: events_on,
                merge_window: settings.merge_window,
            }),
            connect: Arc::new(ConnectSettings {
                pending_ttl: settings.pending_ttl,
                limits: settings.connect_limits,
                sender: sender.name(),
                sender_number: sender.default_from().map(str::to_owned),
                events: events_on,
                receives_replies: sender.receives_replies(),
                code_ttl: settings.code_ttl,
            }),
            settings: Arc::new(settings),
            runner: runner.clone(),
            sender: Arc::clone(&sender),
            metrics,
        });
        let summary = summary(&state.settings, port, &sender, events_on);
        let server = HttpServer::new(move || {
            App::new()
                // The path without its query: Vonage puts phone numbers in query strings.
                .wrap(
                    middleware::Logger::new("%{method}xi %U %s %b %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .app_data(state.clone())
                .configure(routes::configure)
                .configure(|cfg| {
                    if dev_phone {
                        routes::configure_dev_phone(cfg);
                    }
                })
                .default_service(web::to(routes::not_found))
        })
        // Signals are handled in `run_until_stopped`, which stops the server and the runner
        // in order.
        .disable_signals()
        .shutdown_timeout(grace_secs)
        .listen(listener)
        .map_err(listen_error)?
        .run();
        Ok(Self {
            server,
            port,
            summary,
            store,
            runner,
            run_workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The jobs runner, so a caller can drive rounds itself.
    pub fn runner(&self) -> Runner {
        self.runner.clone()
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Serves until SIGTERM or Ctrl-C, or until the server or the runner fails. On a signal:
    /// the server stops taking requests and finishes those it has, then the runner stops
    /// claiming, lets running jobs finish within the grace period and releases the rest.
    pub async fn run_until_stopped(self) -> Result<(), RunError> {
        // Listening for SIGTERM before saying so: a service manager may send it at once.
        let signalled = shutdown_signal();
        tracing::info!(
            port = self.port,
            version = env!("CARGO_PKG_VERSION"),
            "momentline listening"
        );
        for (level, line) in &self.summary {
            if *level == tracing::Level::WARN {
                tracing::warn!("{line}");
            } else {
                tracing::info!("{line}");
            }
        }
        let stop = CancellationToken::new();
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let mut runner = if self.run_workers {
            tokio::spawn(self.runner.clone().run(stop.clone()))
        } else {
            // Tests drive the runner round by round.
            tokio::spawn(std::future::pending())
        };
        let outcome = tokio::select! {
            () = signalled => {
                tracing::info!("shutting down: no new requests; finishing running jobs");
                Ok(())
            }
            served = &mut server => {
                let stopped = match served {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(RunError::Server(e)),
                    Err(e) => Err(RunError::ServerTask(e)),
                };
                tracing::error!("the HTTP server stopped; stopping the jobs runner");
                stopped
            }
            ran = &mut runner => {
                tracing::error!("the jobs runner stopped; stopping the HTTP server");
                ran.map_err(RunError::Runner)
            }
        };
        // The runner stops claiming at once and finishes its jobs while the server finishes
        // its requests; both within the grace period.
        stop.cancel();
        handle.stop(true).await;
        if self.run_workers {
            let _ = runner.await;
        } else {
            runner.abort();
        }
        let stats = self.store.writer_stats();
        let (batches, writes) = (
            stats.batches.load(Ordering::Relaxed),
            stats.writes.load(Ordering::Relaxed),
        );
        tracing::info!(
            writes,
            batches,
            largest_batch = stats.largest_batch.load(Ordering::Relaxed),
            "momentline stopped"
        );
        outcome
    }
}

/// SIGTERM (what service managers and container runtimes send) or Ctrl-C. SIGTERM is
/// listened for from the call on, before the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        #[cfg(unix)]
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops momentline");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Every problem with the database path, the media directory and the listen address, found
/// before anything is opened or bound, each with what to do about it.
pub fn preflight(settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    if settings.database_url.is_none() {
        problems.extend(database_problems(&settings.db_path));
    }
    let media = &settings.media_dir;
    if media.exists() && !media.is_dir() {
        problems.push(format!(
            "MOMENTLINE_MEDIA_DIR {} is a file, not a directory",
            media.display()
        ));
    } else {
        // The directory, or the nearest one above it that exists (the rest is created).
        let existing = media
            .ancestors()
            .map(|a| {
                if a.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    a
                }
            })
            .find(|a| a.is_dir());
        match existing {
            Some(dir) if writable(dir) => {}
            Some(dir) => problems.push(format!(
                "MOMENTLINE_MEDIA_DIR {}: cannot write in {}; give access, or point \
                 MOMENTLINE_MEDIA_DIR elsewhere",
                media.display(),
                dir.display()
            )),
            None => problems.push(format!(
                "MOMENTLINE_MEDIA_DIR {}: no directory on its path exists",
                media.display()
            )),
        }
    }
    if settings.dev_phone
        && !settings.dev_phone_forced
        && !crate::config::listens_on_loopback(&settings.addr)
    {
        problems.push(format!(
            "MOMENTLINE_DEV_PHONE: the dev phone lets anyone who reaches it text as any number, \
             and MOMENTLINE_ADDR ({}) is not a loopback address; listen on 127.0.0.1, or set \
             MOMENTLINE_DEV_PHONE=force to serve it anyway",
            settings.addr
        ));
    }
    use std::net::ToSocketAddrs;
    if settings
        .addr
        .to_socket_addrs()
        .map_or(true, |mut a| a.next().is_none())
    {
        problems.push(format!(
            "MOMENTLINE_ADDR '{}' is not an address to listen on: give host:port, e.g. \
             127.0.0.1:8080, or :8080 for every interface",
            settings.addr
        ));
    }
    problems
}

/// What stops momentline from opening or creating the database at `db`, if anything.
pub fn database_problems(db: &std::path::Path) -> Vec<String> {
    let mut problems = Vec::new();
    if db.is_dir() {
        problems.push(format!(
            "MOMENTLINE_DB {} is a directory: give the path of a database file in it, e.g. {}",
            db.display(),
            db.join("momentline.db").display()
        ));
    } else if db.exists() {
        let read_only = std::fs::metadata(db).map(|m| m.permissions().readonly());
        if read_only.unwrap_or(true) {
            problems.push(format!(
                "MOMENTLINE_DB {} cannot be written: give momentline write access to it",
                db.display()
            ));
        }
    } else {
        let parent = match db.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if !parent.is_dir() {
            problems.push(format!(
                "MOMENTLINE_DB {}: the directory {} does not exist; create it, or point \
                 MOMENTLINE_DB elsewhere",
                db.display(),
                parent.display()
            ));
        } else if !writable(&parent) {
            problems.push(format!(
                "MOMENTLINE_DB {}: cannot create the database in {} (no write access); \
                 give access, or point MOMENTLINE_DB elsewhere",
                db.display(),
                parent.display()
            ));
        }
    }
    problems
}

/// Whether a file can be made in `dir`, answered by making one.
fn writable(dir: &std::path::Path) -> bool {
    // Named by process and call: two checks at once never take each other's file.
    static CHECKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CHECKS.fetch_add(1, Ordering::Relaxed);
    let probe = dir.join(format!(".momentline-check-{}-{call}", std::process::id()));
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .is_ok();
    if made {
        let _ = std::fs::remove_file(&probe);
    }
    made
}

/// What start-up tells the operator: where it serves, what it sends with, which webhooks
/// accept requests, the limits; and warnings for what will not work as configured.
fn summary(
    settings: &Settings,
    port: u16,
    sender: &Sender,
    events: Events,
) -> Vec<(tracing::Level, String)> {
    use tracing::Level;
    let mut lines = Vec::new();
    let mut say = |level: Level, line: String| lines.push((level, line));
    let public = &settings.public_url;
    say(
        Level::INFO,
        format!(
            "address {} (port {port}); public URL {public}",
            settings.addr
        ),
    );
    say(
        Level::INFO,
        format!(
            "database {} {} (schema version {}); media in {}",
            if settings.database_url.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            },
            settings.database_name(),
            crate::store::migrations::VERSION,
            settings.media_dir.display()
        ),
    );
    let provider = sender.name();
    say(
        Level::INFO,
        match provider {
            "console" => "provider console: texts are written to this log, not sent".to_owned(),
            name => format!("provider {name}: texts are sent through its API"),
        },
    );
    let webhooks = [
        (
            "telnyx",
            settings.telnyx_public_key.is_some(),
            "TELNYX_PUBLIC_KEY",
        ),
        (
            "twilio",
            settings.twilio_auth_token.is_some(),
            "TWILIO_AUTH_TOKEN",
        ),
        (
            "vonage",
            settings.vonage_signature.is_some(),
            "VONAGE_SIGNATURE_SECRET",
        ),
    ];
    for (name, on, secret) in webhooks {
        let url = format!("{public}/webhooks/{name}");
        if on {
            say(Level::INFO, format!("webhook {url}: on"));
        } else {
            // The configured provider's replies cannot arrive: worth a warning.
            let level = if name == provider {
                Level::WARN
            } else {
                Level::INFO
            };
            say(
                level,
                format!("webhook {url}: off, every request refused (401) until {secret} is set"),
            );
        }
    }
    say(
        Level::INFO,
        match &settings.dispatch {
            DispatchSettings::Embedded => "Moments are created here (embedded)".to_owned(),
            DispatchSettings::Webhook { url, .. } => {
                format!("Moments are created on the host at {url}")
            }
        },
    );
    say(
        Level::INFO,
        match (&settings.events, events) {
            (Some(e), Events::ON) => format!("events go to {}", e.url),
            _ => "events: off".to_owned(),
        },
    );
    let c = &settings.connect_limits;
    let r = &settings.reply_limits;
    say(
        Level::INFO,
        format!(
            "limits: {} texts/s; {} jobs at once; a number gets a prompt at most every {} s and \
             {} a day; an artist causes {} an hour; {} replies and {} reminders a number an \
             hour; merge window {} s",
            settings
                .send_rate
                .map_or_else(|| "unlimited".to_owned(), |r| r.to_string()),
            settings.job_concurrency,
            c.prompt_cooldown.num_seconds(),
            c.prompts_per_day,
            c.connects_per_hour,
            r.replies_per_hour,
            r.reminders_per_hour,
            settings.merge_window.num_seconds(),
        ),
    );
    if let Some(warning) = public_port_warning(public, port) {
        say(Level::WARN, warning);
    }
    if provider != "console" && public_is_loopback(public) {
        say(
            Level::WARN,
            format!(
                "MOMENTLINE_PUBLIC_URL {public} is on this machine, but texts go through \
                 {provider}: its webhooks cannot reach that URL, Twilio's signatures are made \
                 over the public URL (401 until it matches), and Moment links will not open \
                 on phones; set MOMENTLINE_PUBLIC_URL to the address the internet reaches"
            ),
        );
    }
    lines
}

/// Whether a URL names this machine.
fn public_is_loopback(public_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(public_url) else {
        return false;
    };
    url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// A public URL on this machine whose port is not the one momentline listens on: its links
/// do not open, and Twilio's signatures (made over that URL) will not match.
fn public_port_warning(public_url: &str, port: u16) -> Option<String> {
    let url = reqwest::Url::parse(public_url).ok()?;
    let loopback = public_is_loopback(public_url);
    let named = url.port_or_known_default()?;
    (loopback && named != port).then(|| {
        format!(
            "MOMENTLINE_PUBLIC_URL {public_url} names port {named}, but momentline listens on \
             {port}: links will not open and Twilio webhooks will be refused (401, the signature \
             is made over the public URL); set MOMENTLINE_PUBLIC_URL to http://127.0.0.1:{port}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect("settings")
    }

    #[test]
    fn every_problem_with_paths_and_address_is_found_before_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").expect("file");
        let missing = dir.path().join("no/such/dir/momentline.db");
        let s = settings(&[
            ("MOMENTLINE_DB", missing.to_str().expect("utf-8")),
            ("MOMENTLINE_MEDIA_DIR", file.to_str().expect("utf-8")),
            ("MOMENTLINE_ADDR", "no-port-here"),
        ]);
        let problems = preflight(&s);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("MOMENTLINE_DB") && problems[0].contains("does not exist"));
        assert!(
            problems[1].starts_with("MOMENTLINE_MEDIA_DIR") && problems[1].contains("is a file")
        );
        assert!(problems[2].starts_with("MOMENTLINE_ADDR"));

        let s = settings(&[("MOMENTLINE_DB", dir.path().to_str().expect("utf-8"))]);
        assert!(preflight(&s)[0].contains("is a directory"));

        // Relative paths (the defaults) are checked from the working directory.
        let relative = settings(&[("MOMENTLINE_ADDR", "127.0.0.1:0")]);
        assert!(
            preflight(&relative).is_empty(),
            "{:?}",
            preflight(&relative)
        );

        let fine = dir.path().join("momentline.db");
        let s = settings(&[
            ("MOMENTLINE_DB", fine.to_str().expect("utf-8")),
            ("MOMENTLINE_ADDR", "127.0.0.1:0"),
        ]);
        assert!(preflight(&s).is_empty(), "{:?}", preflight(&s));
    }

    #[test]
    fn serve_refuses_the_dev_phone_on_a_network_address_unless_forced() {
        for addr in [
            "0.0.0.0:8080",
            ":8080",
            "[::]:8080",
            "192.168.1.5:80",
            "m.example:80",
        ] {
            let on = settings(&[("MOMENTLINE_DEV_PHONE", "1"), ("MOMENTLINE_ADDR", addr)]);
            let problems = preflight(&on);
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with("MOMENTLINE_DEV_PHONE")
                        && p.contains("MOMENTLINE_ADDR")
                        && p.contains("force")),
                "{addr}: {problems:?}"
            );
            let forced = settings(&[("MOMENTLINE_DEV_PHONE", "force"), ("MOMENTLINE_ADDR", addr)]);
            assert!(
                !preflight(&forced)
                    .iter()
                    .any(|p| p.starts_with("MOMENTLINE_DEV_PHONE")),
                "{addr}"
            );
        }
        let local = settings(&[
            ("MOMENTLINE_DEV_PHONE", "1"),
            ("MOMENTLINE_ADDR", "127.0.0.1:0"),
        ]);
        assert!(preflight(&local).is_empty(), "{:?}", preflight(&local));
    }

    #[test]
    fn a_public_url_on_this_machine_with_another_port_is_warned_of() {
        let warned = public_port_warning("http://127.0.0.1:8080", 9000).expect("a warning");
        assert!(warned.contains("http://127.0.0.1:9000"), "{warned}");
        assert!(public_port_warning("http://localhost", 8080).is_some());
        assert!(public_port_warning("http://[::1]:8080", 8081).is_some());
        assert_eq!(public_port_warning("http://127.0.0.1:8080", 8080), None);
        assert_eq!(public_port_warning("https://moments.example", 8080), None);
    }
}
