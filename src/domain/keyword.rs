//! The keywords a texter can send: a keyword is the whole message, ignoring case, spaces and
//! punctuation.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    OptOut,
    OptIn,
    Help,
    Affirmative,
    /// Removes the number's last Moment (within `UNDO_WINDOW` of it).
    Undo,
}

const OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
const OPT_IN: &[&str] = &["START", "UNSTOP"];
const HELP: &[&str] = &["HELP", "INFO"];
const UNDO: &[&str] = &["UNDO", "DELETE"];
const AFFIRMATIVE: &[&str] = &["YES", "Y", "YEA", "YEAH", "YEP", "YUP", "YES PLEASE"];

impl Keyword {
    pub fn classify(text: &str) -> Option<Self> {
        let squeezed: String = text
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_uppercase)
            .collect();
        let is = |list: &[&str]| list.iter().any(|k| k.replace(' ', "") == squeezed);
        if squeezed.is_empty() {
            None
        } else if is(OPT_OUT) {
            Some(Self::OptOut)
        } else if is(OPT_IN) {
            Some(Self::OptIn)
        } else if is(HELP) {
            Some(Self::Help)
        } else if is(AFFIRMATIVE) {
            Some(Self::Affirmative)
        } else if is(UNDO) {
            Some(Self::Undo)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_words_in_any_case_and_spacing() {
        for text in [
            "STOP",
            "stop",
            " Stop. ",
            "STOPALL",
            "stop all",
            "Unsubscribe",
            "cancel",
            "END",
            "quit!",
            "revoke",
            "opt-out",
            "OPTOUT",
        ] {
            assert_eq!(Keyword::classify(text), Some(Keyword::OptOut), "{text}");
        }
    }

    #[test]
    fn opt_in_help_and_affirmative_forms() {
        assert_eq!(Keyword::classify("start"), Some(Keyword::OptIn));
        assert_eq!(Keyword::classify("UNSTOP"), Some(Keyword::OptIn));
        assert_eq!(Keyword::classify("Help?"), Some(Keyword::Help));
        assert_eq!(Keyword::classify("info"), Some(Keyword::Help));
        for undo in ["UNDO", "undo", "Undo!", "delete", "DELETE."] {
            assert_eq!(Keyword::classify(undo), Some(Keyword::Undo), "{undo}");
        }
        for yes in [
            "yes",
            "YES",
            "Yes!",
            "YES.",
            "y",
            "yeah",
            "yep",
            "Yep 👍",
            "yes please",
        ] {
            assert_eq!(Keyword::classify(yes), Some(Keyword::Affirmative), "{yes}");
        }
    }

    #[test]
    fn words_inside_longer_messages_are_not_keywords() {
        for text in [
            "stop by the gallery",
            "yes I made this",
            "",
            "   ",
            "!!!",
            "helpful",
            "delete the last one",
            "undone",
        ] {
            assert_eq!(Keyword::classify(text), None, "{text}");
        }
    }
}
