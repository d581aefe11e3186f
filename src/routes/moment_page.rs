//! The public page of one Moment, as an artist shares it: the Moment once, who made it and
//! when, what it costs to collect, and the Open Graph and Twitter tags a link preview reads.
//! An askama template (`templates/moment.html`): plain HTML to edit, compiled and type-checked
//! with the code, and every value HTML-escaped unless the template says otherwise (it never does).

use askama::Template;
use chrono::DateTime;

use crate::db::moments::MomentView;
use crate::domain::moment::{cut_at_word, MediaKind, Price};
use crate::domain::MediaState;

/// `og:site_name`.
const SITE_NAME: &str = "momentline";
/// About as much of a description as a search result or a link preview shows.
const SUMMARY_MAX_CHARS: usize = 200;

#[derive(Template)]
#[template(path = "moment.html")]
pub struct MomentPage<'a> {
    title: &'a str,
    artist: &'a str,
    /// Only when it says more than the title.
    description: Option<String>,
    /// The meta and preview description.
    summary: String,
    /// "22 November 2026".
    date: Option<String>,
    created_at: &'a str,
    /// "Collect for 5 USDC" or "Free to collect".
    price: String,
    media: Media<'a>,
    link: Option<&'a str>,
    /// Absolute: `og:url` and the canonical link.
    url: String,
    /// The kept image's absolute URL, for the previews.
    image: Option<&'a str>,
    site_name: &'static str,
}

/// What the page shows of a media Moment's file. URLs are http(s) only.
enum Media<'a> {
    None,
    Image(&'a str),
    Audio(&'a str),
    File(&'a str),
    Fetching,
    Lost,
}

impl<'a> MomentPage<'a> {
    /// The page of `m`, whose own page is `own_url`. Where the Moment was created elsewhere (a
    /// host platform), that address is its canonical one.
    pub fn new(m: &'a MomentView, own_url: String) -> Self {
        let media = match &m.media {
            None => Media::None,
            Some(media) => match media.url.as_deref().and_then(safe_url) {
                Some(url) => match MediaKind::of(&media.content_type) {
                    MediaKind::Image => Media::Image(url),
                    MediaKind::Audio => Media::Audio(url),
                    _ => Media::File(url),
                },
                None if media.state == MediaState::Fetching => Media::Fetching,
                None => Media::Lost,
            },
        };
        let image = match media {
            Media::Image(url) => Some(url),
            _ => None,
        };
        let link = m.link.as_deref().and_then(safe_url);
        let description = shown_description(&m.title, &m.description, link);
        let date = DateTime::parse_from_rfc3339(&m.created_at)
            .map(|d| d.format("%-d %B %Y").to_string())
            .map_err(
                |e| tracing::warn!(id = m.id.0, error = %e, "a Moment's created_at is not a time"),
            )
            .ok();
        let summary = match (&description, &date) {
            (Some(d), _) => summary_of(d),
            (None, Some(date)) => format!("A Moment by {}, {date}.", m.artist),
            (None, None) => format!("A Moment by {}.", m.artist),
        };
        let free = Price::parse(&m.price).is_ok_and(|p| p.micro_usdc() == 0);
        let price = if free {
            "Free to collect".to_owned()
        } else {
            format!("Collect for {} USDC", m.price)
        };
        let url = m
            .url
            .as_deref()
            .and_then(safe_url)
            .map_or(own_url, str::to_owned);
        Self {
            title: &m.title,
            artist: &m.artist,
            description,
            summary,
            date,
            created_at: &m.created_at,
            price,
            media,
            link,
            url,
            image,
            site_name: SITE_NAME,
        }
    }
}

/// Only http(s) links are ever put in an attribute.
fn safe_url(url: &str) -> Option<&str> {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(url)
}

/// The description, unless it only repeats the title: a text's first line is its title, so
/// that line is dropped when it is the title again (in any case or punctuation, or with the
/// Moment's link, which the page shows on its own, or when it is nothing but that link).
fn shown_description(title: &str, description: &str, link: Option<&str>) -> Option<String> {
    let description = description.trim();
    let repeats_title = |line: &str| {
        let line = link.map_or(line.to_owned(), |l| line.replace(l, " "));
        let bare = line.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation());
        bare.is_empty() || same_words(title, &line)
    };
    if description.is_empty() || repeats_title(description) {
        return None;
    }
    let (first, rest) = description.split_once('\n').unwrap_or((description, ""));
    if repeats_title(first) {
        let rest = rest.trim();
        return (!rest.is_empty()).then(|| rest.to_owned());
    }
    Some(description.to_owned())
}

/// The same words in the same order, ignoring case and punctuation; text with no words at all
/// (only emoji, say) must match exactly.
fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (wa, wb) = (words(a), words(b));
    if wa.is_empty() && wb.is_empty() {
        a.trim() == b.trim()
    } else {
        wa == wb
    }
}

/// A description on one line, cut at a word to what a preview shows.
fn summary_of(description: &str) -> String {
    let line = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut = cut_at_word(&line, SUMMARY_MAX_CHARS - 1);
    if cut.len() < line.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_that_only_repeats_the_title_is_not_shown() {
        for (title, description) in [
            ("Studio light", "Studio light"),
            ("Studio light", "studio light!"),
            ("Studio light", "  Studio   light. "),
            ("Studio light", ""),
            ("🎉", "🎉"),
        ] {
            assert_eq!(
                shown_description(title, description, None),
                None,
                "{description:?}"
            );
        }
    }

    #[test]
    fn a_description_that_says_more_is_shown_without_the_title_line() {
        assert_eq!(
            shown_description("Studio light", "Studio light\nShot at dawn.\n\nTwo", None)
                .as_deref(),
            Some("Shot at dawn.\n\nTwo")
        );
        assert_eq!(
            shown_description("New film", "watch it", None).as_deref(),
            Some("watch it")
        );
        assert_eq!(shown_description("🎉", "🔥", None).as_deref(), Some("🔥"));
        // A title cut from a long first line: the line says more.
        assert_eq!(
            shown_description("A long", "A long line", None).as_deref(),
            Some("A long line")
        );
    }

    #[test]
    fn a_link_moments_first_line_is_its_title_and_its_link() {
        let link = Some("https://example.com/studio");
        assert_eq!(
            shown_description(
                "First light",
                "First light https://example.com/studio",
                link
            ),
            None
        );
        assert_eq!(
            shown_description(
                "First light",
                "First light https://example.com/studio\nin the new room",
                link
            )
            .as_deref(),
            Some("in the new room")
        );
        assert_eq!(
            shown_description("Link 2026-11-22", "https://example.com/studio.", link),
            None
        );
        // Another URL is content.
        assert_eq!(
            shown_description("First light", "First light https://other.example", link).as_deref(),
            Some("First light https://other.example")
        );
    }

    #[test]
    fn a_summary_is_one_line_cut_at_a_word() {
        assert_eq!(summary_of("Shot\n at   dawn"), "Shot at dawn");
        let long = "word ".repeat(100);
        let summary = summary_of(&long);
        assert!(summary.chars().count() <= SUMMARY_MAX_CHARS, "{summary}");
        assert!(summary.ends_with("word…"), "{summary}");
    }

    #[test]
    fn only_http_urls_are_kept() {
        assert_eq!(safe_url("HTTPS://a.example/x"), Some("HTTPS://a.example/x"));
        assert_eq!(safe_url("javascript:alert(1)"), None);
        assert_eq!(safe_url("data:text/html,x"), None);
    }
}
