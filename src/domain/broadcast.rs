//! An operator's broadcast text: checked once, so a held value can always be sent.

use super::segments::Segments;

/// The most SMS segments a broadcast may take: past this a text costs more than it is worth
/// and some carriers no longer join the parts.
pub const MAX_SEGMENTS: u32 = 10;

/// The words of a broadcast, with the segments they take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastText {
    body: String,
    segments: Segments,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastTextError {
    #[error("the broadcast text is empty")]
    Empty,
    #[error("the broadcast text holds a control character ({0:?}); only line breaks are allowed")]
    Control(char),
    #[error(
        "the broadcast text takes {count} SMS segments ({encoding}); at most {MAX_SEGMENTS} are allowed",
        count = .0.count,
        encoding = .0.encoding
    )]
    TooLong(Segments),
}

impl BroadcastText {
    /// The text as given, without the blank space around it (a shell's trailing newline).
    pub fn parse(input: &str) -> Result<Self, BroadcastTextError> {
        let body = input.trim();
        if body.is_empty() {
            return Err(BroadcastTextError::Empty);
        }
        if let Some(c) = body
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\r'))
        {
            return Err(BroadcastTextError::Control(c));
        }
        let segments = Segments::of(body);
        if segments.count > MAX_SEGMENTS {
            return Err(BroadcastTextError::TooLong(segments));
        }
        Ok(Self {
            body: body.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.body
    }

    pub fn segments(&self) -> Segments {
        self.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::segments::Encoding;

    #[test]
    fn a_text_is_kept_as_written_without_its_surrounding_space() {
        let text = BroadcastText::parse("  New show Friday!\nSee you there \n").expect("valid");
        assert_eq!(text.as_str(), "New show Friday!\nSee you there");
        assert_eq!(text.segments().count, 1);
    }

    #[test]
    fn an_empty_or_blank_text_is_refused() {
        assert_eq!(BroadcastText::parse(""), Err(BroadcastTextError::Empty));
        assert_eq!(
            BroadcastText::parse(" \n\t "),
            Err(BroadcastTextError::Empty)
        );
    }

    #[test]
    fn control_characters_other_than_line_breaks_are_refused() {
        assert_eq!(
            BroadcastText::parse("bell\u{7}"),
            Err(BroadcastTextError::Control('\u{7}'))
        );
    }

    #[test]
    fn ten_segments_are_allowed_and_eleven_refused() {
        // GSM-7: 153 characters a part once a text takes more than one.
        let ten = "a".repeat(153 * 10);
        assert_eq!(
            BroadcastText::parse(&ten).expect("ten").segments().count,
            10
        );
        let eleven = "a".repeat(153 * 10 + 1);
        let refused = BroadcastText::parse(&eleven).expect_err("eleven");
        assert_eq!(
            refused.to_string(),
            "the broadcast text takes 11 SMS segments (GSM-7); at most 10 are allowed"
        );
        // UCS-2: 67 characters a part.
        let emoji = "é😀".repeat(400);
        let refused = BroadcastText::parse(&emoji).expect_err("too long");
        assert!(matches!(refused, BroadcastTextError::TooLong(s) if s.encoding == Encoding::Ucs2));
    }
}
