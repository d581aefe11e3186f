//! From an inbound text (and its media) to the Moments it asks for: the grammar of DESIGN.md.

use std::fmt;
use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// One media item of an inbound MMS, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MediaItem {
    pub url: String,
    pub content_type: String,
}

/// What a media item is, for a Moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    Pdf,
    /// Refused: a Moment links to videos instead of carrying them.
    Video,
    /// SMIL layouts, text parts and anything else that is not a Moment's media.
    Ignored,
}

impl MediaKind {
    pub fn of(content_type: &str) -> Self {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.split_once('/') {
            Some(("image", _)) => Self::Image,
            Some(("audio", _)) => Self::Audio,
            Some(("video", _)) => Self::Video,
            Some(("application", "pdf")) => Self::Pdf,
            _ => Self::Ignored,
        }
    }

    fn fallback_title(self) -> &'static str {
        match self {
            Self::Image => "Photo",
            Self::Audio => "Audio",
            _ => "Document",
        }
    }
}

/// A price in millionths of a USDC (USDC has six decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price(u64);

/// Why a `price:` line's amount was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceError {
    /// Not an amount at all: the line is left in the description.
    NotAPrice,
    /// An amount above `Price::MAX_USDC`: no Moment is posted at a price nobody meant.
    TooHigh,
}

impl Price {
    pub const DEFAULT: Price = Price(1_000_000);
    const SCALE: u64 = 1_000_000;
    /// The highest price a Moment may have, in whole USDC: far below what the database
    /// column holds (2^63 - 1 millionths).
    pub const MAX_USDC: u64 = 1_000_000_000;

    pub fn from_micro_usdc(micro: u64) -> Self {
        Self(micro)
    }

    pub fn micro_usdc(self) -> u64 {
        self.0
    }

    /// `5`, `$5`, `5 usdc`, `2.50`, `free`; at most `MAX_USDC`.
    pub fn parse(input: &str) -> Result<Self, PriceError> {
        let lowered = input.trim().to_ascii_lowercase();
        if lowered == "free" {
            return Ok(Self(0));
        }
        let amount = lowered.strip_prefix('$').unwrap_or(&lowered);
        let amount = amount.strip_suffix("usdc").unwrap_or(amount).trim();
        let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 6 {
            return Err(PriceError::NotAPrice);
        }
        let whole = whole.trim_start_matches('0');
        // More digits than the cap has is too high, however many there are.
        if whole.len() > 10 {
            return Err(PriceError::TooHigh);
        }
        let whole: u64 = whole.parse().unwrap_or(0);
        let fraction: u64 = format!("{fraction:0<6}").parse().unwrap_or(0);
        let micro = whole * Self::SCALE + fraction;
        if micro > Self::MAX_USDC * Self::SCALE {
            return Err(PriceError::TooHigh);
        }
        Ok(Self(micro))
    }
}

impl fmt::Display for Price {
    /// As a decimal USDC amount without trailing zeros: `1`, `2.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / Self::SCALE;
        let fraction = self.0 % Self::SCALE;
        if fraction == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{fraction:06}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// What a Moment carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MomentContent {
    Media { item: MediaItem, kind: MediaKind },
    Link { url: String },
    Text,
}

/// A command to create one Moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MomentCommand {
    pub content: MomentContent,
    pub title: String,
    pub description: String,
    pub price: Price,
}

/// What one inbound message asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MomentRequest {
    pub moments: Vec<MomentCommand>,
    /// Video items that were not turned into Moments.
    pub refused_videos: usize,
    /// A `price:` line above the highest price: nothing is posted.
    pub price_too_high: bool,
}

const TITLE_MAX_CHARS: usize = 100;

static TITLE_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*title\s*:\s*(.*?)\s*$").expect("static regex"));
static PRICE_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*price\s*:\s*(.*?)\s*$").expect("static regex"));
static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)\bhttps?://[^\s<>"']+"#).expect("static regex"));

/// Parses a message from a verified number into Moment commands.
pub fn parse_moments(
    text: &str,
    subject: Option<&str>,
    media: &[MediaItem],
    today: NaiveDate,
) -> MomentRequest {
    let mut title_line = None;
    let mut price = Price::DEFAULT;
    let mut kept = Vec::new();
    for line in text.lines() {
        if let Some(title) = TITLE_LINE.captures(line).map(|c| c[1].to_owned()) {
            title_line.get_or_insert(title);
        } else if let Some(parsed) = PRICE_LINE.captures(line).map(|c| Price::parse(&c[1])) {
            match parsed {
                Ok(p) => price = p,
                Err(PriceError::TooHigh) => {
                    return MomentRequest {
                        price_too_high: true,
                        ..MomentRequest::default()
                    }
                }
                Err(PriceError::NotAPrice) => kept.push(line),
            }
        } else {
            kept.push(line);
        }
    }
    let description = kept.join("\n").trim().to_owned();
    let explicit_title = title_line
        .filter(|t| !t.is_empty())
        .or_else(|| {
            subject
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .or_else(|| {
            // A link is the Moment's content, not its title.
            description
                .lines()
                .map(|l| {
                    URL.replace_all(l, "")
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .find(|l| !l.is_empty())
        })
        .map(|t| cut_at_word(&t, TITLE_MAX_CHARS));
    let title = |fallback: &str| {
        explicit_title
            .clone()
            .unwrap_or_else(|| format!("{fallback} {}", today.format("%Y-%m-%d")))
    };
    let command = |content, title| MomentCommand {
        content,
        title,
        description: description.clone(),
        price,
    };

    let mut request = MomentRequest::default();
    for item in media {
        match MediaKind::of(&item.content_type) {
            MediaKind::Video => request.refused_videos += 1,
            MediaKind::Ignored => {}
            kind => request.moments.push(command(
                MomentContent::Media {
                    item: item.clone(),
                    kind,
                },
                title(kind.fallback_title()),
            )),
        }
    }
    let had_media = request.refused_videos > 0 || !request.moments.is_empty();
    if !had_media {
        if let Some(url) = URL.find(&description).map(|m| trim_url(m.as_str())) {
            request
                .moments
                .push(command(MomentContent::Link { url }, title("Link")));
        } else if !description.is_empty() || explicit_title.is_some() {
            request
                .moments
                .push(command(MomentContent::Text, title("Note")));
        }
    }
    request
}

/// One half of an MMS that a carrier delivered as two messages: the photo without its words,
/// or the words without their photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitHalf {
    /// Media and no words: one media Moment, nothing refused.
    Photo,
    /// Words and no media, making exactly one text Moment (not a link).
    Caption,
}

impl SplitHalf {
    /// Which half a message may be, from what it says and the Moments it asks for. A keyword
    /// is never a caption: the caller, who reads keywords, leaves those out.
    pub fn of(
        text: &str,
        subject: Option<&str>,
        media: &[MediaItem],
        moments: &[MomentCommand],
    ) -> Option<Self> {
        let [only] = moments else {
            return None;
        };
        let no_words = text.trim().is_empty() && subject.is_none_or(|s| s.trim().is_empty());
        let video = media
            .iter()
            .any(|m| MediaKind::of(&m.content_type) == MediaKind::Video);
        match only.content {
            MomentContent::Media { .. } if no_words && !video => Some(Self::Photo),
            // A text Moment comes only from a message without Moment media (a SMIL layout or
            // a text part is none).
            MomentContent::Text => Some(Self::Caption),
            _ => None,
        }
    }

    /// The other half, which this one joins.
    pub fn other(self) -> Self {
        match self {
            Self::Photo => Self::Caption,
            Self::Caption => Self::Photo,
        }
    }
}

/// Punctuation that ends a sentence is not part of the link before it.
fn trim_url(url: &str) -> String {
    url.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']'])
        .to_owned()
}

/// At most `max` characters, cut at the last word boundary that fits when there is one.
pub fn cut_at_word(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let hard: String = text.chars().take(max).collect();
    let next_is_space = text.chars().nth(max).is_some_and(char::is_whitespace);
    if next_is_space {
        return hard.trim_end().to_owned();
    }
    match hard.rfind(char::is_whitespace) {
        Some(at) if at > 0 => hard[..at].trim_end().to_owned(),
        _ => hard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_alone_and_words_alone_are_the_halves_of_a_split_mms() {
        let half = |text: &str, subject: Option<&str>, media: &[MediaItem]| {
            let r = parse_moments(text, subject, media, day());
            SplitHalf::of(text, subject, media, &r.moments)
        };
        let photo = [item("https://m.example/a.jpg", "image/jpeg")];
        let two = [
            photo[0].clone(),
            item("https://m.example/b.png", "image/png"),
        ];
        let with_video = [
            photo[0].clone(),
            item("https://m.example/v.mp4", "video/mp4"),
        ];
        let smil = [item("https://m.example/s.smil", "application/smil")];
        assert_eq!(half("", None, &photo), Some(SplitHalf::Photo));
        assert_eq!(half(" \n", Some(" "), &photo), Some(SplitHalf::Photo));
        assert_eq!(half("Studio day", None, &[]), Some(SplitHalf::Caption));
        assert_eq!(
            half("Studio day\nprice: 5", None, &[]),
            Some(SplitHalf::Caption)
        );
        // A photo with words is whole; so is a link, two photos, or a photo and a video.
        assert_eq!(half("Studio day", None, &photo), None);
        assert_eq!(half("", Some("Studio day"), &photo), None);
        assert_eq!(half("see https://x.example", None, &[]), None);
        assert_eq!(half("", None, &two), None);
        assert_eq!(half("", None, &with_video), None);
        // A SMIL layout is no Moment's media: words with one are still a caption alone.
        assert_eq!(half("Studio day", None, &smil), Some(SplitHalf::Caption));
        assert_eq!(half("", None, &[]), None);
        assert_eq!(SplitHalf::Photo.other(), SplitHalf::Caption);
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).expect("date")
    }

    fn item(url: &str, content_type: &str) -> MediaItem {
        MediaItem {
            url: url.into(),
            content_type: content_type.into(),
        }
    }

    #[test]
    fn a_plain_text_becomes_a_text_moment_titled_by_its_first_line() {
        let r = parse_moments("Studio day\nnew paintings drying", None, &[], day());
        assert_eq!(r.moments.len(), 1);
        let m = &r.moments[0];
        assert_eq!(m.content, MomentContent::Text);
        assert_eq!(m.title, "Studio day");
        assert_eq!(m.description, "Studio day\nnew paintings drying");
        assert_eq!(m.price, Price::DEFAULT);
    }

    #[test]
    fn a_url_makes_a_link_moment_for_the_first_url() {
        let r = parse_moments(
            "new video https://youtu.be/abc123. also https://b.example",
            None,
            &[],
            day(),
        );
        assert_eq!(
            r.moments[0].content,
            MomentContent::Link {
                url: "https://youtu.be/abc123".into()
            }
        );
        assert_eq!(r.moments.len(), 1);
        assert_eq!(r.moments[0].title, "new video also");
    }

    #[test]
    fn a_bare_link_is_titled_by_kind_and_date() {
        let r = parse_moments("https://youtu.be/abc123", None, &[], day());
        assert_eq!(r.moments[0].title, "Link 2026-11-22");
        assert_eq!(r.moments[0].description, "https://youtu.be/abc123");
    }

    #[test]
    fn each_image_audio_or_pdf_is_a_moment_in_order_with_the_text_as_description() {
        let media = [
            item("https://m/1.jpg", "image/jpeg"),
            item("https://m/s.smil", "application/smil"),
            item("https://m/2.mp3", "audio/mpeg"),
            item("https://m/t.txt", "text/plain"),
            item("https://m/3.pdf", "application/pdf"),
        ];
        let r = parse_moments("Opening night", None, &media, day());
        let urls: Vec<_> = r
            .moments
            .iter()
            .map(|m| match &m.content {
                MomentContent::Media { item, .. } => item.url.as_str(),
                other => panic!("not media: {other:?}"),
            })
            .collect();
        assert_eq!(
            urls,
            ["https://m/1.jpg", "https://m/2.mp3", "https://m/3.pdf"]
        );
        assert!(r.moments.iter().all(|m| m.description == "Opening night"));
        assert!(r.moments.iter().all(|m| m.title == "Opening night"));
        assert_eq!(r.refused_videos, 0);
    }

    #[test]
    fn media_without_text_is_titled_by_kind_and_date() {
        let media = [
            item("https://m/1.jpg", "image/jpeg"),
            item("https://m/2.m4a", "audio/mp4"),
        ];
        let r = parse_moments("", None, &media, day());
        assert_eq!(r.moments[0].title, "Photo 2026-11-22");
        assert_eq!(r.moments[1].title, "Audio 2026-11-22");
        assert_eq!(r.moments[0].description, "");
    }

    #[test]
    fn videos_are_refused_and_a_video_only_message_makes_nothing() {
        let r = parse_moments(
            "my film",
            None,
            &[item("https://m/v.mp4", "video/mp4")],
            day(),
        );
        assert!(r.moments.is_empty());
        assert_eq!(r.refused_videos, 1);
        let mixed = parse_moments(
            "",
            None,
            &[
                item("https://m/v.mp4", "video/mp4"),
                item("https://m/p.png", "image/png"),
            ],
            day(),
        );
        assert_eq!(mixed.moments.len(), 1);
        assert_eq!(mixed.refused_videos, 1);
    }

    #[test]
    fn title_line_beats_subject_beats_first_line() {
        let r = parse_moments("first line\ntitle: Chosen\nrest", Some("Subj"), &[], day());
        assert_eq!(r.moments[0].title, "Chosen");
        assert_eq!(r.moments[0].description, "first line\nrest");
        let r = parse_moments("first line", Some("  Subj "), &[], day());
        assert_eq!(r.moments[0].title, "Subj");
    }

    #[test]
    fn long_first_lines_are_cut_at_a_word_boundary() {
        let line = "word ".repeat(30);
        let r = parse_moments(&line, None, &[], day());
        let title = &r.moments[0].title;
        assert!(title.chars().count() <= 100);
        assert!(title.ends_with("word"), "{title}");
        let unbroken = "x".repeat(150);
        let r = parse_moments(&unbroken, None, &[], day());
        assert_eq!(r.moments[0].title.chars().count(), 100);
    }

    #[test]
    fn price_lines_set_the_price_and_leave_the_description() {
        for (line, micro) in [
            ("price: 5", 5_000_000),
            ("Price: $5", 5_000_000),
            ("price: 5 usdc", 5_000_000),
            ("PRICE: 2.50 USDC", 2_500_000),
            ("price: free", 0),
        ] {
            let r = parse_moments(&format!("Sketch\n{line}"), None, &[], day());
            assert_eq!(r.moments[0].price, Price::from_micro_usdc(micro), "{line}");
            assert_eq!(r.moments[0].description, "Sketch", "{line}");
        }
        let r = parse_moments("Sketch\nprice: lots", None, &[], day());
        assert_eq!(r.moments[0].price, Price::DEFAULT);
        assert_eq!(r.moments[0].description, "Sketch\nprice: lots");
    }

    #[test]
    fn prices_print_as_decimals() {
        assert_eq!(Price::DEFAULT.to_string(), "1");
        assert_eq!(Price::from_micro_usdc(2_500_000).to_string(), "2.5");
        assert_eq!(Price::from_micro_usdc(0).to_string(), "0");
        assert_eq!(Price::parse("0.0000001"), Err(PriceError::NotAPrice));
        assert_eq!(Price::parse("-1"), Err(PriceError::NotAPrice));
    }

    #[test]
    fn prices_stop_at_a_billion_usdc() {
        assert_eq!(
            Price::parse("1000000000").map(Price::micro_usdc),
            Ok(1_000_000_000_000_000)
        );
        assert_eq!(
            Price::parse("$0001000000000.000000 usdc").map(Price::micro_usdc),
            Ok(1_000_000_000_000_000)
        );
        for too_high in [
            "1000000000.000001",
            "10000000000000",
            "99999999999999999999",
            "18446744073709551616",
        ] {
            assert_eq!(
                Price::parse(too_high),
                Err(PriceError::TooHigh),
                "{too_high}"
            );
        }
        // Whatever else the text asks for, nothing is posted at a price nobody meant.
        let r = parse_moments("Night\nprice: 10000000000000", None, &[], day());
        assert_eq!(
            r,
            MomentRequest {
                price_too_high: true,
                ..MomentRequest::default()
            }
        );
    }

    #[test]
    fn an_empty_message_asks_for_nothing() {
        assert_eq!(
            parse_moments("  \n ", None, &[], day()),
            MomentRequest::default()
        );
    }

    #[test]
    fn media_kinds_by_content_type() {
        assert_eq!(MediaKind::of("IMAGE/JPEG; charset=x"), MediaKind::Image);
        assert_eq!(MediaKind::of("application/smil"), MediaKind::Ignored);
        assert_eq!(MediaKind::of("video/3gpp"), MediaKind::Video);
        assert_eq!(MediaKind::of(""), MediaKind::Ignored);
    }
}
