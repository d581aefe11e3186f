//! `momentline dev text`: plays a phone from the terminal. It signs and posts a webhook to the
//! running server exactly as the provider would, with the secret the server is configured
//! with (read from the same environment), serves an attached file on loopback for the
//! server to fetch, and prints the texts momentline answers with, saying what it waits for
//! meanwhile and stopping once the outcome is known.

mod awaited;
mod follow;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};

use crate::config::Settings;
use crate::domain::phone_number::PhoneNumber;
use crate::providers::{twilio, vonage};
use crate::store::DbError;
use follow::{follow, Followed};

/// Which provider's webhook to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DevProvider {
    Twilio,
    Vonage,
    Telnyx,
}

impl DevProvider {
    /// The provider's name, as momentline records its messages.
    fn name(self) -> &'static str {
        match self {
            Self::Twilio => twilio::NAME,
            Self::Vonage => vonage::NAME,
            Self::Telnyx => crate::providers::telnyx::NAME,
        }
    }

    /// The server's setting its webhook is signed with, and what else must match for the
    /// signature to.
    fn signed_with(self) -> (&'static str, &'static str) {
        match self {
            Self::Twilio => (
                "TWILIO_AUTH_TOKEN",
                "; Twilio signs the URL too, so give both the same MOMENTLINE_PUBLIC_URL",
            ),
            Self::Vonage => (
                "VONAGE_SIGNATURE_SECRET",
                ", and the same VONAGE_SIGNATURE_METHOD",
            ),
            Self::Telnyx => ("TELNYX_PUBLIC_KEY", ""),
        }
    }
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
    #[error(
        "the server refused the webhook as not signed by it (HTTP 401): it has no {setting} \
         or another one (its log says \"{setting} is not set\" when it has none). Start the \
         server with {setting} set to the same value as here{also}"
    )]
    NotSigned {
        setting: &'static str,
        also: &'static str,
    },
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
    let id = provider_message_id(request.provider, request.media.is_some())?;
    let played = Played {
        base: &base,
        id: &id,
        from: from.as_str(),
        to: &to,
        text: &request.text,
    };
    let (response, media) = match request.provider {
        DevProvider::Vonage => (post_vonage(settings, &played).await?, None),
        // Telnyx was refused with the id.
        _ => post_twilio(settings, &played, request.media.as_deref()).await?,
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    match status {
        200 => {}
        401 => {
            let (setting, also) = request.provider.signed_with();
            return Err(DevError::NotSigned { setting, also });
        }
        _ => return Err(DevError::Refused { status, body }),
    }
    eprintln!(
        "{} -> momentline: {:?} (taken: HTTP {status})",
        from.as_str(),
        request.text
    );
    let followed = Followed {
        provider: request.provider.name(),
        id,
        phone: from.as_str().to_owned(),
        wait: request.wait,
        merge_window: settings.merge_window,
        fetched: media.as_ref().map(|m| Arc::clone(&m.fetched)),
    };
    let result = follow(settings, followed).await;
    if let Some(media) = media {
        media.stop().await;
    }
    result
}

/// A fresh id for the text, in the provider's own shape; refuses what `dev text` cannot
/// play as that provider.
fn provider_message_id(provider: DevProvider, with_media: bool) -> Result<String, DevError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)?;
    match provider {
        DevProvider::Twilio => Ok(format!("SMdev{}", hex::encode(id))),
        DevProvider::Vonage if with_media => Err(DevError::Usage(
            "--media needs --provider twilio: a Vonage photo comes through its Messages API, \
             which `dev text` does not play"
                .into(),
        )),
        DevProvider::Vonage => Ok(format!("dev{}", hex::encode(id))),
        DevProvider::Telnyx => Err(DevError::Usage(
            "Telnyx signs its webhooks with its own private key, which momentline never has \
             (it holds only TELNYX_PUBLIC_KEY): play the phone with --provider twilio or \
             vonage, or the dev phone page"
                .into(),
        )),
    }
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

/// Posts the text as Twilio would, with the file at `media` attached: served on loopback
/// (once the text can be signed), for the server to fetch.
async fn post_twilio(
    settings: &Settings,
    played: &Played<'_>,
    media: Option<&Path>,
) -> Result<(reqwest::Response, Option<MediaFile>), DevError> {
    let token = settings.twilio_auth_token.as_ref().ok_or_else(|| {
        DevError::Usage(
            "TWILIO_AUTH_TOKEN is not set: the server refuses every Twilio webhook without it. \
             Start the server with TWILIO_AUTH_TOKEN set (any value, e.g. dev) and run this \
             with the same"
                .into(),
        )
    })?;
    let media = match media {
        Some(path) => Some(MediaFile::serve(path).await?),
        None => None,
    };
    let mut params: Vec<(String, String)> = vec![
        ("MessageSid".into(), played.id.into()),
        ("From".into(), played.from.into()),
        ("To".into(), played.to.into()),
        ("Body".into(), played.text.into()),
    ];
    match &media {
        Some(media) => params.extend([
            ("NumMedia".into(), "1".into()),
            ("MediaUrl0".into(), media.url.clone()),
            ("MediaContentType0".into(), media.content_type.into()),
        ]),
        None => params.push(("NumMedia".into(), "0".into())),
    }
    // Twilio signs the URL it was given: momentline's public one.
    let signed_url = format!("{}/webhooks/twilio", settings.public_url);
    let signature = twilio::signature(token.expose(), &signed_url, &params);
    let response = post_form(
        format!("{}/webhooks/twilio", played.base),
        &params,
        Some(("X-Twilio-Signature", signature)),
    )
    .await?;
    Ok((response, media))
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

/// A file served once on loopback, for the server to fetch as a provider's media.
struct MediaFile {
    url: String,
    content_type: &'static str,
    server: actix_web::dev::ServerHandle,
    /// Set once the server has asked for the file.
    fetched: Arc<AtomicBool>,
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
        let fetched = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&fetched);
        let body = web::Bytes::from(bytes);
        let server = HttpServer::new(move || {
            let (body, seen) = (body.clone(), Arc::clone(&seen));
            App::new().default_service(web::to(move || {
                seen.store(true, Ordering::SeqCst);
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
