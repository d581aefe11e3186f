//! Caption merging: a photo and its caption that a carrier delivered as two messages become
//! one Moment. The first half's Moment is held open for `MOMENTLINE_MERGE_SECS`; the other
//! half, arriving from the same number in that time, joins it in the write that receives it,
//! and records no Moment of its own. A photo alone is not posted before its window ends;
//! words alone are, on momentline's own page (`MergeRule::late_photos`), and a photo that
//! comes later is added to their posted Moment.

use chrono::{DateTime, Utc};

use crate::db::{jobs, moments, Conn, DbError};
use crate::domain::ids::{ArtistId, MomentId};
use crate::domain::moment::{MomentCommand, MomentContent, SplitHalf};
use crate::domain::number_state::Standing;
use crate::domain::phone_number::PhoneNumber;
use crate::domain::{JobKind, MomentKindCode, MomentState};
use crate::providers::InboundMessage;

/// How the two halves of a Moment are brought together.
#[derive(Debug, Clone, Copy)]
pub struct MergeRule {
    /// How long a photo alone or a caption alone waits for its other half
    /// (`MOMENTLINE_MERGE_SECS`); zero never waits.
    pub window: chrono::Duration,
    /// Whether a photo may join a caption's Moment already posted (momentline's own page):
    /// the caption is then posted at once, and its photo added when it comes.
    pub late_photos: bool,
}

/// The half a message just received is, and what it asks for.
pub struct Half<'a> {
    pub half: SplitHalf,
    pub command: &'a MomentCommand,
    /// Who texted it, through which provider, for which artist.
    pub phone: &'a PhoneNumber,
    pub provider: &'a str,
    pub artist: ArtistId,
}

impl<'a> Half<'a> {
    /// The half a message is, when merging is on and it is a photo alone or a caption alone
    /// (never a keyword) from a verified number.
    pub fn of(
        rule: MergeRule,
        next: &Standing,
        keyword: bool,
        message: &'a InboundMessage,
        moments: &'a [MomentCommand],
        phone: &'a PhoneNumber,
    ) -> Option<Self> {
        let Standing::Verified { owner, .. } = next else {
            return None;
        };
        if keyword || rule.window <= chrono::Duration::zero() {
            return None;
        }
        let half = SplitHalf::of(
            &message.text,
            message.subject.as_deref(),
            &message.media,
            moments,
        )?;
        Some(Self {
            half,
            command: moments.first()?,
            phone,
            provider: message.provider,
            artist: *owner,
        })
    }
}

/// Joins `half` to the other half's Moment when one is open for it; answers that Moment's id,
/// or `None` (nothing was changed) when there is none.
pub fn join(
    tx: &Conn,
    rule: MergeRule,
    half: &Half,
    now: DateTime<Utc>,
) -> Result<Option<MomentId>, DbError> {
    let wanted = match half.half.other() {
        SplitHalf::Photo => MomentKindCode::Media,
        SplitHalf::Caption => MomentKindCode::Text,
    };
    let open = |state| {
        let wanted = moments::OpenHalf {
            artist: half.artist,
            phone: half.phone,
            provider: half.provider,
            kind: wanted,
            state,
        };
        moments::open_to_merge(tx, &wanted, rule.window, now)
    };
    let Some(id) = open(MomentState::Pending)? else {
        if half.half == SplitHalf::Photo && rule.late_photos {
            if let Some(posted) = open(MomentState::Created)? {
                return add_late_photo(tx, posted, half, now);
            }
        }
        return Ok(None);
    };
    // A dispatch is never due before the window ends, so none runs; were the clock set back,
    // one under way would post the Moment as it was: the halves stay apart.
    if jobs::running_for(tx, JobKind::DispatchMoment, id)? {
        return Ok(None);
    }
    match (&half.half, &half.command.content) {
        (SplitHalf::Caption, _) => moments::take_caption(tx, id, half.command)?,
        (SplitHalf::Photo, MomentContent::Media { item, .. }) => {
            // The caption's dispatch now waits for the media: it moves into the job that keeps
            // it, so it runs once, after the file is kept.
            let Some(dispatch) = jobs::take_later(tx, JobKind::DispatchMoment, id, now)? else {
                return Ok(None);
            };
            let keep = serde_json::json!({ "moment_id": id, "dispatch": dispatch });
            moments::take_photo(tx, id, item)?;
            jobs::enqueue_keep_media(tx, keep, now)?;
        }
        (SplitHalf::Photo, _) => return Ok(None),
    }
    // Whole now: nothing more can join it, so it need not wait out the window.
    jobs::due_now(tx, JobKind::DispatchMoment, id, now)?;
    tracing::info!(moment_id = id.0, half = ?half.half, "the other half of a split MMS joined its Moment");
    Ok(Some(id))
}

/// A photo joins its caption's Moment, already posted on momentline's own page: the page
/// shows the photo once it is kept, and the artist is told then (`keep_media`, `added`).
fn add_late_photo(
    tx: &Conn,
    id: MomentId,
    half: &Half,
    now: DateTime<Utc>,
) -> Result<Option<MomentId>, DbError> {
    let MomentContent::Media { item, .. } = &half.command.content else {
        return Ok(None);
    };
    moments::take_photo(tx, id, item)?;
    jobs::enqueue_keep_media(
        tx,
        serde_json::json!({ "moment_id": id, "added": true }),
        now,
    )?;
    tracing::info!(
        moment_id = id.0,
        "a photo joined its caption's Moment after it was posted"
    );
    Ok(Some(id))
}
