//! Keeping Moment media: provider media URLs expire or need credentials, so each file is
//! fetched once in the background, checked, and kept under the media directory by content hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::db::moments::{self, MediaJob};
use crate::db::{DbError, Pool};
use crate::domain::moment::MediaKind;
use crate::providers::twilio;
use crate::telemetry::error_chain;

/// The largest file kept (carriers cap MMS far lower; email-to-MMS gateways less so).
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
const BATCH: u32 = 8;
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Content types kept, and the file extension each is kept under.
const TYPES: &[(&str, &str)] = &[
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/gif", "gif"),
    ("image/webp", "webp"),
    ("image/heic", "heic"),
    ("image/heif", "heif"),
    ("image/bmp", "bmp"),
    ("audio/mpeg", "mp3"),
    ("audio/mp4", "m4a"),
    ("audio/aac", "aac"),
    ("audio/amr", "amr"),
    ("audio/ogg", "ogg"),
    ("audio/wav", "wav"),
    ("audio/x-wav", "wav"),
    ("application/pdf", "pdf"),
];

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn extension_for(content_type: &str) -> &'static str {
    let essence = essence(content_type);
    TYPES
        .iter()
        .find(|(t, _)| *t == essence)
        .map_or("bin", |(_, ext)| ext)
}

/// The content type a kept file is served with.
pub fn content_type_for(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map_or("", |(_, ext)| ext);
    TYPES
        .iter()
        .find(|(_, e)| *e == ext)
        .map_or("application/octet-stream", |(t, _)| t)
}

/// Whether `name` is a file name the keeper could have written: `{sha256 hex}.{ext}`.
pub fn is_kept_name(name: &str) -> bool {
    let Some((hash, ext)) = name.split_once('.') else {
        return false;
    };
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && (1..=5).contains(&ext.len())
        && ext
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Permanent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a database task did not finish")]
    Join(#[from] tokio::task::JoinError),
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediaRound {
    pub kept: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl MediaRound {
    pub fn claimed(&self) -> usize {
        self.kept + self.retrying + self.failed
    }
}

/// The Twilio account's credentials, and the one host besides Twilio's own they may go to.
#[derive(Debug, Clone)]
pub struct TwilioMediaAuth {
    pub account_sid: String,
    pub auth_token: String,
    pub api_base: String,
}

impl TwilioMediaAuth {
    /// Credentials go only to Twilio over https, or to the configured API base.
    fn may_see(&self, url: &reqwest::Url) -> bool {
        let twilio_host = url
            .host_str()
            .is_some_and(|h| h == "twilio.com" || h.ends_with(".twilio.com"));
        if url.scheme() == "https" && twilio_host {
            return true;
        }
        reqwest::Url::parse(&self.api_base).is_ok_and(|base| {
            base.scheme() == url.scheme()
                && base.host_str() == url.host_str()
                && base.port_or_known_default() == url.port_or_known_default()
        })
    }
}

#[derive(Clone)]
pub struct MediaKeeper {
    pool: Pool,
    http: reqwest::Client,
    dir: Arc<PathBuf>,
    /// Twilio's media URLs may require the account's credentials.
    twilio_auth: Option<Arc<TwilioMediaAuth>>,
    schedule: Arc<Vec<Duration>>,
    wake: Arc<Notify>,
}

impl MediaKeeper {
    pub fn new(
        pool: Pool,
        http: reqwest::Client,
        dir: PathBuf,
        twilio_auth: Option<TwilioMediaAuth>,
        schedule: Vec<Duration>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            http,
            dir: Arc::new(dir),
            twilio_auth: twilio_auth.map(Arc::new),
            schedule: Arc::new(schedule),
            wake,
        }
    }

    pub async fn run(self) {
        let wake = Arc::clone(&self.wake);
        crate::worker::run_rounds("media", wake, || async {
            self.run_once().await.map(|round| round.claimed())
        })
        .await;
    }

    /// One round: claim the files due, fetch them all at once, record each outcome.
    pub async fn run_once(&self) -> Result<MediaRound, MediaError> {
        let pool = self.pool.clone();
        let jobs = tokio::task::spawn_blocking(move || -> Result<_, DbError> {
            let mut conn = pool.get()?;
            Ok(moments::claim_media(&mut conn, Utc::now(), LEASE, BATCH)?)
        })
        .await??;
        let mut fetches = JoinSet::new();
        for job in jobs {
            let keeper = self.clone();
            fetches.spawn(async move { keeper.keep(job).await });
        }
        let mut round = MediaRound::default();
        while let Some(done) = fetches.join_next().await {
            match done {
                Ok(Some(Kept::Yes)) => round.kept += 1,
                Ok(Some(Kept::Later)) => round.retrying += 1,
                Ok(Some(Kept::Never)) => round.failed += 1,
                Ok(None) | Err(_) => {}
            }
        }
        Ok(round)
    }

    async fn keep(&self, job: MediaJob) -> Option<Kept> {
        let fetched = self.fetch(&job).await;
        let stored = match fetched {
            Ok((bytes, served)) => self.store(bytes, &served).await,
            Err(e) => Err(e),
        };
        let pool = self.pool.clone();
        let schedule = Arc::clone(&self.schedule);
        let id = job.moment_id;
        let recorded = tokio::task::spawn_blocking(move || -> Result<Kept, DbError> {
            let conn = pool.get()?;
            let now = Utc::now();
            Ok(match stored {
                Ok(file) => {
                    moments::media_kept(&conn, id, &file)?;
                    tracing::info!(moment_id = id, %file, "media kept");
                    Kept::Yes
                }
                Err(FetchError::Retryable(reason)) => {
                    match crate::worker::retry_at(&schedule, job.attempt, None, now) {
                        Some(at) => {
                            moments::media_failed(&conn, id, Some(at), &reason)?;
                            tracing::warn!(moment_id = id, %reason, "media fetch failed; will retry");
                            Kept::Later
                        }
                        None => {
                            moments::media_failed(&conn, id, None, &reason)?;
                            tracing::error!(moment_id = id, %reason, "media fetch failed for good");
                            Kept::Never
                        }
                    }
                }
                Err(FetchError::Permanent(reason)) => {
                    moments::media_failed(&conn, id, None, &reason)?;
                    tracing::error!(moment_id = id, %reason, "media refused");
                    Kept::Never
                }
            })
        })
        .await;
        match recorded {
            Ok(Ok(kept)) => Some(kept),
            Ok(Err(e)) => {
                tracing::error!(moment_id = id, error = %error_chain(&e), "could not record a media fetch");
                None
            }
            Err(e) => {
                tracing::error!(moment_id = id, error = %e, "recording a media fetch failed");
                None
            }
        }
    }

    /// Fetches the file, checking its status, type and size as it comes.
    /// Returns the bytes and the content type they were served as.
    async fn fetch(&self, job: &MediaJob) -> Result<(Vec<u8>, String), FetchError> {
        let url = reqwest::Url::parse(&job.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| FetchError::Permanent(format!("'{}' is not an http(s) URL", job.url)))?;
        let mut request = self.http.get(url.clone()).timeout(FETCH_TIMEOUT);
        if job.provider == twilio::NAME {
            if let Some(auth) = self.twilio_auth.as_deref().filter(|a| a.may_see(&url)) {
                request = request.basic_auth(&auth.account_sid, Some(&auth.auth_token));
            }
        }
        let unreachable = |e: reqwest::Error| FetchError::Retryable(format!("fetch failed: {e}"));
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let reason = format!("fetch answered {}", status.as_u16());
            return Err(
                if status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                {
                    FetchError::Retryable(reason)
                } else {
                    FetchError::Permanent(reason)
                },
            );
        }
        let served = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let expected = MediaKind::of(&job.content_type);
        if MediaKind::of(&served) != expected || expected == MediaKind::Ignored {
            return Err(FetchError::Permanent(format!(
                "served as '{served}', announced as '{}'",
                job.content_type
            )));
        }
        let too_large = || FetchError::Permanent(format!("larger than {MAX_BYTES} bytes"));
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if bytes.len() + chunk.len() > MAX_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((bytes, served))
    }

    /// Writes the file as `{sha256}.{ext}` (once: the same content is the same file), the
    /// extension from the type it was served as (of the kind it was announced as).
    async fn store(&self, bytes: Vec<u8>, served: &str) -> Result<String, FetchError> {
        let file = format!(
            "{}.{}",
            hex::encode(Sha256::digest(&bytes)),
            extension_for(served)
        );
        let dir = Arc::clone(&self.dir);
        let name = file.clone();
        tokio::task::spawn_blocking(move || write_once(&dir, &name, &bytes))
            .await
            .map_err(|e| FetchError::Retryable(format!("could not store: {e}")))?
            .map_err(|e| {
                FetchError::Retryable(format!("could not store in {}: {e}", self.dir.display()))
            })?;
        Ok(file)
    }
}

/// Where a media fetch left its Moment.
enum Kept {
    Yes,
    Later,
    Never,
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_once(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let path = dir.join(name);
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(std::io::Error::other)?;
    let temp = dir.join(format!(".{name}.{}.part", hex::encode(suffix)));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_names_are_a_hash_and_a_short_extension() {
        let hash = "a".repeat(64);
        assert!(is_kept_name(&format!("{hash}.jpg")));
        assert!(!is_kept_name(&format!("{hash}.JPG")));
        assert!(!is_kept_name(&format!("{}.jpg", "a".repeat(63))));
        assert!(!is_kept_name("../../etc/passwd"));
        assert!(!is_kept_name(&format!("{hash}.tar.gz")));
        assert!(!is_kept_name(&hash));
    }

    #[test]
    fn extensions_and_content_types_round_trip() {
        assert_eq!(extension_for("image/jpeg; charset=binary"), "jpg");
        assert_eq!(content_type_for("x.jpg"), "image/jpeg");
        assert_eq!(extension_for("image/x-unknown"), "bin");
        assert_eq!(content_type_for("x.bin"), "application/octet-stream");
    }

    #[test]
    fn twilio_credentials_go_only_to_twilio_or_its_configured_base() {
        let auth = TwilioMediaAuth {
            account_sid: "AC1".into(),
            auth_token: "t".into(),
            api_base: "http://127.0.0.1:4010".into(),
        };
        let url = |u: &str| reqwest::Url::parse(u).expect("url");
        assert!(auth.may_see(&url(
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Media/ME1"
        )));
        assert!(auth.may_see(&url("https://media.twiliocdn.twilio.com/x")));
        assert!(auth.may_see(&url("http://127.0.0.1:4010/Media/ME1")));
        assert!(
            !auth.may_see(&url("http://api.twilio.com/Media/ME1")),
            "not over plain http"
        );
        assert!(!auth.may_see(&url("https://api.twilio.com.evil.example/x")));
        assert!(
            !auth.may_see(&url("http://127.0.0.1:4011/Media/ME1")),
            "another port"
        );
        assert!(!auth.may_see(&url("https://eviltwilio.com/x")));
    }

    #[test]
    fn the_same_content_is_written_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_once(dir.path(), "f.jpg", b"one").expect("write");
        write_once(dir.path(), "f.jpg", b"two").expect("second write");
        assert_eq!(
            std::fs::read(dir.path().join("f.jpg")).expect("read"),
            b"one"
        );
        let entries = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(entries, 1, "no temporary file left");
    }
}
