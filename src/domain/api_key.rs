//! Artist API keys: `art_sk_` and 64 lowercase hex characters, stored only as a SHA-256 hash.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "art_sk_";
const SECRET_HEX_LEN: usize = 64;
/// How much of a key is kept in the clear to name it (`art_sk_` and 8 hex characters).
pub const DISPLAY_PREFIX_LEN: usize = PREFIX.len() + 8;

/// A key as presented by a client or freshly generated. Never stored.
pub struct ApiKey(String);

/// The SHA-256 of a key: what the database keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

impl ApiKey {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut secret = [0u8; SECRET_HEX_LEN / 2];
        getrandom::fill(&mut secret)?;
        Ok(Self(format!("{PREFIX}{}", hex::encode(secret))))
    }

    /// Accepts only the exact shape of a key, so junk never reaches the database.
    pub fn parse(input: &str) -> Option<Self> {
        let secret = input.strip_prefix(PREFIX)?;
        let shaped = secret.len() == SECRET_HEX_LEN
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        shaped.then(|| Self(input.to_owned()))
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The part of the key that names it in listings and `keys revoke`.
    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_LEN]
    }

    /// The secret itself, for printing once when it is created.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl KeyHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(input: &str) -> Option<Self> {
        let bytes = hex::decode(input).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// Constant-time comparison, so timing tells nothing about a stored hash.
    pub fn matches(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = ApiKey::generate().expect("randomness");
        assert!(key.expose().starts_with("art_sk_"));
        assert_eq!(key.expose().len(), 7 + 64);
        assert!(ApiKey::parse(key.expose()).is_some());
        assert_eq!(key.display_prefix(), &key.expose()[..15]);
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = ApiKey::generate().expect("randomness");
        let b = ApiKey::generate().expect("randomness");
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = format!("art_sk_{}", "a".repeat(64));
        assert!(ApiKey::parse(&good).is_some());
        for bad in [
            "",
            "art_sk_",
            &format!("art_sk_{}", "A".repeat(64)),
            &format!("art_sk_{}", "a".repeat(63)),
            &format!("art_pk_{}", "a".repeat(64)),
            &format!("art_sk_{}g", "a".repeat(63)),
        ] {
            assert!(ApiKey::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn hashes_round_trip_through_hex_and_compare() {
        let key = ApiKey::generate().expect("randomness");
        let hash = key.hash();
        let back = KeyHash::from_hex(&hash.to_hex()).expect("hex");
        assert!(hash.matches(&back));
        let other = ApiKey::generate().expect("randomness").hash();
        assert!(!hash.matches(&other));
        assert!(KeyHash::from_hex("abcd").is_none());
    }
}
