//! Where Moments go (`MOMENTLINE_DISPATCH`): the host seam. Each host is a file of its own
//! that creates a Moment and turns its answer into the link texted back; `Host` chooses among
//! them, and the dispatch job and UNDO know only `Host`. A new host is a file beside these
//! and an arm in each match below.

mod answer;
pub mod embedded;
pub mod inprocess;
pub mod inprocess_api;
pub mod standard_webhooks;
pub mod webhook;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use std::time::Duration;

use crate::db::jobs::{self, NewJob};
use crate::db::moments::ForHost;
use crate::db::{Conn, DbError};
use crate::domain::ids::{ArtistId, MomentId};
use crate::domain::number_state::ReplyKind;
use crate::domain::JobKind;
use crate::events::{EventType, Events};
pub use inprocess::Hide;
pub use standard_webhooks::{DispatchError, Endpoint, WebhookSecret};

/// The host Moments are created on.
#[derive(Debug, Clone)]
pub enum Host {
    Embedded(embedded::Embedded),
    Webhook(webhook::Webhook),
    InProcess(Box<inprocess::InProcess>),
}

/// Why a host did not create a Moment this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCreated {
    /// Another attempt may succeed, not before `retry_after` if given.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Nothing was sent, and may be once `wait` has passed (a create whose answer was lost is
    /// looked for first): no attempt is spent.
    Wait { reason: String, wait: Duration },
    /// Nothing will succeed until the operator acts for the artist (a new key): its Moments
    /// wait, and no attempt is spent. `refused`: the host refused the artist's key (the
    /// artist is told, once), rather than momentline lacking something of its own.
    Paused {
        reason: String,
        refused: Option<Refused>,
    },
    /// No attempt will succeed; the artist is told with `told_as` (none: the plain "could
    /// not be posted").
    Failed {
        reason: String,
        told_as: Option<ReplyKind>,
    },
}

/// A key the host refused: the sealed key it was (none: the artist has none to use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub sealed_key: Option<Vec<u8>>,
}

impl From<DispatchError> for NotCreated {
    fn from(e: DispatchError) -> Self {
        match e {
            DispatchError::Retryable {
                reason,
                retry_after,
            } => Self::Retry {
                reason,
                retry_after,
            },
            DispatchError::Permanent { reason } => Self::Failed {
                reason,
                told_as: None,
            },
        }
    }
}

/// A Moment as a host is asked to create it: its row, and momentline's kept copy of its
/// media.
pub struct ToCreate<'a> {
    pub moment: &'a ForHost,
    pub media: Option<HostMedia>,
}

/// momentline's kept copy of a Moment's media.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HostMedia {
    pub url: String,
    pub content_type: String,
    pub size: Option<u64>,
    pub sha256: String,
}

impl Host {
    /// The host's `MOMENTLINE_DISPATCH` word.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "embedded",
            Self::Webhook(_) => "webhook",
            Self::InProcess(_) => "inprocess",
        }
    }

    /// Whether this host makes a Moment without being asked (momentline's own page).
    pub fn needs_no_asking(&self) -> bool {
        match self {
            Self::Embedded(_) => true,
            Self::Webhook(_) | Self::InProcess(_) => false,
        }
    }

    /// The link of a Moment this host makes without being asked (momentline's own page): its
    /// dispatch settles in the write that claims it. `None`: the host must be asked.
    pub fn link_without_asking(&self, id: MomentId) -> Option<String> {
        match self {
            Self::Embedded(embedded) => Some(embedded.link(id)),
            Self::Webhook(_) | Self::InProcess(_) => None,
        }
    }

    /// Whether a photo may still join a caption's Moment after it was posted: only
    /// momentline's own page can change after it is shared (a Moment sent to a host, or made
    /// on chain, stays as it was sent).
    pub fn takes_late_photos(&self) -> bool {
        matches!(self, Self::Embedded(_))
    }

    /// Asks the host to create the Moment; answers the link texted back.
    #[tracing::instrument(name = "host_create", skip_all, fields(
        host = self.name(),
        moment_id = to_create.moment.id.0,
    ))]
    pub async fn create(&self, to_create: &ToCreate<'_>) -> Result<String, NotCreated> {
        match self {
            Self::Embedded(embedded) => Ok(embedded.link(to_create.moment.id)),
            Self::Webhook(webhook) => Ok(webhook.create(to_create).await?),
            Self::InProcess(inprocess) => inprocess.create(to_create).await,
        }
    }

    /// The jobs queue an artist's Moments share, when the host takes them one at a time.
    pub fn queue(&self, artist: ArtistId) -> Option<String> {
        match self {
            Self::Embedded(_) | Self::Webhook(_) => None,
            Self::InProcess(_) => Some(inprocess::queue(artist)),
        }
    }

    /// Notes that the host refused the artist's key (`NotCreated::Paused`): its Moments wait
    /// until the operator registers a new one. `true` the first time, when the artist is told.
    pub fn pause(
        &self,
        tx: &Conn,
        artist: ArtistId,
        refused: &Refused,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        match self {
            Self::Embedded(_) | Self::Webhook(_) => Ok(false),
            Self::InProcess(inprocess) => inprocess.pause(tx, artist, refused, now),
        }
    }

    /// Whether UNDO of a created Moment is told to the artist once the host has withdrawn it
    /// (not at once).
    pub fn tells_withdrawal(&self) -> bool {
        matches!(self, Self::InProcess(_))
    }

    /// Withdraws Moment `id` from the host (the `hide_moment` job of UNDO).
    pub async fn hide(&self, id: MomentId) -> Hide {
        match self {
            Self::Embedded(_) | Self::Webhook(_) => Hide::Nothing,
            Self::InProcess(inprocess) => inprocess.hide(id).await,
        }
    }

    /// UNDO of a Moment the host has, at `url`, or may have (an attempt went unanswered):
    /// the host is told, in the write that removed it, to withdraw it. Every host hears it as
    /// a `moment.deleted` event; In Process is asked to hide it by a `hide_moment` job.
    pub fn withdraw(
        &self,
        tx: &Conn,
        moment: &ForHost,
        url: Option<&str>,
        events: Events,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if let Self::InProcess(_) = self {
            // Hidden there by a job of its own, after any create of the artist's in flight.
            jobs::enqueue(
                tx,
                &NewJob {
                    kind: JobKind::HideMoment,
                    payload: serde_json::json!({ "moment_id": moment.id }),
                    queue: self.queue(moment.artist_id).as_deref(),
                },
                now,
            )?;
        }
        events.moment(tx, EventType::MomentDeleted, moment, url, None, now)
    }
}
