//! The webhook host (`MOMENTLINE_DISPATCH=webhook`): each Moment is posted to the host's
//! endpoint as a signed `moment.create` message, and the host answers with the Moment's URL
//! there. UNDO reaches it as a `moment.deleted` event.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::standard_webhooks::{DispatchError, Endpoint, WebhookSecret};
use super::{HostMedia, ToCreate};
use crate::domain::ids::{ArtistId, MomentId};
use crate::domain::moment::Price;
use crate::domain::phone_number::mask;
use crate::domain::MomentKindCode;

/// The host's endpoint for new Moments.
#[derive(Debug, Clone)]
pub struct Webhook {
    endpoint: Endpoint,
}

#[derive(serde::Deserialize)]
struct Created {
    url: String,
}

impl Webhook {
    pub fn new(
        url: String,
        secret: WebhookSecret,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Endpoint::new(url, secret, timeout).map(|endpoint| Self { endpoint })
    }

    /// Posts one signed Moment; answers the URL the host gives it. Every attempt carries one
    /// `webhook-id`, so the host posts a Moment once however often it is sent.
    pub async fn create(&self, to_create: &ToCreate<'_>) -> Result<String, DispatchError> {
        let m = to_create.moment;
        let id = format!("moment_{}_{}", m.id, crate::events::stamp(&m.created_at));
        let answer = self.endpoint.post(&id, body(to_create)).await?;
        match serde_json::from_str::<Created>(&answer.text) {
            Ok(created) if created.url.starts_with("http") => Ok(created.url),
            _ => Err(DispatchError::Retryable {
                reason: answer.reason(" without a Moment URL"),
                retry_after: None,
            }),
        }
    }
}

/// What the host is told of a Moment: the body of a `moment.create` message (the README
/// documents it). The number is masked: the host knows the artist, and needs no one's phone
/// number.
#[derive(Debug, Serialize, ToSchema)]
pub struct MomentCreate<'a> {
    /// Always `moment.create`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub moment: HostMoment<'a>,
    pub artist: HostArtist<'a>,
    pub phone_number: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostMoment<'a> {
    #[schema(value_type = i64)]
    pub id: MomentId,
    pub kind: MomentKindCode,
    pub title: &'a str,
    pub description: &'a str,
    /// USDC, as a decimal string.
    pub price: String,
    pub price_micro_usdc: u64,
    pub link: Option<&'a str>,
    pub media: Option<HostMedia>,
    pub created_at: &'a str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostArtist<'a> {
    #[schema(value_type = i64)]
    pub id: ArtistId,
    pub name: &'a str,
    pub address: Option<&'a str>,
}

fn body(to_create: &ToCreate) -> Vec<u8> {
    let m = to_create.moment;
    let price = u64::try_from(m.price_micro_usdc).unwrap_or_default();
    let body = MomentCreate {
        kind: "moment.create",
        moment: HostMoment {
            id: m.id,
            kind: m.kind,
            title: &m.title,
            description: &m.description,
            price: Price::from_micro_usdc(price).to_string(),
            price_micro_usdc: price,
            link: m.link.as_deref(),
            media: to_create.media.clone(),
            created_at: &m.created_at,
        },
        artist: HostArtist {
            id: m.artist_id,
            name: &m.artist_name,
            address: m.artist_address.as_deref(),
        },
        phone_number: mask(&m.phone).to_string(),
    };
    // Plain structs of strings and numbers always serialize.
    serde_json::to_vec(&body).unwrap_or_default()
}
