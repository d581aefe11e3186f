//! How many SMS segments a text takes, and in which encoding.

use super::text_enum;

text_enum!(
    /// The encoding a text goes out in: GSM-7 when every character is in its alphabet, else
    /// UCS-2.
    Encoding { Gsm7 => "GSM-7", Ucs2 => "UCS-2" }
);

/// The GSM 03.38 basic alphabet.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
    ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each takes two septets (an escape and the character).
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// A text's encoding and segment count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    pub count: u32,
}

impl Segments {
    pub fn of(text: &str) -> Self {
        match gsm7_septets(text) {
            Some(septets) => Self {
                encoding: Encoding::Gsm7,
                count: parts(septets, 160, 153),
            },
            None => Self {
                encoding: Encoding::Ucs2,
                count: parts(text.encode_utf16().count(), 70, 67),
            },
        }
    }
}

/// The text's length in septets, or `None` if a character is outside GSM-7.
fn gsm7_septets(text: &str) -> Option<usize> {
    text.chars().try_fold(0, |n, c| {
        if GSM7_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM7_EXTENSION.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

fn parts(units: usize, single: usize, each: usize) -> u32 {
    let count = if units <= single {
        1
    } else {
        units.div_ceil(each)
    };
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> (Encoding, u32) {
        let s = Segments::of(text);
        (s.encoding, s.count)
    }

    #[test]
    fn plain_ascii_is_gsm7_160_then_153_per_part() {
        assert_eq!(of(""), (Encoding::Gsm7, 1));
        assert_eq!(of(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(of(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(of(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(of(&"a".repeat(307)), (Encoding::Gsm7, 3));
    }

    #[test]
    fn extension_characters_count_twice() {
        assert_eq!(of(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(of(&format!("{}{{", "a".repeat(159))), (Encoding::Gsm7, 2));
    }

    #[test]
    fn one_character_outside_gsm7_makes_the_text_ucs2() {
        assert_eq!(of("héllo"), (Encoding::Gsm7, 1), "é is in GSM-7");
        assert_eq!(of("hello ✨"), (Encoding::Ucs2, 1));
        assert_eq!(of(&"ç".repeat(70)), (Encoding::Ucs2, 1), "only Ç is GSM-7");
        assert_eq!(of(&"ç".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(of(&"ç".repeat(135)), (Encoding::Ucs2, 3));
    }

    #[test]
    fn emoji_take_two_ucs2_units() {
        assert_eq!(of(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        assert_eq!(of(&"😀".repeat(36)), (Encoding::Ucs2, 2));
    }
}
