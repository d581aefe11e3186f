//! Builds the application from settings: database, provider, HTTP server and outbox worker.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use tokio::sync::Notify;

use crate::config::{ProviderSettings, Settings};
use crate::db::{self, DbError, Pool};
use crate::media::{MediaKeeper, TwilioMediaAuth};
use crate::outbox::Outbox;
use crate::providers::{
    console::Console, phonify::Phonify, telnyx::Telnyx, textflow::TextFlow, twilio::Twilio,
    vonage::Vonage, Sender,
};
use crate::routes::{self, AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
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
}

pub struct Application {
    server: Server,
    port: u16,
    outbox: Outbox,
    media: MediaKeeper,
    pool: Pool,
    run_workers: bool,
}

impl Application {
    /// Opens the database and binds the listener; nothing runs until `run_until_stopped`.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool = db::open(&settings.db_path).map_err(|source| StartupError::Database {
            path: settings.db_path.display().to_string(),
            source,
        })?;
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
        let wake = Arc::new(Notify::new());
        let outbox = Outbox::new(
            pool.clone(),
            Arc::clone(&sender),
            settings.retry_schedule.clone(),
            Arc::clone(&wake),
        );
        let media_wake = Arc::new(Notify::new());
        let media = MediaKeeper::new(
            pool.clone(),
            reqwest::Client::builder()
                .timeout(crate::media::FETCH_TIMEOUT)
                .build()?,
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
            settings.retry_schedule.clone(),
            Arc::clone(&media_wake),
        );
        let run_workers = settings.run_workers;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            settings: Arc::new(settings),
            sender,
            outbox_wake: wake,
            media_wake,
        });
        let server = HttpServer::new(move || {
            App::new()
                // The path without its query: Vonage puts phone numbers in query strings.
                .wrap(
                    middleware::Logger::new("%{method}xi %U %s %b %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .app_data(state.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .listen(listener)
        .map_err(listen_error)?
        .run();
        tracing::info!(port, "momentline listening");
        Ok(Self {
            server,
            port,
            outbox,
            media,
            pool,
            run_workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The outbox, so a caller can drive rounds itself.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// The media keeper, so a caller can drive rounds itself.
    pub fn media(&self) -> MediaKeeper {
        self.media.clone()
    }

    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if self.run_workers {
            tokio::spawn(self.outbox.run());
            tokio::spawn(self.media.run());
        }
        self.server.await
    }
}
