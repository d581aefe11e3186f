//! Verification codes: six random digits, kept only as a salted SHA-256, compared in
//! constant time, with a few tries and an expiry.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ids::ArtistId;

/// Wrong codes a code survives; the next one kills it.
pub const MAX_TRIES: u32 = 5;
const DIGITS: usize = 6;

/// A code as entered or freshly made. Its `Debug` never shows it, so it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(******)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code must be {DIGITS} digits")]
pub struct NotACode;

impl Code {
    /// Six uniformly random digits.
    pub fn generate() -> Result<Self, getrandom::Error> {
        // Rejection sampling: the top values of a u32 would favour low codes.
        const SPAN: u32 = 1_000_000;
        const LIMIT: u32 = u32::MAX - u32::MAX % SPAN;
        loop {
            let mut bytes = [0u8; 4];
            getrandom::fill(&mut bytes)?;
            let n = u32::from_le_bytes(bytes);
            if n < LIMIT {
                return Ok(Self(format!("{:06}", n % SPAN)));
            }
        }
    }

    /// Exactly six ASCII digits and nothing else: the pattern the API's document states.
    pub fn parse(input: &str) -> Result<Self, NotACode> {
        if input.len() == DIGITS && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(NotACode)
        }
    }

    /// The digits, for the text that carries them and the provider that checks them.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored: SHA-256 over the salt, the number, the artist and the code, so a
    /// hash says nothing about any other number's or artist's code.
    pub fn hash(&self, salt: &[u8], e164: &str, artist: ArtistId) -> [u8; 32] {
        let mut digest = Sha256::new();
        digest.update(salt);
        digest.update(e164.as_bytes());
        digest.update(artist.0.to_be_bytes());
        digest.update(self.0.as_bytes());
        digest.finalize().into()
    }

    /// Whether this code is the one `stored` was made from, in constant time.
    pub fn matches(&self, stored: &[u8], salt: &[u8], e164: &str, artist: ArtistId) -> bool {
        bool::from(self.hash(salt, e164, artist).as_slice().ct_eq(stored))
    }
}

/// A fresh salt for one code.
pub fn salt() -> Result<[u8; 16], getrandom::Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    Ok(salt)
}

/// Where a stored code stands when someone enters one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeState {
    /// Its text has not gone out yet.
    NotSent,
    Expired,
    /// Too many wrong tries: dead until it would have expired.
    Locked {
        retry_after: Duration,
    },
    Open {
        tries_left: u32,
    },
}

pub fn code_state(expires_at: Option<DateTime<Utc>>, tries: u32, now: DateTime<Utc>) -> CodeState {
    let Some(expires_at) = expires_at else {
        return CodeState::NotSent;
    };
    if tries >= MAX_TRIES {
        if expires_at > now {
            return CodeState::Locked {
                retry_after: expires_at - now,
            };
        }
        return CodeState::Expired;
    }
    if expires_at <= now {
        return CodeState::Expired;
    }
    CodeState::Open {
        tries_left: MAX_TRIES - tries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: Vec<_> = (0..20).map(|_| Code::generate().expect("random")).collect();
        assert!(codes.iter().all(|c| Code::parse(c.expose()).is_ok()));
        assert!(codes.iter().any(|c| c != &codes[0]));
    }

    #[test]
    fn only_six_digits_parse() {
        assert!(Code::parse("012345").is_ok());
        for bad in [
            "12345",
            "1234567",
            "12a456",
            "",
            "１２３４５６",
            " 012345 ",
            "012345\n",
        ] {
            assert_eq!(Code::parse(bad), Err(NotACode), "{bad}");
        }
    }

    #[test]
    fn a_hash_matches_only_its_code_number_and_artist() {
        let code = Code::parse("123456").expect("code");
        let stored = code.hash(b"salt", "+14155552671", ArtistId(1));
        assert!(code.matches(&stored, b"salt", "+14155552671", ArtistId(1)));
        let other = Code::parse("123457").expect("code");
        assert!(!other.matches(&stored, b"salt", "+14155552671", ArtistId(1)));
        assert!(!code.matches(&stored, b"salt", "+14155552672", ArtistId(1)));
        assert!(!code.matches(&stored, b"salt", "+14155552671", ArtistId(2)));
        assert!(!code.matches(&stored, b"pepper", "+14155552671", ArtistId(1)));
    }

    #[test]
    fn the_debug_form_hides_the_code() {
        let code = Code::parse("123456").expect("code");
        assert!(!format!("{code:?}").contains("123456"));
    }

    #[test]
    fn a_code_dies_after_five_wrong_tries_until_it_would_have_expired() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let later = now + Duration::minutes(4);
        assert_eq!(code_state(None, 0, now), CodeState::NotSent);
        assert_eq!(
            code_state(Some(later), 4, now),
            CodeState::Open { tries_left: 1 }
        );
        assert_eq!(
            code_state(Some(later), 5, now),
            CodeState::Locked {
                retry_after: Duration::minutes(4)
            }
        );
        assert_eq!(code_state(Some(now), 0, now), CodeState::Expired);
        assert_eq!(code_state(Some(now), 5, now), CodeState::Expired);
    }
}
