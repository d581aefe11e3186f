//! What a text `dev text` played is still waiting for, and what failed for good, read from
//! its progress: the words `dev text` prints while it waits.

use chrono::{DateTime, Utc};

use crate::db::progress::{JobProgress, MomentProgress, Progress};
use crate::domain::ids::MomentId;
use crate::domain::{JobKind, JobState, MediaState, MessageState, MomentState};

/// One thing still on a text's way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// A Moment waits for the other half of a split MMS until then: a caption when it has
    /// media, else a photo.
    Merge {
        until: DateTime<Utc>,
        wants_caption: bool,
    },
    /// A Moment's media is being fetched from the provider.
    Media,
    /// A Moment is being posted.
    Posting,
    /// A text to the number is queued.
    Reply,
    /// A step failed and is tried again at `at`.
    Retry {
        what: &'static str,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl Wait {
    /// The wait in words, at `now`.
    pub fn words(&self, now: DateTime<Utc>) -> String {
        match self {
            Self::Merge {
                until,
                wants_caption,
            } => format!(
                "the Moment is waiting {} s for a {} to join it (MOMENTLINE_MERGE_SECS)",
                seconds_until(*until, now),
                if *wants_caption { "caption" } else { "photo" }
            ),
            Self::Media => "the media is being fetched".to_owned(),
            Self::Posting => "the Moment is being posted".to_owned(),
            Self::Reply => "waiting for the reply to be sent".to_owned(),
            Self::Retry { what, reason, at } => format!(
                "{what} failed ({reason}); it is tried again in {} s",
                seconds_until(*at, now)
            ),
        }
    }

    /// Whether the wait is known to be long, and so is said at once; a short one is said
    /// only if it lasts.
    pub fn is_long(&self) -> bool {
        matches!(self, Self::Merge { .. } | Self::Retry { .. })
    }

    /// Whether two looks see the same wait, its countdown aside.
    pub fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Retry { what: a, .. }, Self::Retry { what: b, .. }) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// When it ends by itself at the latest, for a retry: nothing changes before then.
    fn retried_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Retry { at, .. } => Some(*at),
            _ => None,
        }
    }
}

/// Whole seconds from `now` to `until`, rounded up; none once it is past.
fn seconds_until(until: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let millis = (until - now).num_milliseconds().max(0);
    (millis + 999) / 1000
}

/// Something that failed for good, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub moment: MomentId,
    /// Whether it is the Moment's media that could not be kept.
    pub media: bool,
    pub words: String,
}

/// What a look at a text's progress sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Look {
    /// What is still on the text's way, its Moments' first.
    pub waits: Vec<Wait>,
    pub failures: Vec<Failure>,
}

impl Look {
    /// Whether all that is left are retries due after `deadline`: nothing will change while
    /// `dev text` waits, so the outcome is known for now.
    pub fn only_later_than(&self, deadline: DateTime<Utc>) -> bool {
        !self.waits.is_empty()
            && self
                .waits
                .iter()
                .all(|w| w.retried_at().is_some_and(|at| at > deadline))
    }
}

/// Whether a Moment is still on its way: its media being fetched, or not posted yet and not
/// failed for good.
pub fn in_progress(moment: &MomentProgress) -> bool {
    match moment.media {
        Some(MediaState::Fetching) => true,
        Some(MediaState::Failed) => false,
        _ => moment.state == MomentState::Pending,
    }
}

/// What `progress` is waiting for at `now`, and what failed for good.
pub fn look(progress: &Progress, now: DateTime<Utc>) -> Look {
    let mut look = Look::default();
    for moment in &progress.moments {
        let jobs: Vec<&JobProgress> = progress
            .jobs
            .iter()
            .filter(|j| j.moment == Some(moment.id))
            .collect();
        match failure_of(moment, &jobs) {
            Some(failure) => look.failures.push(failure),
            None => look.waits.extend(wait_of(moment, &jobs, now)),
        }
    }
    let texts = progress.jobs.iter().filter(|j| j.kind == JobKind::SendText);
    look.waits
        .extend(texts.map(|j| retry_of(j, "sending the reply", now).unwrap_or(Wait::Reply)));
    let queued = progress
        .answers
        .iter()
        .any(|a| a.state == MessageState::Unconfirmed);
    if queued && !look.waits.contains(&Wait::Reply) {
        look.waits.push(Wait::Reply);
    }
    look
}

/// How a Moment failed for good, if it did: its media could not be kept, or it could not be
/// posted.
fn failure_of(moment: &MomentProgress, jobs: &[&JobProgress]) -> Option<Failure> {
    let given_up = |kind: JobKind| {
        jobs.iter()
            .find(|j| j.kind == kind && j.state == JobState::Failed)
    };
    let because = |reason: Option<&str>| match reason {
        Some(reason) => format!(": {reason}"),
        None => " (the server's log says why)".to_owned(),
    };
    if moment.media == Some(MediaState::Failed) {
        let reason = moment
            .media_error
            .as_deref()
            .or_else(|| given_up(JobKind::KeepMedia).and_then(|j| j.last_error.as_deref()));
        return Some(Failure {
            moment: moment.id,
            media: true,
            words: format!("The media could not be kept{}", because(reason)),
        });
    }
    let dispatch = given_up(JobKind::DispatchMoment);
    if moment.state == MomentState::Failed || dispatch.is_some() {
        let reason = dispatch.and_then(|j| j.last_error.as_deref());
        return Some(Failure {
            moment: moment.id,
            media: false,
            words: format!("The Moment could not be posted{}", because(reason)),
        });
    }
    None
}

/// What a Moment that has not failed is still waiting for, if anything.
fn wait_of(moment: &MomentProgress, jobs: &[&JobProgress], now: DateTime<Utc>) -> Option<Wait> {
    let retried = |kind: JobKind, what| {
        jobs.iter()
            .filter(|j| j.kind == kind)
            .find_map(|j| retry_of(j, what, now))
    };
    if moment.state == MomentState::Pending {
        if let Some(until) = moment.merge_until.filter(|u| *u > now) {
            return Some(Wait::Merge {
                until,
                wants_caption: moment.media.is_some(),
            });
        }
    }
    if moment.media == Some(MediaState::Fetching) {
        return Some(retried(JobKind::KeepMedia, "fetching the media").unwrap_or(Wait::Media));
    }
    if moment.state == MomentState::Pending {
        return Some(
            retried(JobKind::DispatchMoment, "posting the Moment").unwrap_or(Wait::Posting),
        );
    }
    None
}

/// A queued job that failed before and waits to be tried again.
fn retry_of(job: &JobProgress, what: &'static str, now: DateTime<Utc>) -> Option<Wait> {
    match (&job.last_error, job.state) {
        (Some(reason), JobState::Queued) if job.run_after > now => Some(Wait::Retry {
            what,
            reason: reason.clone(),
            at: job.run_after,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::progress::Answer;
    use crate::domain::ids::MessageId;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn moment(state: MomentState, media: Option<MediaState>) -> MomentProgress {
        MomentProgress {
            id: MomentId(1),
            message: MessageId(8),
            state,
            merge_until: None,
            media,
            media_error: None,
        }
    }

    fn job(kind: JobKind, state: JobState, last_error: Option<&str>, in_secs: i64) -> JobProgress {
        JobProgress {
            moment: (kind != JobKind::SendText).then_some(MomentId(1)),
            kind,
            state,
            run_after: now() + chrono::Duration::seconds(in_secs),
            last_error: last_error.map(str::to_owned),
        }
    }

    fn answer(state: MessageState) -> Answer {
        Answer {
            id: MessageId(9),
            body: "Moment posted".into(),
            state,
            error: None,
        }
    }

    #[test]
    fn a_text_with_nothing_on_its_way_waits_for_nothing() {
        let progress = Progress {
            answers: vec![answer(MessageState::Sent)],
            moments: vec![moment(MomentState::Created, None)],
            jobs: vec![],
        };
        assert_eq!(look(&progress, now()), Look::default());
    }

    #[test]
    fn a_moment_held_for_its_other_half_says_how_long_and_for_what() {
        let mut text = moment(MomentState::Pending, None);
        text.merge_until = Some(now() + chrono::Duration::milliseconds(19_200));
        let progress = Progress {
            moments: vec![text],
            ..Progress::default()
        };
        let seen = look(&progress, now());
        assert_eq!(seen.waits.len(), 1);
        assert_eq!(
            seen.waits[0].words(now()),
            "the Moment is waiting 20 s for a photo to join it (MOMENTLINE_MERGE_SECS)"
        );
        assert!(seen.waits[0].is_long());
    }

    #[test]
    fn media_being_fetched_then_posting_then_the_reply() {
        let fetching = Progress {
            moments: vec![moment(MomentState::Pending, Some(MediaState::Fetching))],
            ..Progress::default()
        };
        assert_eq!(look(&fetching, now()).waits, vec![Wait::Media]);
        let posting = Progress {
            moments: vec![moment(MomentState::Pending, Some(MediaState::Kept))],
            ..Progress::default()
        };
        assert_eq!(look(&posting, now()).waits, vec![Wait::Posting]);
        let replying = Progress {
            answers: vec![answer(MessageState::Unconfirmed)],
            moments: vec![moment(MomentState::Created, Some(MediaState::Kept))],
            jobs: vec![job(JobKind::SendText, JobState::Running, None, 0)],
        };
        assert_eq!(look(&replying, now()).waits, vec![Wait::Reply]);
    }

    #[test]
    fn media_that_could_not_be_kept_is_a_failure_and_no_longer_awaited() {
        let mut photo = moment(MomentState::Pending, Some(MediaState::Failed));
        photo.media_error = Some("refused: http://127.0.0.1:9/a.png is a private address".into());
        let progress = Progress {
            moments: vec![photo],
            jobs: vec![job(JobKind::KeepMedia, JobState::Failed, Some("x"), 0)],
            ..Progress::default()
        };
        let seen = look(&progress, now());
        assert!(seen.waits.is_empty(), "{seen:?}");
        assert_eq!(
            seen.failures,
            vec![Failure {
                moment: MomentId(1),
                media: true,
                words: "The media could not be kept: refused: http://127.0.0.1:9/a.png is a \
                        private address"
                    .into(),
            }]
        );
    }

    #[test]
    fn a_moment_that_could_not_be_posted_says_why() {
        let progress = Progress {
            moments: vec![moment(MomentState::Failed, None)],
            jobs: vec![job(
                JobKind::DispatchMoment,
                JobState::Failed,
                Some("host answered 400"),
                0,
            )],
            ..Progress::default()
        };
        let seen = look(&progress, now());
        assert_eq!(
            seen.failures[0].words,
            "The Moment could not be posted: host answered 400"
        );
        let unexplained = Progress {
            moments: vec![moment(MomentState::Failed, None)],
            ..Progress::default()
        };
        assert_eq!(
            look(&unexplained, now()).failures[0].words,
            "The Moment could not be posted (the server's log says why)"
        );
    }

    #[test]
    fn a_retry_says_why_and_when_and_one_past_the_deadline_ends_the_wait() {
        let progress = Progress {
            moments: vec![moment(MomentState::Pending, None)],
            jobs: vec![job(
                JobKind::DispatchMoment,
                JobState::Queued,
                Some("the artist has no In Process key"),
                3600,
            )],
            ..Progress::default()
        };
        let seen = look(&progress, now());
        assert_eq!(
            seen.waits[0].words(now()),
            "posting the Moment failed (the artist has no In Process key); it is tried again \
             in 3600 s"
        );
        assert!(seen.only_later_than(now() + chrono::Duration::seconds(30)));
        assert!(!seen.only_later_than(now() + chrono::Duration::hours(2)));
        assert!(!Look::default().only_later_than(now()));
    }

    #[test]
    fn a_moment_is_on_its_way_until_posted_or_failed() {
        assert!(in_progress(&moment(MomentState::Pending, None)));
        assert!(in_progress(&moment(
            MomentState::Created,
            Some(MediaState::Fetching)
        )));
        assert!(!in_progress(&moment(
            MomentState::Created,
            Some(MediaState::Kept)
        )));
        assert!(!in_progress(&moment(
            MomentState::Pending,
            Some(MediaState::Failed)
        )));
        assert!(!in_progress(&moment(MomentState::Failed, None)));
    }

    #[test]
    fn a_wait_is_the_same_wait_whatever_its_countdown() {
        let at = |s| Wait::Merge {
            until: now() + chrono::Duration::seconds(s),
            wants_caption: false,
        };
        assert!(at(5).same_as(&at(3)));
        assert!(!at(5).same_as(&Wait::Media));
    }
}
