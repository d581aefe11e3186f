//! Where Moments go (`MOMENTLINE_DISPATCH`): the host seam. Each host is a file of its own
//! that creates a Moment and turns its answer into the link texted back; `Host` chooses among
//! them, and the dispatch job and UNDO know only `Host`. A new host is a file beside these
//! and an arm in each match below.

mod answer;
pub mod embedded;
pub mod inprocess_api;
pub mod standard_webhooks;
pub mod webhook;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::moments::ForHost;
use crate::db::{Conn, DbError};
use crate::domain::ids::MomentId;
use crate::events::{EventType, Events};
pub use standard_webhooks::{DispatchError, Endpoint, WebhookSecret};

/// The host Moments are created on.
#[derive(Debug, Clone)]
pub enum Host {
    Embedded(embedded::Embedded),
    Webhook(webhook::Webhook),
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
        }
    }

    /// Whether this host makes a Moment without being asked (momentline's own page).
    pub fn needs_no_asking(&self) -> bool {
        match self {
            Self::Embedded(_) => true,
            Self::Webhook(_) => false,
        }
    }

    /// The link of a Moment this host makes without being asked (momentline's own page): its
    /// dispatch settles in the write that claims it. `None`: the host must be asked.
    pub fn link_without_asking(&self, id: MomentId) -> Option<String> {
        match self {
            Self::Embedded(embedded) => Some(embedded.link(id)),
            Self::Webhook(_) => None,
        }
    }

    /// Whether a media Moment waits for its media to be kept before it is dispatched: the
    /// host is sent the kept copy.
    pub fn wants_kept_media(&self) -> bool {
        !self.needs_no_asking()
    }

    /// Asks the host to create the Moment; answers the link texted back.
    #[tracing::instrument(name = "host_create", skip_all, fields(
        host = self.name(),
        moment_id = to_create.moment.id.0,
    ))]
    pub async fn create(&self, to_create: &ToCreate<'_>) -> Result<String, DispatchError> {
        match self {
            Self::Embedded(embedded) => Ok(embedded.link(to_create.moment.id)),
            Self::Webhook(webhook) => webhook.create(to_create).await,
        }
    }

    /// UNDO of a Moment the host has, at `url`, or may have (an attempt went unanswered):
    /// the host is told, in the write that removed it, to withdraw it. Every host hears it as
    /// a `moment.deleted` event.
    pub fn withdraw(
        &self,
        tx: &Conn,
        moment: &ForHost,
        url: Option<&str>,
        events: Events,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        match self {
            Self::Embedded(_) | Self::Webhook(_) => {
                events.moment(tx, EventType::MomentDeleted, moment, url, None, now)
            }
        }
    }
}
