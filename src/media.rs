//! Keeping Moment media: provider media URLs expire or need credentials, so each file is
//! fetched once (by a keep_media job), checked, and kept under the media directory by content
//! hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::db::moments::MediaSource;
use crate::domain::media_type::extension_for;
use crate::domain::moment::MediaKind;
use crate::domain::secret::Secret;
use crate::files::{owner_only_dir, owner_only_file};
use crate::providers::{dev, twilio};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// The largest file kept (carriers cap MMS far lower; email-to-MMS gateways less so).
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Why a file was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Another fetch may succeed.
    #[error("{0}")]
    Retryable(String),
    /// No fetch will: missing, mistyped, too large.
    #[error("{0}")]
    Permanent(String),
}

/// The Twilio account's credentials, and the one host besides Twilio's own they may go to.
#[derive(Debug, Clone)]
pub struct TwilioMediaAuth {
    pub account_sid: String,
    pub auth_token: Secret,
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

/// Fetches media files and keeps them.
#[derive(Clone)]
pub struct MediaKeeper {
    http: reqwest::Client,
    dir: Arc<PathBuf>,
    /// Twilio's media URLs may require the account's credentials.
    twilio_auth: Option<Arc<TwilioMediaAuth>>,
    /// Whether URLs may lead to this machine or its network (tests, local stand-ins).
    allow_private: bool,
}

impl MediaKeeper {
    /// A keeper whose fetches reach only public addresses, unless `allow_private`: a media
    /// URL comes from a webhook, and must not make momentline fetch from its own network
    /// (a metadata service, an admin port). Names are checked as resolved, and every
    /// redirect again.
    pub fn new(
        dir: PathBuf,
        twilio_auth: Option<TwilioMediaAuth>,
        allow_private: bool,
    ) -> Result<Self, reqwest::Error> {
        // No proxy: a proxy would resolve names itself, past the check below.
        let mut builder = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    attempt.error(address::Refused("too many redirects".into()))
                } else if !allow_private && address::names_private(attempt.url()) {
                    let to = attempt.url().to_string();
                    attempt.error(address::Refused(format!(
                        "redirected to a private address: {to}"
                    )))
                } else {
                    attempt.follow()
                }
            }));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(address::PublicOnly));
        }
        Ok(Self {
            http: builder.build()?,
            dir: Arc::new(dir),
            twilio_auth: twilio_auth.map(Arc::new),
            allow_private,
        })
    }

    /// The size of a kept file, if it is there.
    pub fn size_of(&self, file: &str) -> Option<u64> {
        is_kept_name(file)
            .then(|| std::fs::metadata(self.dir.join(file)).ok())
            .flatten()
            .map(|m| m.len())
    }

    /// Fetches the file and keeps it; answers the kept file's name.
    pub async fn keep(&self, source: &MediaSource) -> Result<String, FetchError> {
        if source.provider == dev::NAME {
            return self.kept_upload(&source.url);
        }
        let (bytes, served) = self.fetch(source).await?;
        self.store(bytes, &served).await
    }

    /// The dev phone keeps its uploads itself (`keep_upload`) and names them by their
    /// `/media/{file}` URL: nothing to fetch, only to find.
    fn kept_upload(&self, url: &str) -> Result<String, FetchError> {
        let name = url.rsplit('/').next().unwrap_or_default();
        if is_kept_name(name) && self.dir.join(name).is_file() {
            Ok(name.to_owned())
        } else {
            Err(FetchError::Permanent(format!(
                "the dev phone's upload {url} is not in {}",
                self.dir.display()
            )))
        }
    }

    /// Fetches the file, checking its status, type and size as it comes.
    /// Returns the bytes and the content type they were served as.
    async fn fetch(&self, job: &MediaSource) -> Result<(Vec<u8>, String), FetchError> {
        let url = reqwest::Url::parse(&job.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| FetchError::Permanent(format!("'{}' is not an http(s) URL", job.url)))?;
        let mut request = self.http.get(url.clone()).timeout(FETCH_TIMEOUT);
        if job.provider == twilio::NAME {
            if let Some(auth) = self.twilio_auth.as_deref().filter(|a| a.may_see(&url)) {
                request = request.basic_auth(&auth.account_sid, Some(auth.auth_token.expose()));
            }
        }
        if !self.allow_private && address::names_private(&url) {
            return Err(FetchError::Permanent(format!(
                "refused: {url} is a private address"
            )));
        }
        let unreachable = |e: reqwest::Error| match address::refusal(&e) {
            Some(refused) => FetchError::Permanent(format!("refused: {refused}")),
            // Without the URL: a provider's may carry a token.
            None => FetchError::Retryable(format!(
                "fetch failed: {}",
                crate::telemetry::error_chain(&e.without_url())
            )),
        };
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
        let file = kept_name(&bytes, served);
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

/// Keeps a file that came with a request (the dev phone's uploads) as the keeper keeps a
/// fetched one; answers the kept file's name.
pub fn keep_upload(dir: &Path, bytes: &[u8], content_type: &str) -> std::io::Result<String> {
    let file = kept_name(bytes, content_type);
    write_once(dir, &file, bytes)?;
    Ok(file)
}

/// `{sha256}.{ext}`: the same content is the same file.
fn kept_name(bytes: &[u8], content_type: &str) -> String {
    format!(
        "{}.{}",
        hex::encode(Sha256::digest(bytes)),
        extension_for(content_type)
    )
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_once(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let path = dir.join(name);
    if path.exists() {
        return Ok(());
    }
    owner_only_dir(dir)?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(std::io::Error::other)?;
    let temp = dir.join(format!(".{name}.{}.part", hex::encode(suffix)));
    let written = owner_only_file().open(&temp).and_then(|mut file| {
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    });
    if written.is_err() {
        // A full disk leaves no half file behind to fill it further.
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Which addresses media may be fetched from.
mod address {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    /// A fetch refused for where it would go.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    pub struct Refused(pub String);

    /// Whether `ip` is on the public internet: not loopback, private, link-local (where
    /// cloud metadata services answer), shared, unspecified, multicast or documentation.
    pub fn is_public(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => is_public_v4(v4),
            // IPv4-mapped and -compatible forms are their IPv4 address.
            IpAddr::V6(v6) => match v6.to_ipv4() {
                Some(v4) if !v6.is_loopback() && !v6.is_unspecified() => is_public_v4(v4),
                _ => is_public_v6(v6),
            },
        }
    }

    fn is_public_v4(ip: Ipv4Addr) -> bool {
        let [a, b, ..] = ip.octets();
        let shared = a == 100 && (64..128).contains(&b);
        let this_network = a == 0;
        let reserved = a >= 240;
        !(ip.is_loopback()
            || ip.is_private()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_documentation()
            || shared
            || this_network
            || reserved)
    }

    fn is_public_v6(ip: Ipv6Addr) -> bool {
        let s = ip.segments();
        let unique_local = s[0] & 0xfe00 == 0xfc00;
        let link_local = s[0] & 0xffc0 == 0xfe80;
        let site_local = s[0] & 0xffc0 == 0xfec0;
        let documentation = s[0] == 0x2001 && s[1] == 0x0db8;
        // Prefixes that carry an IPv4 address (NAT64, 6to4): as public as that address.
        let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        let nat64 = s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0];
        let carried_private = (nat64 && !is_public_v4(embedded(s[6], s[7])))
            || (s[0] == 0x2002 && !is_public_v4(embedded(s[1], s[2])));
        !(ip.is_loopback()
            || ip.is_unspecified()
            || ip.is_multicast()
            || unique_local
            || link_local
            || site_local
            || documentation
            || carried_private)
    }

    /// Whether a URL names a private address outright (an IP literal, or `localhost`).
    pub fn names_private(url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return true;
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => !is_public(ip),
            Err(_) => {
                let name = bare.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        }
    }

    /// Resolves names to their public addresses only; a name with none is refused.
    pub struct PublicOnly;

    impl reqwest::dns::Resolve for PublicOnly {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            Box::pin(async move {
                let host = name.as_str().to_owned();
                let found: Vec<SocketAddr> =
                    tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
                let public: Vec<SocketAddr> =
                    found.into_iter().filter(|a| is_public(a.ip())).collect();
                if public.is_empty() {
                    return Err(
                        Box::new(Refused(format!("{host} resolves to no public address")))
                            as Box<dyn std::error::Error + Send + Sync>,
                    );
                }
                Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
            })
        }
    }

    /// The refusal behind a failed request, if that is why it failed.
    pub fn refusal(error: &reqwest::Error) -> Option<String> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if let Some(refused) = e.downcast_ref::<Refused>() {
                return Some(refused.0.clone());
            }
            source = e.source();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_may_be_fetched_from() {
        let public = [
            "8.8.8.8",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ];
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:0a00:0001::1",
            "fec0::1",
        ];
        for ip in public {
            assert!(address::is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in private {
            assert!(!address::is_public(ip.parse().expect("ip")), "{ip}");
        }
        let url = |u: &str| reqwest::Url::parse(u).expect("url");
        assert!(address::names_private(&url("http://127.0.0.1:4010/x")));
        assert!(address::names_private(&url("http://[::1]/x")));
        assert!(address::names_private(&url("http://localhost/x")));
        assert!(address::names_private(&url(
            "http://169.254.169.254/latest/meta-data"
        )));
        assert!(!address::names_private(&url("https://api.twilio.com/x")));
    }

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
