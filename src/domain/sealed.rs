//! Secrets kept at rest: an artist's In Process API key is sealed with the operator's
//! `MOMENTLINE_SECRET_KEY` (XChaCha20-Poly1305, a random nonce each time), bound to the row it
//! is kept on, so a copy of the database without that key reveals no artist's key, and a
//! sealed key copied onto another artist's row does not open.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::secret::Secret;

/// The first byte of a sealed value: how it was sealed, so a later scheme can be told apart.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// The key secrets are sealed with: 32 bytes, given as base64.
#[derive(Clone)]
pub struct SealingKey(chacha20poly1305::Key);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The sealed value was made with another key, for another row, or was changed.
    #[error("the sealed value does not open with this key (another key, another row, or changed)")]
    DoesNotOpen,
    #[error("no randomness for a nonce: {0}")]
    Randomness(String),
}

impl SealingKey {
    /// A key from its base64 text (`openssl rand -base64 32` makes one).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| "not base64 (make one with `openssl rand -base64 32`)".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!(
                "{} bytes once decoded, not 32 (make one with `openssl rand -base64 32`)",
                bytes.len()
            ));
        }
        Ok(Self(*chacha20poly1305::Key::from_slice(&bytes)))
    }

    /// Seals `secret` for the row `bound_to` names.
    pub fn seal(&self, secret: &Secret, bound_to: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Randomness(e.to_string()))?;
        let sealed = XChaCha20Poly1305::new(&self.0)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: bound_to,
                },
            )
            // Encryption fails only for messages longer than the cipher allows (256 GiB).
            .map_err(|_| SealError::DoesNotOpen)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what `seal` made for the same row.
    pub fn open(&self, sealed: &[u8], bound_to: &[u8]) -> Result<Secret, SealError> {
        let (version, rest) = sealed.split_first().ok_or(SealError::DoesNotOpen)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let opened = XChaCha20Poly1305::new(&self.0)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: bound_to,
                },
            )
            .map_err(|_| SealError::DoesNotOpen)?;
        String::from_utf8(opened)
            .map(Secret::from)
            .map_err(|_| SealError::DoesNotOpen)
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealingKey {
        SealingKey::parse(&BASE64.encode([byte; 32])).expect("key")
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_key_for_its_row() {
        let secret = Secret::from("art_sk_0123456789abcdef");
        let sealed = key(1).seal(&secret, b"artist:7").expect("seal");
        assert!(
            !sealed
                .windows(secret.expose().len())
                .any(|w| w == secret.expose().as_bytes()),
            "the key is not kept in clear"
        );
        assert_eq!(key(1).open(&sealed, b"artist:7").expect("open"), secret);
        assert_eq!(
            key(2).open(&sealed, b"artist:7"),
            Err(SealError::DoesNotOpen),
            "another key"
        );
        assert_eq!(
            key(1).open(&sealed, b"artist:8"),
            Err(SealError::DoesNotOpen),
            "another row"
        );
        let mut changed = sealed.clone();
        if let Some(last) = changed.last_mut() {
            *last ^= 1;
        }
        assert_eq!(
            key(1).open(&changed, b"artist:7"),
            Err(SealError::DoesNotOpen)
        );
        assert_eq!(key(1).open(&[], b"artist:7"), Err(SealError::DoesNotOpen));
        assert_eq!(
            key(1).open(&sealed[..10], b"artist:7"),
            Err(SealError::DoesNotOpen)
        );
        let again = key(1).seal(&secret, b"artist:7").expect("seal");
        assert_ne!(again, sealed, "each seal has a nonce of its own");
    }

    #[test]
    fn a_sealing_key_is_32_bytes_of_base64_and_never_shown() {
        assert!(SealingKey::parse("not base64!").is_err());
        let short = SealingKey::parse(&BASE64.encode([0u8; 16])).expect_err("short");
        assert!(short.contains("16 bytes"), "{short}");
        assert_eq!(format!("{:?}", key(3)), "[redacted]");
    }
}
