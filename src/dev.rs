//! `momentline dev text`: plays a phone from the terminal. It signs and posts a webhook to the
//! running server exactly as the provider would, with the secret the server is configured
//! with (read from the same environment), serves an attached file on loopback for the
//! server to fetch, and prints the texts momentline answers with.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use rusqlite::{Connection, OpenFlags};

use crate::config::Settings;
use crate::db::sql::PgConn;
use crate::db::{params, Conn};
use crate::domain::ids::MessageId;
use crate::domain::phone_number::PhoneNumber;
use crate::providers::{twilio, vonage};
use crate::store::{Database, DbError};

/// Which provider's webhook to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DevProvider {
    Twilio,
    Vonage,
    Telnyx,
}

/// What to text.
#[derive(Debug, Clone)]
pub struct DevText {
    pub from: String,
    pub text: String,
    pub media: Option<PathBuf>,
    pub provider: DevProvider,
    /// Our number the text is sent to.
    pub to: Option<String>,
    /// Where the server listens; by default worked out from `MOMENTLINE_ADDR`.
    pub url: Option<String>,
    /// How long to wait for momentline's answers.
    pub wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{0}")]
    Usage(String),
    #[error("could not read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not serve the media file on loopback")]
    Serve(#[source] std::io::Error),
    #[error(
        "could not reach the server at {url} (is it running? set --url if it listens elsewhere)"
    )]
    Post {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the server answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("could not read the database to show the answers")]
    Database(#[from] DbError),
    #[error("could not make a message id")]
    Random(#[from] getrandom::Error),
}

/// Posts the text and prints what comes back.
pub async fn text(settings: &Settings, request: DevText) -> Result<(), DevError> {
    let from =
        PhoneNumber::parse(&request.from).map_err(|e| DevError::Usage(format!("--from: {e}")))?;
    let base = request
        .url
        .clone()
        .unwrap_or_else(|| local_url(&settings.addr));
    let to = request.to.clone().unwrap_or_else(|| DEFAULT_TO.to_owned());
    let media = match &request.media {
        Some(path) => Some(MediaFile::serve(path).await?),
        None => None,
    };
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)?;
    // Each provider's ids look like its own.
    let id =
        match request.provider {
            DevProvider::Twilio => format!("SMdev{}", hex::encode(id)),
            DevProvider::Vonage if media.is_some() => {
                return Err(DevError::Usage(
                    "--media needs --provider twilio: a Vonage photo comes through its Messages \
                 API, which `dev text` does not play"
                        .into(),
                ))
            }
            DevProvider::Vonage => format!("dev{}", hex::encode(id)),
            DevProvider::Telnyx => return Err(DevError::Usage(
                "Telnyx signs its webhooks with its own private key, which momentline never has \
                 (it holds only TELNYX_PUBLIC_KEY): play the phone with --provider twilio or \
                 vonage, or the dev phone page"
                    .into(),
            )),
        };
    let played = Played {
        base: &base,
        id: &id,
        from: from.as_str(),
        to: &to,
        text: &request.text,
    };
    let response = match request.provider {
        DevProvider::Vonage => post_vonage(settings, &played).await?,
        // Telnyx was refused above.
        _ => post_twilio(settings, &played, media.as_ref()).await?,
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if status != 200 {
        return Err(DevError::Refused { status, body });
    }
    eprintln!(
        "{} -> momentline: {:?} (taken: HTTP {status})",
        from.as_str(),
        request.text
    );
    let answered = show_answers(settings, &id, from.as_str(), request.wait).await?;
    if let Some(media) = media {
        // The fetch is a job of its own: the answers may come before it (a text sent while
        // the photo is fetched). The file is served until it is taken, or the wait is over.
        let deadline = Instant::now() + request.wait;
        while !media.fetched() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !media.fetched() {
            eprintln!(
                "The server has not fetched the attached file. It fetches media only from public \
                 addresses unless started with MOMENTLINE_MEDIA_ALLOW_PRIVATE=1, which playing a \
                 photo from this machine needs."
            );
        }
        media.stop().await;
    }
    if !answered {
        eprintln!("(no answer yet; `GET /api/messages` shows the conversation as it goes)");
    }
    Ok(())
}

/// Where texts are sent to when `--to` is not given.
const DEFAULT_TO: &str = "+18445550001";

/// The loopback URL of a listen address (`127.0.0.1:8080`, `:8080`, `0.0.0.0:8080`).
pub fn local_url(addr: &str) -> String {
    let port = addr.rsplit(':').next().unwrap_or("8080");
    let host = addr[..addr.len() - port.len()].trim_end_matches(':');
    let host = match host {
        "" | "0.0.0.0" | "[::]" => "127.0.0.1",
        other => other,
    };
    format!("http://{host}:{port}")
}

/// One text the phone plays: to the server at `base`, with the provider id `id`.
struct Played<'a> {
    base: &'a str,
    id: &'a str,
    from: &'a str,
    to: &'a str,
    text: &'a str,
}

async fn post_twilio(
    settings: &Settings,
    played: &Played<'_>,
    media: Option<&MediaFile>,
) -> Result<reqwest::Response, DevError> {
    let token = settings.twilio_auth_token.as_ref().ok_or_else(|| {
        DevError::Usage(
            "TWILIO_AUTH_TOKEN is not set: the server refuses every Twilio webhook without it. \
             Start the server with TWILIO_AUTH_TOKEN set (any value, e.g. dev) and run this \
             with the same"
                .into(),
        )
    })?;
    let mut params: Vec<(String, String)> = vec![
        ("MessageSid".into(), played.id.into()),
        ("From".into(), played.from.into()),
        ("To".into(), played.to.into()),
        ("Body".into(), played.text.into()),
        ("NumMedia".into(), "0".into()),
    ];
    if let Some(media) = media {
        params.retain(|(k, _)| k != "NumMedia");
        params.push(("NumMedia".into(), "1".into()));
        params.push(("MediaUrl0".into(), media.url.clone()));
        params.push(("MediaContentType0".into(), media.content_type.into()));
    }
    // Twilio signs the URL it was given: momentline's public one.
    let signed_url = format!("{}/webhooks/twilio", settings.public_url);
    let signature = twilio::signature(token.expose(), &signed_url, &params);
    post_form(
        format!("{}/webhooks/twilio", played.base),
        &params,
        Some(("X-Twilio-Signature", signature)),
    )
    .await
}

/// Posts a provider's form to the server, with the header that signs it if any.
async fn post_form(
    url: String,
    params: &[(String, String)],
    signed: Option<(&str, String)>,
) -> Result<reqwest::Response, DevError> {
    let mut request = reqwest::Client::new().post(&url).form(params);
    if let Some((name, value)) = signed {
        request = request.header(name, value);
    }
    request
        .send()
        .await
        .map_err(|source| DevError::Post { url, source })
}

async fn post_vonage(
    settings: &Settings,
    played: &Played<'_>,
) -> Result<reqwest::Response, DevError> {
    let secret = settings.vonage_signature.as_ref().ok_or_else(|| {
        DevError::Usage(
            "VONAGE_SIGNATURE_SECRET is not set: the server refuses every Vonage webhook \
             without it. Start the server with it set and run this with the same"
                .into(),
        )
    })?;
    let now = chrono::Utc::now();
    let mut params: Vec<(String, String)> = vec![
        ("msisdn".into(), played.from.trim_start_matches('+').into()),
        ("to".into(), played.to.trim_start_matches('+').into()),
        ("messageId".into(), played.id.into()),
        ("text".into(), played.text.into()),
        ("type".into(), "text".into()),
        (
            "message-timestamp".into(),
            now.format("%Y-%m-%d %H:%M:%S").to_string(),
        ),
        ("timestamp".into(), now.timestamp().to_string()),
        ("nonce".into(), played.id.into()),
    ];
    let sig = vonage::signature(secret, &params);
    params.push(("sig".into(), sig));
    post_form(format!("{}/webhooks/vonage", played.base), &params, None).await
}

/// Prints momentline's texts to `phone` that answer the message `id`, until none is still
/// on its way or `wait` is over. Answers whether any came.
async fn show_answers(
    settings: &Settings,
    id: &str,
    phone: &str,
    wait: Duration,
) -> Result<bool, DevError> {
    if wait.is_zero() {
        return Ok(false);
    }
    // Polled with a blocking client (PostgreSQL's cannot run on an async thread), off the
    // async threads, which meanwhile serve the media file.
    let (database, id, phone) = (settings.database(), id.to_owned(), phone.to_owned());
    tokio::task::spawn_blocking(move || match database {
        Database::Sqlite(path) => {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(DbError::from)?;
            conn.busy_timeout(Duration::from_secs(5))
                .map_err(DbError::from)?;
            print_answers(&Conn::sqlite(&conn), &id, &phone, wait)
        }
        Database::Postgres(url) => {
            let client = postgres::Client::connect(&url, postgres::NoTls).map_err(DbError::from)?;
            let mut conn = PgConn::new(client);
            let (client, cache) = conn.split();
            print_answers(&Conn::postgres(client, cache), &id, &phone, wait)
        }
    })
    .await
    .map_err(|e| DbError::Task(e.to_string()))?
}

/// `show_answers`' polling, on a connection to either engine; blocks.
fn print_answers(conn: &Conn, id: &str, phone: &str, wait: Duration) -> Result<bool, DevError> {
    let started = Instant::now();
    let mut shown = 0;
    let mut received: Option<MessageId> = None;
    while started.elapsed() < wait {
        if received.is_none() {
            received = conn.query_opt(
                "SELECT id FROM messages WHERE direction = 'inbound' AND provider_message_id = ?1",
                &[id],
                |r| r.get(0),
            )?;
        }
        if let Some(message) = received {
            let answers: Vec<(String, String)> = conn.query_map(
                "SELECT body, state FROM messages
                 WHERE direction = 'outbound' AND phone = ?1 AND id > ?2 ORDER BY id",
                params![phone, message],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            for (body, state) in answers.iter().skip(shown) {
                println!("momentline -> {phone} ({state}): {body}");
            }
            shown = shown.max(answers.len());
            let waiting: i64 = conn.query_value(
                "SELECT (SELECT count(*) FROM moments WHERE message_id = ?1 AND state = 'pending')
                      + (SELECT count(*) FROM jobs WHERE queue = ?2 AND state IN ('queued', 'running'))",
                params![message, phone],
            )?;
            if waiting == 0 && (shown > 0 || started.elapsed() > Duration::from_secs(2)) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(shown > 0)
}

/// A file served once on loopback, for the server to fetch as a provider's media.
struct MediaFile {
    url: String,
    content_type: &'static str,
    server: actix_web::dev::ServerHandle,
    fetched: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl MediaFile {
    async fn serve(path: &Path) -> Result<Self, DevError> {
        let content_type = content_type_of(path).ok_or_else(|| {
            DevError::Usage(format!(
                "--media {}: give a .png, .jpg, .jpeg, .gif, .webp, .mp3, .m4a, .wav or .pdf file",
                path.display()
            ))
        })?;
        let bytes = std::fs::read(path).map_err(|source| DevError::Read {
            path: path.to_owned(),
            source,
        })?;
        let fetched = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::sync::Arc::clone(&fetched);
        let body = web::Bytes::from(bytes);
        let server = HttpServer::new(move || {
            let (body, seen) = (body.clone(), std::sync::Arc::clone(&seen));
            App::new().default_service(web::to(move || {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                let body = body.clone();
                async move { HttpResponse::Ok().content_type(content_type).body(body) }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .map_err(DevError::Serve)?;
        let port = server
            .addrs()
            .first()
            .map(std::net::SocketAddr::port)
            .unwrap_or_default();
        let running = server.run();
        let handle = running.handle();
        tokio::spawn(running);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("media");
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/{name}"),
            content_type,
            server: handle,
            fetched,
        })
    }

    fn fetched(&self) -> bool {
        self.fetched.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn stop(self) {
        // Graceful: a fetch under way gets its whole file.
        self.server.stop(true).await;
    }
}

fn content_type_of(path: &Path) -> Option<&'static str> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_address_becomes_a_loopback_url() {
        assert_eq!(local_url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(local_url(":9000"), "http://127.0.0.1:9000");
        assert_eq!(local_url("0.0.0.0:80"), "http://127.0.0.1:80");
        assert_eq!(local_url("[::]:8080"), "http://127.0.0.1:8080");
        assert_eq!(local_url("[::1]:8080"), "http://[::1]:8080");
    }
}
