//! The words momentline texts. Each fits one GSM-7 segment (160 characters) unless a comment
//! beside it says why not. Names and links are the texter's own: an artist name with a
//! character outside GSM-7 (an emoji, say) makes its text UCS-2, 70 characters a segment.

use super::number_state::ReplyKind;

/// What a reply may need to name.
pub struct ReplyContext<'a> {
    pub artist: Option<&'a str>,
    pub manage_url: &'a str,
    pub moment_links: &'a [String],
}

const SOMEONE: &str = "an artist";

/// The connect prompt. DESIGN.md fixes this text word for word, so it takes two segments.
pub fn prompt(artist: &str) -> String {
    format!(
        "Someone is trying to connect this phone number to the artist profile for {artist} on \
         In Process. If this was you, please reply 'yes'. If this was not you, please ignore \
         this message."
    )
}

/// What stands for the code in the stored text of a code message: the code itself is never
/// stored, and the artist who asked must not read it back from their conversation.
pub const CODE_MASK: &str = "******";

/// The verification code text (`CODE_MASK` for the code in the stored copy).
pub fn code(code: &str, ttl: chrono::Duration) -> String {
    let expires = wait_words(u64::try_from(ttl.num_seconds()).unwrap_or(0));
    format!("Your In Process code is {code}. It expires in {expires}.")
}

/// A wait of `secs` seconds as a person says it: "1 second", "90 seconds", "10 minutes".
pub fn wait_words(secs: u64) -> String {
    match secs {
        1 => "1 second".to_owned(),
        60 => "1 minute".to_owned(),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// The words of an automatic text; `None` for a broadcast, whose words are its operator's
/// (checked by `BroadcastText`, not here).
pub fn render(kind: ReplyKind, ctx: &ReplyContext) -> Option<String> {
    let artist = ctx.artist.unwrap_or(SOMEONE);
    let text = match kind {
        ReplyKind::Prompt => prompt(artist),
        ReplyKind::Verified => format!(
            "Connected to {artist} on In Process. Text a photo, link or words to post a Moment. \
             Reply HELP for help, STOP to opt out."
        ),
        ReplyKind::OptedOut => {
            "You are unsubscribed and will get no more texts from In Process. Reply START to \
             resubscribe."
                .to_owned()
        }
        ReplyKind::OptedIn => {
            "You are resubscribed to In Process texts. Reply HELP for help, STOP to opt out."
                .to_owned()
        }
        ReplyKind::Welcome => format!(
            "This number is not connected to an In Process artist. Connect it at {} \
             Reply STOP to opt out.",
            ctx.manage_url
        ),
        ReplyKind::Expired => {
            "This connect request expired. Please connect your phone again from In Process."
                .to_owned()
        }
        ReplyKind::Reminder => format!(
            "Reply 'yes' to connect this phone to {artist} on In Process, or ignore this \
             message. Reply STOP to opt out."
        ),
        ReplyKind::Help => {
            "Text a photo, audio, PDF, link or words to post a Moment. Optional: 'title: ...', \
             'price: 5' (USDC, default 1). UNDO removes your last Moment. STOP to opt out."
                .to_owned()
        }
        ReplyKind::VideoRefused => {
            "Videos are not supported. Text a link to the video instead.".to_owned()
        }
        // One link fits one segment; several links (an MMS with several photos) may not.
        ReplyKind::MomentPosted => match ctx.moment_links {
            [one] => format!("Moment posted: {one}"),
            links => format!("{} Moments posted: {}", links.len(), links.join(" ")),
        },
        ReplyKind::MomentFailed => {
            "Your Moment could not be posted. Please try again later.".to_owned()
        }
        ReplyKind::MomentDeleted => "Your last Moment was removed.".to_owned(),
        ReplyKind::NothingToUndo => {
            "Nothing to undo: UNDO removes your last Moment within 10 minutes of posting it."
                .to_owned()
        }
        ReplyKind::Code => code(CODE_MASK, chrono::Duration::minutes(10)),
        ReplyKind::PriceTooHigh => format!(
            "Nothing was posted: a Moment's price can be at most {} USDC. Text it again with a \
             lower price.",
            crate::domain::moment::Price::MAX_USDC
        ),
        ReplyKind::KeyRefused => "In Process refused the API key your Moments are posted with \
             (revoked or never set). They wait, and are posted once a new key is registered."
            .to_owned(),
        ReplyKind::PaymentNeeded => "Not posted: In Process needs USDC for this upload. Your \
             free uploads this month are spent and your wallet lacks USDC. Add some, then resend."
            .to_owned(),
        ReplyKind::HostRefused => "Not posted: In Process refused this Moment as it was sent. \
             Check its title and price, then text it again."
            .to_owned(),
        ReplyKind::MomentHidden => match ctx.moment_links {
            [one, ..] => format!("Your Moment was hidden on In Process: {one}"),
            [] => "Your Moment was hidden on In Process.".to_owned(),
        },
        ReplyKind::HideUnconfirmed => match ctx.moment_links {
            [one, ..] => {
                format!("In Process did not confirm hiding your Moment. See it here: {one}")
            }
            [] => "In Process did not confirm hiding your Moment.".to_owned(),
        },
        ReplyKind::MediaLost => "Your photo or file could not be received, so it was not \
             posted. Please send it again."
            .to_owned(),
        ReplyKind::PhotoAdded => match ctx.moment_links {
            [one, ..] => format!("Photo added to your Moment: {one}"),
            [] => "Photo added to your Moment.".to_owned(),
        },
        ReplyKind::Broadcast => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::segments::{Encoding, Segments};
    use crate::domain::TextEnum;

    #[test]
    fn the_prompt_is_the_designed_text() {
        assert_eq!(
            prompt("Sweetman"),
            "Someone is trying to connect this phone number to the artist profile for Sweetman \
             on In Process. If this was you, please reply 'yes'. If this was not you, please \
             ignore this message."
        );
    }

    #[test]
    fn every_reply_but_the_prompt_fits_one_gsm7_segment_for_a_typical_artist() {
        let links = ["https://momentline.example.com/moments/123456".to_owned()];
        let ctx = ReplyContext {
            artist: Some("A Twenty Char Artist"),
            manage_url: "https://inprocess.world/manage",
            moment_links: &links,
        };
        for (kind, _) in ReplyKind::ALL {
            let Some(text) = render(*kind, &ctx) else {
                assert_eq!(
                    *kind,
                    ReplyKind::Broadcast,
                    "only a broadcast has no words of ours"
                );
                continue;
            };
            let segments = Segments::of(&text);
            assert_eq!(segments.encoding, Encoding::Gsm7, "{kind}: {text}");
            let expected = if *kind == ReplyKind::Prompt { 2 } else { 1 };
            assert_eq!(
                segments.count,
                expected,
                "{kind} ({} chars): {text}",
                text.len()
            );
        }
    }

    #[test]
    fn the_code_text_says_when_it_expires_in_one_segment() {
        let text = code("123456", chrono::Duration::minutes(10));
        assert_eq!(
            text,
            "Your In Process code is 123456. It expires in 10 minutes."
        );
        assert_eq!(Segments::of(&text).count, 1);
        assert_eq!(
            code("000001", chrono::Duration::seconds(90)),
            "Your In Process code is 000001. It expires in 90 seconds."
        );
        assert_eq!(
            code(CODE_MASK, chrono::Duration::seconds(60)).len(),
            code("999999", chrono::Duration::seconds(60)).len()
        );
    }

    #[test]
    fn several_moments_are_listed_in_one_reply() {
        let links = ["u1".to_owned(), "u2".to_owned()];
        let ctx = ReplyContext {
            artist: None,
            manage_url: "m",
            moment_links: &links,
        };
        assert_eq!(
            render(ReplyKind::MomentPosted, &ctx).as_deref(),
            Some("2 Moments posted: u1 u2")
        );
    }
}
