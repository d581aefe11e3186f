//! The per-number state machine of DESIGN.md as pure functions: (standing, event, context) →
//! (next standing, effects). The caller persists the result and records its cause.

use chrono::{DateTime, Duration, Utc};

use super::keyword::Keyword;
use super::moment::{MomentCommand, MomentRequest};
use super::text_enum;

pub use super::ids::ArtistId;

/// A connect request waiting for its "yes": which artist asked, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub artist: ArtistId,
    pub at: DateTime<Utc>,
}

impl ConnectRequest {
    pub fn expired(&self, now: DateTime<Utc>, ttl: Duration) -> bool {
        self.at + ttl <= now
    }
}

/// Where a number stands, with what each state remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Unknown,
    Pending(ConnectRequest),
    /// Bound to `owner`; `takeover` is another artist's request that only the number's own
    /// "yes" can complete.
    Verified {
        owner: ArtistId,
        takeover: Option<ConnectRequest>,
    },
    /// Texted STOP; remembers what it was before (never itself opted out).
    OptedOut(Box<Standing>),
}

text_enum!(
    /// The state column of a number.
    NumberStatus {
        Unknown => "unknown",
        Pending => "pending",
        Verified => "verified",
        OptedOut => "opted_out",
    }
);

impl Standing {
    pub fn status(&self) -> NumberStatus {
        match self {
            Self::Unknown => NumberStatus::Unknown,
            Self::Pending(_) => NumberStatus::Pending,
            Self::Verified { .. } => NumberStatus::Verified,
            Self::OptedOut(_) => NumberStatus::OptedOut,
        }
    }

    /// The artist whose conversation a message to or from this number belongs to.
    pub fn artist(&self) -> Option<ArtistId> {
        match self {
            Self::Unknown => None,
            Self::Pending(request) => Some(request.artist),
            Self::Verified { owner, .. } => Some(*owner),
            Self::OptedOut(before) => before.artist(),
        }
    }

    /// The artist the number is verified for (or was, before it opted out).
    pub fn owner(&self) -> Option<ArtistId> {
        match self {
            Self::Verified { owner, .. } => Some(*owner),
            Self::OptedOut(before) => before.owner(),
            _ => None,
        }
    }

    fn opted_out(self) -> Self {
        match self {
            Self::OptedOut(_) => self,
            other => Self::OptedOut(Box::new(other)),
        }
    }
}

text_enum!(
    /// What caused a change of a number's state.
    ChangeCause {
        Inbound => "inbound",
        Connect => "connect",
        Disconnect => "disconnect",
        Provider => "provider",
        Code => "code",
    }
);

text_enum!(
    /// Every automatic text momentline sends, and an operator's broadcast; also the `purpose`
    /// of an outbound message.
    ReplyKind {
        Prompt => "prompt",
        Verified => "verified",
        OptedOut => "opted_out",
        OptedIn => "opted_in",
        Welcome => "welcome",
        Expired => "expired",
        Reminder => "reminder",
        Help => "help",
        VideoRefused => "video_refused",
        MomentPosted => "moment_posted",
        MomentFailed => "moment_failed",
        PriceTooHigh => "price_too_high",
        MomentDeleted => "moment_deleted",
        NothingToUndo => "nothing_to_undo",
        Broadcast => "broadcast",
        Code => "code",
        KeyRefused => "key_refused",
        PaymentNeeded => "payment_needed",
        HostRefused => "host_refused",
        MomentHidden => "moment_hidden",
        HideUnconfirmed => "hide_unconfirmed",
        MediaLost => "media_lost",
        PhotoAdded => "photo_added",
    }
);

impl ReplyKind {
    /// Confirmations a carrier requires us to send whatever the caps say.
    fn exempt_from_caps(self) -> bool {
        matches!(self, Self::OptedOut | Self::OptedIn)
    }
}

/// An inbound message, as the state machine sees it: the keyword it is, if any, and what it
/// would post as Moments (which may be nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub keyword: Option<Keyword>,
    pub content: MomentRequest,
}

/// How many automatic texts this number was sent lately.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecentReplies {
    /// Welcomes within the welcome interval.
    pub recent_welcomes: u32,
    pub reminders_last_hour: u32,
    pub replies_last_hour: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    pub reminders_per_hour: u32,
    pub replies_per_hour: u32,
    /// Least time between two welcomes to one unknown number.
    pub welcome_interval: Duration,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        Self {
            reminders_per_hour: 3,
            replies_per_hour: 30,
            welcome_interval: Duration::days(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InboundContext {
    pub now: DateTime<Utc>,
    pub pending_ttl: Duration,
    pub recent: RecentReplies,
    pub limits: ReplyLimits,
    /// Whether the number has a Moment UNDO may still remove (looked up only for UNDO).
    pub undoable: bool,
}

/// How long after a Moment UNDO may remove it.
pub const UNDO_WINDOW: Duration = Duration::minutes(10);

/// What an inbound message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: Standing,
    pub replies: Vec<ReplyKind>,
    pub moments: Vec<MomentCommand>,
    /// Remove the number's last Moment (UNDO).
    pub undo: bool,
}

/// A provider reports that the carrier has the number opted out (it refused a text to it for
/// that): nothing is sent to it again until it texts START. `None` when it already is.
pub fn on_carrier_opt_out(standing: &Standing) -> Option<Standing> {
    match standing {
        Standing::OptedOut(_) => None,
        other => Some(other.clone().opted_out()),
    }
}

/// DESIGN.md's inbound table, row by row.
pub fn on_inbound(standing: &Standing, message: Inbound, ctx: &InboundContext) -> Decision {
    let expired = |r: &ConnectRequest| r.expired(ctx.now, ctx.pending_ttl);
    let stay = |replies: Vec<ReplyKind>| (standing.clone(), replies, Vec::new());
    let (next, replies, moments) = match (standing, message.keyword) {
        (Standing::OptedOut(before), Some(Keyword::OptIn)) => {
            ((**before).clone(), vec![ReplyKind::OptedIn], Vec::new())
        }
        (Standing::OptedOut(_), _) => stay(Vec::new()),
        (_, Some(Keyword::OptOut)) => (
            standing.clone().opted_out(),
            vec![ReplyKind::OptedOut],
            Vec::new(),
        ),
        (Standing::Pending(request), Some(Keyword::Affirmative)) => {
            if expired(request) {
                (Standing::Unknown, vec![ReplyKind::Expired], Vec::new())
            } else {
                let next = Standing::Verified {
                    owner: request.artist,
                    takeover: None,
                };
                (next, vec![ReplyKind::Verified], Vec::new())
            }
        }
        // An expired request is as good as none: the number is unknown again.
        (Standing::Pending(request), _) if expired(request) => {
            (Standing::Unknown, vec![ReplyKind::Welcome], Vec::new())
        }
        (Standing::Pending(_), _) => stay(vec![ReplyKind::Reminder]),
        (Standing::Unknown, _) => stay(vec![ReplyKind::Welcome]),
        (
            Standing::Verified {
                takeover: Some(request),
                owner,
            },
            Some(Keyword::Affirmative),
        ) => {
            if expired(request) {
                let next = Standing::Verified {
                    owner: *owner,
                    takeover: None,
                };
                (next, vec![ReplyKind::Expired], Vec::new())
            } else {
                let next = Standing::Verified {
                    owner: request.artist,
                    takeover: None,
                };
                (next, vec![ReplyKind::Verified], Vec::new())
            }
        }
        (Standing::Verified { .. }, Some(Keyword::Help)) => stay(vec![ReplyKind::Help]),
        (Standing::Verified { .. }, Some(Keyword::Undo)) if ctx.undoable => {
            return Decision {
                next: standing.clone(),
                replies: cap(vec![ReplyKind::MomentDeleted], ctx),
                moments: Vec::new(),
                undo: true,
            };
        }
        (Standing::Verified { .. }, Some(Keyword::Undo)) => stay(vec![ReplyKind::NothingToUndo]),
        // With no request waiting, "yes" (or START) is just words: a text Moment.
        (Standing::Verified { .. }, _) => moments_reply(standing, message.content),
    };
    Decision {
        next,
        replies: cap(replies, ctx),
        moments,
        undo: false,
    }
}

fn moments_reply(
    standing: &Standing,
    request: MomentRequest,
) -> (Standing, Vec<ReplyKind>, Vec<MomentCommand>) {
    let mut replies = Vec::new();
    if request.price_too_high {
        return (standing.clone(), vec![ReplyKind::PriceTooHigh], Vec::new());
    }
    if !request.moments.is_empty() {
        replies.push(ReplyKind::MomentPosted);
    }
    if request.refused_videos > 0 {
        replies.push(ReplyKind::VideoRefused);
    }
    if replies.is_empty() {
        // Nothing to post (an empty MMS, say): say how to post.
        replies.push(ReplyKind::Help);
    }
    (standing.clone(), replies, request.moments)
}

/// Drops automatic replies past the caps against texting a number too often.
fn cap(replies: Vec<ReplyKind>, ctx: &InboundContext) -> Vec<ReplyKind> {
    let mut sent_this_hour = ctx.recent.replies_last_hour;
    replies
        .into_iter()
        .filter(|kind| {
            if kind.exempt_from_caps() {
                return true;
            }
            let allowed = sent_this_hour < ctx.limits.replies_per_hour
                && match kind {
                    ReplyKind::Welcome => ctx.recent.recent_welcomes == 0,
                    ReplyKind::Reminder => {
                        ctx.recent.reminders_last_hour < ctx.limits.reminders_per_hour
                    }
                    _ => true,
                };
            sent_this_hour += u32::from(allowed);
            allowed
        })
        .collect()
}

/// What disconnecting `artist` from a number leaves; `None` when the number is not theirs.
/// A takeover waiting on the number stays waiting when its owner leaves.
pub fn on_disconnect(standing: &Standing, artist: ArtistId) -> Option<Standing> {
    match standing {
        Standing::Pending(r) if r.artist == artist => Some(Standing::Unknown),
        Standing::Verified { owner, takeover } if *owner == artist => Some(
            takeover
                .clone()
                .map_or(Standing::Unknown, Standing::Pending),
        ),
        Standing::Verified {
            owner,
            takeover: Some(r),
        } if r.artist == artist => Some(Standing::Verified {
            owner: *owner,
            takeover: None,
        }),
        Standing::OptedOut(before) => {
            on_disconnect(before, artist).map(|b| Standing::OptedOut(Box::new(b)))
        }
        _ => None,
    }
}

/// What entering the right verification code for `artist` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeConfirmed {
    /// Move to `next`: verified for the artist.
    Verified {
        next: Standing,
    },
    AlreadyVerified,
    OptedOut,
}

/// The right code proves the artist holds the phone: it is the number's own "yes" to that
/// artist, even over a number verified for someone else. Another artist's request waiting
/// on the number keeps waiting, as a takeover of the new owner.
pub fn on_code_confirmed(standing: &Standing, artist: ArtistId) -> CodeConfirmed {
    let others = |r: &ConnectRequest| r.artist != artist;
    let takeover = match standing {
        Standing::OptedOut(_) => return CodeConfirmed::OptedOut,
        Standing::Verified { owner, .. } if *owner == artist => {
            return CodeConfirmed::AlreadyVerified
        }
        Standing::Verified { takeover, .. } => takeover.clone().filter(others),
        Standing::Pending(request) => Some(request.clone()).filter(others),
        Standing::Unknown => None,
    };
    CodeConfirmed::Verified {
        next: Standing::Verified {
            owner: artist,
            takeover,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectLimits {
    /// Least time between two prompts to one number.
    pub prompt_cooldown: Duration,
    /// Most prompts to one number in 24 hours.
    pub prompts_per_day: usize,
    /// Most prompts one artist may cause in an hour.
    pub connects_per_hour: usize,
}

impl Default for ConnectLimits {
    fn default() -> Self {
        Self {
            prompt_cooldown: Duration::seconds(60),
            prompts_per_day: 5,
            connects_per_hour: 30,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectContext<'a> {
    pub now: DateTime<Utc>,
    pub pending_ttl: Duration,
    /// When prompts were sent to this number in the last 24 hours, oldest first.
    pub number_prompts: &'a [DateTime<Utc>],
    /// When this artist's connects sent prompts in the last hour, oldest first.
    pub artist_prompts: &'a [DateTime<Utc>],
    pub limits: ConnectLimits,
}

/// What a connect request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// Move to `next` and text the prompt.
    Prompt {
        next: Standing,
    },
    AlreadyVerified,
    OptedOut,
    RateLimited {
        retry_after: Duration,
    },
}

/// DESIGN.md's connect table, with the limits against SMS pumping.
pub fn on_connect(standing: &Standing, artist: ArtistId, ctx: &ConnectContext) -> ConnectOutcome {
    let request = ConnectRequest {
        artist,
        at: ctx.now,
    };
    let next = match standing {
        Standing::OptedOut(_) => return ConnectOutcome::OptedOut,
        Standing::Verified { owner, .. } if *owner == artist => {
            return ConnectOutcome::AlreadyVerified
        }
        Standing::Verified { owner, .. } => Standing::Verified {
            owner: *owner,
            takeover: Some(request),
        },
        Standing::Unknown | Standing::Pending(_) => Standing::Pending(request),
    };
    if let Some(retry_after) = rate_limit(ctx) {
        return ConnectOutcome::RateLimited { retry_after };
    }
    ConnectOutcome::Prompt { next }
}

fn rate_limit(ctx: &ConnectContext) -> Option<Duration> {
    let limits = ctx.limits;
    let mut waits = Vec::new();
    if ctx.artist_prompts.len() >= limits.connects_per_hour {
        let oldest = ctx.artist_prompts[ctx.artist_prompts.len() - limits.connects_per_hour];
        waits.push(oldest + Duration::hours(1) - ctx.now);
    }
    if let Some(last) = ctx.number_prompts.last() {
        waits.push(*last + limits.prompt_cooldown - ctx.now);
    }
    if ctx.number_prompts.len() >= limits.prompts_per_day {
        let oldest = ctx.number_prompts[ctx.number_prompts.len() - limits.prompts_per_day];
        waits.push(oldest + Duration::days(1) - ctx.now);
    }
    waits.into_iter().filter(|w| *w > Duration::zero()).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::moment::parse_moments;

    const A: ArtistId = ArtistId(1);
    const B: ArtistId = ArtistId(2);

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    #[test]
    fn a_carrier_opt_out_opts_any_number_out_once_and_keeps_what_it_was() {
        let verified = Standing::Verified {
            owner: A,
            takeover: None,
        };
        assert_eq!(
            on_carrier_opt_out(&verified),
            Some(Standing::OptedOut(Box::new(verified.clone())))
        );
        assert_eq!(
            on_carrier_opt_out(&Standing::Unknown),
            Some(Standing::OptedOut(Box::new(Standing::Unknown)))
        );
        assert_eq!(
            on_carrier_opt_out(&Standing::OptedOut(Box::new(verified))),
            None
        );
    }

    fn ctx() -> InboundContext {
        InboundContext {
            now: now(),
            pending_ttl: Duration::hours(24),
            recent: RecentReplies::default(),
            limits: ReplyLimits::default(),
            undoable: false,
        }
    }

    fn fresh(artist: ArtistId) -> ConnectRequest {
        ConnectRequest {
            artist,
            at: now() - Duration::minutes(5),
        }
    }

    fn stale(artist: ArtistId) -> ConnectRequest {
        ConnectRequest {
            artist,
            at: now() - Duration::hours(25),
        }
    }

    fn verified(owner: ArtistId) -> Standing {
        Standing::Verified {
            owner,
            takeover: None,
        }
    }

    fn kw(k: Keyword) -> Inbound {
        Inbound {
            keyword: Some(k),
            content: parse_moments("keyword", None, &[], now().date_naive()),
        }
    }

    fn text(t: &str) -> Inbound {
        Inbound {
            keyword: None,
            content: parse_moments(t, None, &[], now().date_naive()),
        }
    }

    fn video() -> Inbound {
        let media = [crate::domain::moment::MediaItem {
            url: "https://m/v.mp4".into(),
            content_type: "video/mp4".into(),
        }];
        Inbound {
            keyword: None,
            content: parse_moments("", None, &media, now().date_naive()),
        }
    }

    #[test]
    fn any_state_opts_out_on_stop_with_one_confirmation() {
        for standing in [Standing::Unknown, Standing::Pending(fresh(A)), verified(A)] {
            let d = on_inbound(&standing, kw(Keyword::OptOut), &ctx());
            assert_eq!(d.next, Standing::OptedOut(Box::new(standing.clone())));
            assert_eq!(d.replies, [ReplyKind::OptedOut]);
        }
    }

    #[test]
    fn opted_out_numbers_hear_nothing_but_the_opt_in_confirmation() {
        let out = Standing::OptedOut(Box::new(verified(A)));
        for message in [
            kw(Keyword::OptOut),
            kw(Keyword::Help),
            kw(Keyword::Affirmative),
            text("hello"),
        ] {
            let d = on_inbound(&out, message, &ctx());
            assert_eq!(d.next, out);
            assert!(d.replies.is_empty());
            assert!(d.moments.is_empty());
        }
        let d = on_inbound(&out, kw(Keyword::OptIn), &ctx());
        assert_eq!(d.next, verified(A));
        assert_eq!(d.replies, [ReplyKind::OptedIn]);
    }

    #[test]
    fn opt_out_confirmations_ignore_the_caps() {
        let mut c = ctx();
        c.recent.replies_last_hour = 1000;
        let d = on_inbound(&verified(A), kw(Keyword::OptOut), &c);
        assert_eq!(d.replies, [ReplyKind::OptedOut]);
    }

    #[test]
    fn unknown_numbers_get_one_welcome_a_day() {
        let d = on_inbound(&Standing::Unknown, text("hi"), &ctx());
        assert_eq!(d.next, Standing::Unknown);
        assert_eq!(d.replies, [ReplyKind::Welcome]);
        assert!(d.moments.is_empty());
        let mut c = ctx();
        c.recent.recent_welcomes = 1;
        assert!(on_inbound(&Standing::Unknown, text("hi"), &c)
            .replies
            .is_empty());
    }

    #[test]
    fn pending_yes_verifies_for_the_artist_who_asked() {
        let d = on_inbound(
            &Standing::Pending(fresh(A)),
            kw(Keyword::Affirmative),
            &ctx(),
        );
        assert_eq!(d.next, verified(A));
        assert_eq!(d.replies, [ReplyKind::Verified]);
    }

    #[test]
    fn an_expired_pending_yes_is_told_to_connect_again() {
        let d = on_inbound(
            &Standing::Pending(stale(A)),
            kw(Keyword::Affirmative),
            &ctx(),
        );
        assert_eq!(d.next, Standing::Unknown);
        assert_eq!(d.replies, [ReplyKind::Expired]);
    }

    #[test]
    fn undo_removes_a_verified_numbers_last_moment_when_there_is_one() {
        let mut c = ctx();
        c.undoable = true;
        let d = on_inbound(&verified(A), kw(Keyword::Undo), &c);
        assert!(d.undo);
        assert_eq!(d.replies, [ReplyKind::MomentDeleted]);
        assert_eq!(d.next, verified(A));
        assert!(d.moments.is_empty());

        let d = on_inbound(&verified(A), kw(Keyword::Undo), &ctx());
        assert!(!d.undo);
        assert_eq!(d.replies, [ReplyKind::NothingToUndo]);

        // Anywhere else it is no command.
        for standing in [Standing::Unknown, Standing::Pending(fresh(A))] {
            let d = on_inbound(&standing, kw(Keyword::Undo), &c);
            assert!(!d.undo, "{standing:?}");
        }
        let out = Standing::OptedOut(Box::new(verified(A)));
        let d = on_inbound(&out, kw(Keyword::Undo), &c);
        assert!(!d.undo && d.replies.is_empty());
    }

    #[test]
    fn pending_anything_else_is_reminded_a_few_times_an_hour() {
        for message in [kw(Keyword::Help), text("what is this")] {
            let d = on_inbound(&Standing::Pending(fresh(A)), message, &ctx());
            assert_eq!(d.next, Standing::Pending(fresh(A)));
            assert_eq!(d.replies, [ReplyKind::Reminder]);
        }
        let mut c = ctx();
        c.recent.reminders_last_hour = 3;
        let d = on_inbound(&Standing::Pending(fresh(A)), text("?"), &c);
        assert!(d.replies.is_empty());
    }

    #[test]
    fn verified_help_says_how_to_post() {
        let d = on_inbound(&verified(A), kw(Keyword::Help), &ctx());
        assert_eq!(d.next, verified(A));
        assert_eq!(d.replies, [ReplyKind::Help]);
    }

    #[test]
    fn verified_video_only_is_refused() {
        let d = on_inbound(&verified(A), video(), &ctx());
        assert!(d.moments.is_empty());
        assert_eq!(d.replies, [ReplyKind::VideoRefused]);
    }

    #[test]
    fn verified_anything_else_posts_a_moment() {
        let d = on_inbound(&verified(A), text("new work"), &ctx());
        assert_eq!(d.next, verified(A));
        assert_eq!(d.moments.len(), 1);
        assert_eq!(d.replies, [ReplyKind::MomentPosted]);
    }

    #[test]
    fn moments_are_posted_even_past_the_reply_cap() {
        let mut c = ctx();
        c.recent.replies_last_hour = 30;
        let d = on_inbound(&verified(A), text("new work"), &c);
        assert_eq!(d.moments.len(), 1);
        assert!(d.replies.is_empty());
    }

    #[test]
    fn a_takeover_completes_only_on_the_numbers_yes() {
        let contested = Standing::Verified {
            owner: B,
            takeover: Some(fresh(A)),
        };
        let d = on_inbound(&contested, text("still mine"), &ctx());
        assert_eq!(d.next, contested, "B keeps the number while A waits");
        assert_eq!(d.moments.len(), 1);
        let d = on_inbound(&contested, kw(Keyword::Affirmative), &ctx());
        assert_eq!(d.next, verified(A));
        assert_eq!(d.replies, [ReplyKind::Verified]);
        let expired = Standing::Verified {
            owner: B,
            takeover: Some(stale(A)),
        };
        let d = on_inbound(&expired, kw(Keyword::Affirmative), &ctx());
        assert_eq!(d.next, verified(B));
        assert_eq!(d.replies, [ReplyKind::Expired]);
    }

    #[test]
    fn verified_yes_with_no_request_waiting_is_a_text_moment() {
        let d = on_inbound(&verified(A), kw(Keyword::Affirmative), &ctx());
        assert_eq!(d.next, verified(A));
        assert_eq!(d.moments.len(), 1);
        assert_eq!(d.replies, [ReplyKind::MomentPosted]);
    }

    #[test]
    fn verified_start_is_words_like_any_other() {
        let d = on_inbound(&verified(A), kw(Keyword::OptIn), &ctx());
        assert_eq!(d.moments.len(), 1);
        assert_eq!(d.replies, [ReplyKind::MomentPosted]);
    }

    #[test]
    fn disconnecting_releases_only_the_artists_own_claims() {
        assert_eq!(on_disconnect(&verified(A), A), Some(Standing::Unknown));
        assert_eq!(on_disconnect(&verified(B), A), None);
        assert_eq!(on_disconnect(&Standing::Pending(fresh(B)), A), None);
        assert_eq!(
            on_disconnect(&Standing::Pending(fresh(A)), A),
            Some(Standing::Unknown)
        );
        let contested = Standing::Verified {
            owner: B,
            takeover: Some(fresh(A)),
        };
        assert_eq!(on_disconnect(&contested, A), Some(verified(B)));
        assert_eq!(
            on_disconnect(&contested, B),
            Some(Standing::Pending(fresh(A)))
        );
        assert_eq!(
            on_disconnect(&Standing::OptedOut(Box::new(verified(A))), A),
            Some(Standing::OptedOut(Box::new(Standing::Unknown)))
        );
    }

    #[test]
    fn the_right_code_verifies_for_the_artist_who_asked() {
        let verified_a = CodeConfirmed::Verified { next: verified(A) };
        assert_eq!(
            on_code_confirmed(&Standing::Pending(fresh(A)), A),
            verified_a
        );
        assert_eq!(on_code_confirmed(&Standing::Unknown, A), verified_a);
        assert_eq!(
            on_code_confirmed(&verified(A), A),
            CodeConfirmed::AlreadyVerified
        );
        let out = Standing::OptedOut(Box::new(Standing::Pending(fresh(A))));
        assert_eq!(on_code_confirmed(&out, A), CodeConfirmed::OptedOut);
    }

    #[test]
    fn the_right_code_takes_a_number_over_as_its_yes_would() {
        let contested = Standing::Verified {
            owner: B,
            takeover: Some(fresh(A)),
        };
        assert_eq!(
            on_code_confirmed(&contested, A),
            CodeConfirmed::Verified { next: verified(A) }
        );
        // B's own request waiting on the number still waits, now on A.
        assert_eq!(
            on_code_confirmed(&Standing::Pending(fresh(B)), A),
            CodeConfirmed::Verified {
                next: Standing::Verified {
                    owner: A,
                    takeover: Some(fresh(B))
                }
            }
        );
    }

    fn connect_ctx<'a>(
        number_prompts: &'a [DateTime<Utc>],
        artist_prompts: &'a [DateTime<Utc>],
    ) -> ConnectContext<'a> {
        ConnectContext {
            now: now(),
            pending_ttl: Duration::hours(24),
            number_prompts,
            artist_prompts,
            limits: ConnectLimits::default(),
        }
    }

    #[test]
    fn connecting_an_unknown_or_others_pending_number_prompts() {
        for standing in [
            Standing::Unknown,
            Standing::Pending(fresh(B)),
            Standing::Pending(stale(A)),
        ] {
            let outcome = on_connect(&standing, A, &connect_ctx(&[], &[]));
            assert_eq!(
                outcome,
                ConnectOutcome::Prompt {
                    next: Standing::Pending(ConnectRequest {
                        artist: A,
                        at: now()
                    })
                }
            );
        }
    }

    #[test]
    fn connecting_a_number_verified_for_another_artist_starts_a_takeover() {
        let outcome = on_connect(&verified(B), A, &connect_ctx(&[], &[]));
        assert_eq!(
            outcome,
            ConnectOutcome::Prompt {
                next: Standing::Verified {
                    owner: B,
                    takeover: Some(ConnectRequest {
                        artist: A,
                        at: now()
                    })
                }
            }
        );
    }

    #[test]
    fn connecting_ones_own_verified_or_an_opted_out_number_sends_nothing() {
        let ctx = connect_ctx(&[], &[]);
        assert_eq!(
            on_connect(&verified(A), A, &ctx),
            ConnectOutcome::AlreadyVerified
        );
        let out = Standing::OptedOut(Box::new(verified(A)));
        assert_eq!(on_connect(&out, A, &ctx), ConnectOutcome::OptedOut);
    }

    #[test]
    fn prompts_to_one_number_respect_the_cooldown_and_daily_cap() {
        let just_now = [now() - Duration::seconds(20)];
        assert_eq!(
            on_connect(
                &Standing::Pending(fresh(A)),
                A,
                &connect_ctx(&just_now, &[])
            ),
            ConnectOutcome::RateLimited {
                retry_after: Duration::seconds(40)
            }
        );
        let five: Vec<_> = (1..=5).map(|h| now() - Duration::hours(6 - h)).collect();
        assert_eq!(
            on_connect(&Standing::Unknown, A, &connect_ctx(&five, &[])),
            ConnectOutcome::RateLimited {
                retry_after: Duration::hours(19)
            }
        );
        let long_ago = [now() - Duration::minutes(2)];
        assert!(matches!(
            on_connect(
                &Standing::Pending(fresh(A)),
                A,
                &connect_ctx(&long_ago, &[])
            ),
            ConnectOutcome::Prompt { .. }
        ));
    }

    #[test]
    fn an_artist_may_only_prompt_so_many_numbers_an_hour() {
        let thirty: Vec<_> = (0..30)
            .map(|i| now() - Duration::minutes(50) + Duration::seconds(i))
            .collect();
        assert_eq!(
            on_connect(&Standing::Unknown, A, &connect_ctx(&[], &thirty)),
            ConnectOutcome::RateLimited {
                retry_after: Duration::minutes(10)
            }
        );
    }
}
