//! Builds the application from settings: database, provider, HTTP server and jobs runner, and
//! runs them together until a signal or a failure stops them.

mod lock;
mod preflight;
mod summary;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use tokio_util::sync::CancellationToken;

use crate::config::{DispatchSettings, Settings};
use crate::db::DbError;
use crate::events::Events;
use crate::flows::connect::ConnectSettings;
use crate::flows::inbound::ReceiveSettings;
use crate::host::embedded::Embedded;
use crate::host::inprocess::InProcess;
use crate::host::webhook::Webhook;
use crate::host::{Endpoint, Host};
use crate::jobs::{JobContext, Pacer, Runner, RunnerSettings};
use crate::media::{MediaKeeper, TwilioMediaAuth};
use crate::metrics::Metrics;
use crate::providers::Sender;
use crate::routes::{self, AppState};
use crate::store::{Store, WriteError};
pub use preflight::{database_problems, media_problems, preflight};
use summary::summary;

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
    #[error(transparent)]
    Locked(#[from] lock::LockError),
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
    /// On SQLite, the file's lock: held while the server runs.
    _lock: Option<lock::ServerLock>,
}

impl Application {
    /// Opens the database, releases claims an earlier run left, and binds the listener;
    /// nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let problems = preflight(&settings);
        if !problems.is_empty() {
            return Err(StartupError::Preflight(problems));
        }
        // One server per SQLite file: a second is refused before it opens anything.
        let lock = match settings.database_url {
            None => Some(lock::ServerLock::take(&settings.db_path)?),
            Some(_) => None,
        };
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
        let sender = Arc::new(Sender::new(&settings.provider, http));
        let addr = settings.addr.clone();
        let listen_error = |source| StartupError::Listen {
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&settings.addr).map_err(listen_error)?;
        let bound = listener.local_addr().map_err(listen_error)?;
        let port = bound.port();
        if let Some(lock) = &lock {
            lock.say_address(&bound.to_string())?;
        }
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
            DispatchSettings::InProcess(inprocess) => {
                // The settings refuse inprocess without it.
                let sealing = settings.secret_key.clone().ok_or_else(|| {
                    StartupError::Preflight(vec![
                        "MOMENTLINE_SECRET_KEY must be set when MOMENTLINE_DISPATCH is inprocess"
                            .into(),
                    ])
                })?;
                Host::InProcess(Box::new(InProcess::new(
                    inprocess.clone(),
                    sealing,
                    store.clone(),
                    settings.public_url.clone(),
                )?))
            }
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
        let summary = summary(
            &state.settings,
            port,
            &sender,
            events_on,
            store.connection_security(),
        );
        let server = HttpServer::new(move || {
            App::new()
                // The path without its query: Vonage puts phone numbers in query strings.
                .wrap(
                    middleware::Logger::new("%{method}xi %U %s %b %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                // Outermost: the request's own line above is logged with its id too.
                .wrap(middleware::from_fn(routes::request_id::tag))
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
            _lock: lock,
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
            statements = stats.statements.load(Ordering::Relaxed),
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
