//! A phone number that is known to be a valid E.164 number: the only way to get one is `parse`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex, PoisonError};

pub use phonenumber::country::Id as Region;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    region: Option<Region>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("Phone number must be in E.164 format, like +14155552671")]
    NotE164,
    #[error("Phone number is not a valid phone number")]
    Invalid,
}

impl PhoneNumber {
    /// E.164 syntax first (a `+`, no leading zero, at most 15 digits, nothing else), then
    /// validity against the numbering plan of its country.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let digits = input.strip_prefix('+').ok_or(PhoneNumberError::NotE164)?;
        let well_formed = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !well_formed {
            return Err(PhoneNumberError::NotE164);
        }
        let region = match PARSED.known(input) {
            Some(region) => region,
            None => {
                let parsed =
                    phonenumber::parse(None, input).map_err(|_| PhoneNumberError::Invalid)?;
                if !phonenumber::is_valid(&parsed) {
                    return Err(PhoneNumberError::Invalid);
                }
                let region = parsed.country().id();
                PARSED.keep(input, region);
                region
            }
        };
        Ok(Self {
            e164: input.to_owned(),
            region,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The ISO region the number belongs to, when the numbering plan names one.
    pub fn region(&self) -> Option<Region> {
        self.region
    }

    /// The number as it may appear in logs: `+1415***2671`.
    pub fn masked(&self) -> Masked<'_> {
        Masked(&self.e164)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

/// Display of a number with its middle digits hidden.
pub struct Masked<'a>(&'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s.len() > 9 && s.is_ascii() {
            write!(f, "{}***{}", &s[..5], &s[s.len() - 4..])
        } else {
            f.write_str("+***")
        }
    }
}

/// Masks any string that claims to be a number, valid or not, for logging.
pub fn mask(raw: &str) -> Masked<'_> {
    Masked(raw)
}

/// Which regions may be connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedRegions {
    All,
    Only(Vec<Region>),
}

impl AllowedRegions {
    /// Parses `US,CA` or `*`.
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.trim() == "*" {
            return Ok(Self::All);
        }
        let mut regions = Vec::new();
        for code in input.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let region = code
                .to_ascii_uppercase()
                .parse::<Region>()
                .map_err(|_| format!("'{code}' is not an ISO 3166 region code"))?;
            regions.push(region);
        }
        if regions.is_empty() {
            return Err("no region given (use '*' for all)".into());
        }
        Ok(Self::Only(regions))
    }

    pub fn allows(&self, number: &PhoneNumber) -> bool {
        match self {
            Self::All => true,
            Self::Only(regions) => number.region().is_some_and(|r| regions.contains(&r)),
        }
    }
}

/// Valid numbers already parsed, with their region. A text's sender is parsed as its webhook
/// arrives and again from each row that names it, and the numbering plan's check costs tens
/// of microseconds a time. Two generations, so that it stays bounded yet keeps what is in
/// use: once `recent` holds `GENERATION` numbers it becomes `older` (the one before is
/// dropped), and a number found in `older` moves back to `recent`. Only valid numbers are
/// kept.
struct Parsed(Mutex<Generations>);

#[derive(Default)]
struct Generations {
    recent: HashMap<Box<str>, Option<Region>>,
    older: HashMap<Box<str>, Option<Region>>,
}

/// Numbers a generation holds: the two together take under 2 MiB.
const GENERATION: usize = 8192;

static PARSED: LazyLock<Parsed> = LazyLock::new(|| Parsed(Mutex::default()));

impl Parsed {
    /// The region of `e164` if it was parsed as valid before (it may name none).
    fn known(&self, e164: &str) -> Option<Option<Region>> {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.known(e164)
    }

    fn keep(&self, e164: &str, region: Option<Region>) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        kept.keep(e164, region);
    }
}

impl Generations {
    /// The region of `e164` if kept; one found in `older` moves back to `recent`.
    fn known(&mut self, e164: &str) -> Option<Option<Region>> {
        if let Some(region) = self.recent.get(e164) {
            return Some(*region);
        }
        let region = self.older.remove(e164)?;
        self.keep(e164, region);
        Some(region)
    }

    fn keep(&mut self, e164: &str, region: Option<Region>) {
        if self.recent.len() >= GENERATION {
            self.older = std::mem::take(&mut self.recent);
        }
        self.recent.insert(e164.into(), region);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_us_number_parses_with_its_region() {
        let n = PhoneNumber::parse("+14155552671").expect("valid");
        assert_eq!(n.as_str(), "+14155552671");
        assert_eq!(n.region(), Some(Region::US));
    }

    #[test]
    fn numbers_that_are_not_e164_are_refused_as_such() {
        for bad in [
            "4155552671",
            "+1 415 555 2671",
            "+1-415-555-2671",
            "+",
            "+0123456789",
            "+1415555267100000",
            "",
            "+１４１５",
        ] {
            assert_eq!(
                PhoneNumber::parse(bad),
                Err(PhoneNumberError::NotE164),
                "{bad}"
            );
        }
    }

    #[test]
    fn well_formed_but_impossible_numbers_are_invalid() {
        assert_eq!(
            PhoneNumber::parse("+11234567890"),
            Err(PhoneNumberError::Invalid)
        );
        assert_eq!(PhoneNumber::parse("+999"), Err(PhoneNumberError::Invalid));
    }

    #[test]
    fn masking_keeps_the_country_area_and_last_four() {
        let n = PhoneNumber::parse("+14155552671").expect("valid");
        assert_eq!(n.masked().to_string(), "+1415***2671");
        assert_eq!(mask("12").to_string(), "+***");
    }

    #[test]
    fn allowed_regions_parse_and_filter() {
        let us_ca = AllowedRegions::parse("US, ca").expect("parses");
        assert!(us_ca.allows(&PhoneNumber::parse("+14155552671").expect("valid")));
        assert!(us_ca.allows(&PhoneNumber::parse("+16135550123").expect("valid")));
        assert!(!us_ca.allows(&PhoneNumber::parse("+447911123456").expect("valid")));
        assert!(AllowedRegions::parse("*")
            .expect("parses")
            .allows(&PhoneNumber::parse("+447911123456").expect("valid")));
        assert!(AllowedRegions::parse("XX").is_err());
        assert!(AllowedRegions::parse("").is_err());
    }

    #[test]
    fn a_number_parsed_again_is_the_same_and_an_invalid_one_is_never_kept() {
        let first = PhoneNumber::parse("+33612345678").expect("valid");
        let again = PhoneNumber::parse("+33612345678").expect("valid again");
        assert_eq!(first, again);
        assert_eq!(again.region(), Some(Region::FR));
        assert_eq!(PARSED.known("+33612345678"), Some(Some(Region::FR)));
        for _ in 0..2 {
            assert_eq!(
                PhoneNumber::parse("+11234567890"),
                Err(PhoneNumberError::Invalid)
            );
        }
        assert_eq!(PARSED.known("+11234567890"), None);
    }

    #[test]
    fn the_parsed_numbers_stay_bounded_and_keep_those_in_use() {
        let mut kept = Generations::default();
        kept.keep("+14155552671", Some(Region::US));
        for i in 0..GENERATION * 3 {
            kept.keep(&format!("+1415{i:07}"), None);
            if i % 1000 == 0 {
                // In use: found again, so it is never in the generation dropped.
                let region = kept.known("+14155552671");
                assert_eq!(region, Some(Some(Region::US)), "dropped after {i}");
            }
        }
        assert!(kept.recent.len() + kept.older.len() <= 2 * GENERATION);
    }
}
