//! How momentline reaches PostgreSQL: the URL's `sslmode` and `sslrootcert` as libpq reads
//! them, over rustls.
//!
//! The PostgreSQL client parses `sslmode` `disable`, `prefer` and `require` only, and never
//! checks a certificate. So the two TLS settings are taken out of the URL here: the client is
//! told only whether TLS is off, wanted or required, and what is checked of the server's
//! certificate is this file's verifier:
//!
//! | `sslmode`     | encrypted             | certificate checked           |
//! |---------------|-----------------------|-------------------------------|
//! | `disable`     | never                 | -                             |
//! | `prefer`      | when the server can   | no (yes with `sslrootcert`)   |
//! | `require`     | always                | no (yes with `sslrootcert`)   |
//! | `verify-ca`   | always                | signed by a trusted CA        |
//! | `verify-full` | always                | and issued for the host named |
//!
//! The trusted CAs are the PEM file `sslrootcert` names, or the system's
//! (`sslrootcert=system`, and the default for `verify-ca`/`verify-full`). As libpq does,
//! `prefer` and `require` check the chain when `sslrootcert` is given. `prefer` is the
//! default, as it is libpq's.
//!
//! Unless the URL says otherwise, a connection gives up after 5 s, and a connection whose
//! data goes unacknowledged for 30 s, or whose server does not answer keepalives, is closed:
//! a network that drops everything costs the pool its connections, not its threads forever.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The `sslmode` of a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode=allow is not supported: use prefer, or require TLS with \
                            verify-full"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "sslmode '{other}' is not one of disable, prefer, require, verify-ca, \
                     verify-full"
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// The system's store.
    System,
    /// A PEM file.
    File(PathBuf),
}

/// What of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

/// A PostgreSQL server as a URL names it, with how to reach it.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    mode: SslMode,
    roots: Option<Roots>,
    tls: MakeRustlsConnect,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("mode", &self.mode)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Reads a `postgres://` URL, its TLS settings included, and loads the CAs it trusts. The
    /// error names what is wrong, never the password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| format!("its options cannot be read: {e}"))?;
        let mut mode = SslMode::Prefer;
        let mut roots = None;
        let mut kept = Vec::new();
        let mut given = Vec::new();
        for (key, value) in pairs {
            match key.as_str() {
                "sslmode" => mode = SslMode::parse(&value)?,
                "sslrootcert" if value == "system" => roots = Some(Roots::System),
                "sslrootcert" => roots = Some(Roots::File(PathBuf::from(value))),
                "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                    return Err(format!(
                        "{key} is not supported: momentline does not send a client \
                         certificate"
                    ))
                }
                _ => {
                    given.push(key.clone());
                    kept.push((key, value));
                }
            }
        }
        let rest = serde_urlencoded::to_string(&kept)
            .map_err(|e| format!("its options cannot be written back: {e}"))?;
        let plain = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{rest}")
        };
        let mut config: postgres::Config = plain.parse().map_err(|e| format!("{e}"))?;
        config.ssl_mode(match mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                postgres::config::SslMode::Require
            }
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        if !given.iter().any(|key| key.starts_with("keepalives")) {
            config
                .keepalives(true)
                .keepalives_idle(Duration::from_secs(15))
                .keepalives_interval(Duration::from_secs(5))
                .keepalives_retries(3);
        }
        let roots = match (mode, roots) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => Some(Roots::System),
            (_, roots) => roots,
        };
        let check = match (mode, &roots) {
            (SslMode::VerifyFull, _) => Check::ChainAndName,
            (_, Some(_)) => Check::Chain,
            (_, None) => Check::Nothing,
        };
        let tls = connector(check, roots.as_ref())?;
        Ok(Self {
            config,
            mode,
            roots,
            tls,
        })
    }

    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// What opening a connection does, for the pool.
    pub fn tls(&self) -> MakeRustlsConnect {
        self.tls.clone()
    }

    /// Whether every host is this machine (loopback, or a Unix socket): a connection that no
    /// network carries.
    pub fn is_local(&self) -> bool {
        use postgres::config::Host;
        self.config.get_hosts().iter().all(|host| match host {
            Host::Tcp(name) => matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1"),
            Host::Unix(_) => true,
        })
    }

    /// One connection of its own. Blocks.
    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        self.config.connect(self.tls())
    }

    /// What is checked of the server, for people: "certificate and host name checked against
    /// /etc/db/ca.pem".
    pub fn checked(&self) -> String {
        let roots = match &self.roots {
            Some(Roots::System) => "the system's CAs".to_owned(),
            Some(Roots::File(path)) => path.display().to_string(),
            None => String::new(),
        };
        match (self.mode, &self.roots) {
            (SslMode::Disable, _) => "sslmode=disable".to_owned(),
            (SslMode::VerifyFull, _) => {
                format!("sslmode=verify-full: certificate and host name checked against {roots}")
            }
            (mode, Some(_)) => format!(
                "sslmode={}: certificate checked against {roots}, not its host name",
                mode.name()
            ),
            (mode, None) => format!(
                "sslmode={}: the server's certificate is not checked; verify-full checks it",
                mode.name()
            ),
        }
    }

    /// A failure to connect, said with what the TLS settings have to do with it.
    pub fn explain(&self, e: &postgres::Error) -> String {
        let text = crate::telemetry::error_chain(e);
        let hint = if self.mode == SslMode::Disable && text.contains("no encryption") {
            Some("the server requires TLS: set sslmode=verify-full (or require) in the URL")
        } else if text.contains("UnknownIssuer") {
            Some(
                "the server's certificate is not signed by a CA trusted here: name its CA with \
                 sslrootcert=/path/to/ca.pem",
            )
        } else if text.contains("NotValidForName") || text.contains("not valid for name") {
            Some(
                "the server's certificate was not issued for the host in the URL: connect by \
                 the name it was issued for, or use verify-ca",
            )
        } else if text.contains("server does not support TLS") {
            Some("the server does not offer TLS, which this sslmode requires")
        } else {
            None
        };
        match hint {
            Some(hint) => format!("{text} ({hint}; {})", self.checked()),
            None => text,
        }
    }
}

/// The rustls client configuration for `check`.
fn connector(check: Check, roots: Option<&Roots>) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (check, roots) {
        (Check::Nothing, _) | (_, None) => Arc::new(Unchecked(Arc::clone(&provider))),
        (check, Some(roots)) => {
            let store = Arc::new(trusted(roots)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(store, Arc::clone(&provider))
                .build()
                .map_err(|e| format!("its CAs cannot be used: {e}"))?;
            match check {
                Check::ChainAndName => webpki,
                _ => Arc::new(ChainOnly(webpki)),
            }
        }
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The CAs `roots` names.
fn trusted(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            for cert in pem_certificates(path)? {
                store.add(cert).map_err(|e| {
                    format!(
                        "sslrootcert '{}' holds a certificate that cannot be a CA: {e}",
                        path.display()
                    )
                })?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "no CA certificates were found on this system{}: name the server's CA \
                     with sslrootcert=/path/to/ca.pem",
                    found
                        .errors
                        .first()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    Ok(store)
}

fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let unreadable = |e: rustls::pki_types::pem::Error| {
        format!("sslrootcert '{}' cannot be read: {e}", path.display())
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(format!(
            "sslrootcert '{}' holds no PEM certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// `verify-ca`, and `prefer`/`require` with `sslrootcert`: the chain must reach a trusted CA,
/// whatever host the certificate was issued for.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name: a name that does not match means the chain
        // passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without `sslrootcert`: encrypted, the certificate taken as it
/// comes (libpq's meaning of these modes). The handshake's signatures are still checked, so
/// the key that signed is the certificate's.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_are_taken_out_of_the_url_and_the_rest_kept() {
        let target = PgTarget::parse(
            "postgres://u:pw@db.example:5432/app?sslmode=require&application_name=ml&connect_timeout=3",
        )
        .expect("parsed");
        assert_eq!(target.mode(), SslMode::Require);
        assert_eq!(
            target.config().get_ssl_mode(),
            postgres::config::SslMode::Require
        );
        assert_eq!(target.config().get_application_name(), Some("ml"));
        assert_eq!(
            target.config().get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert!(
            target.checked().contains("not checked"),
            "{}",
            target.checked()
        );

        let plain = PgTarget::parse("postgres://u@db.example/app").expect("parsed");
        assert_eq!(plain.mode(), SslMode::Prefer);
        assert_eq!(
            plain.config().get_connect_timeout(),
            Some(&Duration::from_secs(5))
        );
        assert_eq!(
            plain.config().get_tcp_user_timeout(),
            Some(&Duration::from_secs(30))
        );
    }

    #[test]
    fn bad_tls_settings_are_refused_by_name() {
        for (url, says) in [
            ("postgres://u@h/db?sslmode=sometimes", "sslmode 'sometimes'"),
            ("postgres://u@h/db?sslmode=allow", "sslmode=allow"),
            (
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                "sslrootcert '/nonexistent/ca.pem' cannot be read",
            ),
            (
                "postgres://u@h/db?sslcert=/x.pem",
                "sslcert is not supported",
            ),
        ] {
            let e = PgTarget::parse(url).expect_err(url);
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn a_root_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let url = format!(
            "postgres://u@h/db?sslmode=verify-ca&sslrootcert={}",
            path.display()
        );
        let e = PgTarget::parse(&url).expect_err("refused");
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }
}
