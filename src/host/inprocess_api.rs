//! In Process's public API, as far as momentline posts Moments there: upload a file by its
//! public URL, create a media or a writing Moment, hide one (UNDO), and look one up by its
//! metadata URI (to learn whether a create whose answer was lost happened). Every call carries
//! the artist's own key (`x-api-key`). Answers are sorted into what the dispatch acts on:
//! a refused key, a payment needed, a request refused for good, or worth another attempt.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::answer::{read_at_most, read_capped, retry_after};

/// The most of a timeline page that is read: 100 Moments with room to spare.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
use crate::domain::secret::Secret;

/// The latest Unix time a sale can end at: a sale that never ends.
pub const SALE_NEVER_ENDS: &str = "18446744073709551615";

/// In Process's API at one base URL.
#[derive(Debug, Clone)]
pub struct InProcessApi {
    http: reqwest::Client,
    base: String,
}

/// Why a call did not do what was asked, in the classes the dispatch acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// `401`: the artist's key is wrong or was revoked; no attempt will succeed until the
    /// artist registers a new one.
    #[error("In Process refused the artist's API key (401): {message}")]
    KeyRefused { message: String },
    /// `402` from an upload: the artist's free uploads are spent and their wallet lacks the
    /// USDC to pay.
    #[error("In Process needs payment for the upload (402): {message}")]
    PaymentRequired { message: String },
    /// `400`: In Process refused the request as it is; the fields it named are kept.
    #[error("In Process refused the request (400): {message}{}", fields(.errors))]
    Invalid {
        message: String,
        errors: Vec<FieldError>,
    },
    /// No answer, `5xx`, `429`: another attempt may succeed. `may_have_happened` says the
    /// request may have reached In Process (a create then must be looked for before it is
    /// sent again).
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
        may_have_happened: bool,
    },
    /// Any other answer: no attempt will succeed.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl ApiError {
    /// Whether the request may have been done (a create then must be looked for before it is
    /// sent again): only an answer that may have come after the work, or none at all.
    pub fn may_have_happened(&self) -> bool {
        matches!(
            self,
            Self::Retryable {
                may_have_happened: true,
                ..
            }
        )
    }
}

/// One field In Process found fault with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub message: String,
}

fn fields(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("; {}: {}", e.field, e.message))
        .collect()
}

/// Where a Moment goes: an existing collection, or a new one it is the first Moment of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Collection {
    Existing { address: String },
    New { name: String, uri: String },
}

/// How a Moment is sold: in USDC, from now, for ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesConfig {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// In the currency's smallest unit, as digits (USDC has 6 decimals).
    pub price_per_token: String,
    /// Unix seconds, as digits.
    pub sale_start: String,
    pub sale_end: String,
    pub currency: String,
}

impl SalesConfig {
    /// A sale in `currency` (an ERC-20, USDC) at `price` of its smallest unit, from `start`.
    pub fn erc20(price: u64, currency: &str, start: i64) -> Self {
        Self {
            kind: "erc20Mint",
            price_per_token: price.to_string(),
            sale_start: start.to_string(),
            sale_end: SALE_NEVER_ENDS.to_owned(),
            currency: currency.to_owned(),
        }
    }
}

/// `POST /api/moment/create`: a media Moment whose metadata momentline uploaded.
#[derive(Debug, Clone, Serialize)]
pub struct CreateMoment {
    pub contract: Collection,
    pub token: MediaToken,
    /// The artist's address: the Moment's creator.
    pub account: String,
    pub channel: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaToken {
    #[serde(rename = "tokenMetadataURI")]
    pub token_metadata_uri: String,
    pub create_referral: String,
    pub sales_config: SalesConfig,
    pub mint_to_creator_count: u32,
    pub payout_recipient: String,
}

/// `POST /api/moment/create/writing`: a text Moment.
#[derive(Debug, Clone, Serialize)]
pub struct CreateWriting {
    pub title: String,
    pub contract: Collection,
    pub token: WritingToken,
    pub account: String,
    pub channel: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WritingToken {
    pub token_content: String,
    pub create_referral: String,
    pub sales_config: SalesConfig,
    pub mint_to_creator_count: u32,
    pub payout_recipient: String,
}

/// A Moment on chain: its collection, its token, its chain.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub contract_address: String,
    #[serde(deserialize_with = "digits")]
    pub token_id: String,
    #[serde(default)]
    pub chain_id: Option<u64>,
    #[serde(default)]
    pub hash: Option<String>,
}

/// A token id, given as a string or a number.
fn digits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(match Id::deserialize(d)? {
        Id::Text(text) => text,
        Id::Number(n) => n.to_string(),
    })
}

/// A page of In Process's public timeline, as far as finding a Moment needs it.
#[derive(Deserialize)]
struct Timeline {
    #[serde(default)]
    moments: Option<Vec<Listed>>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

/// A Moment as In Process's timeline lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    /// The collection.
    pub address: String,
    #[serde(deserialize_with = "digits")]
    pub token_id: String,
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// The token's metadata URI.
    #[serde(default)]
    pub uri: String,
    /// When it was made, as In Process writes it (its sale's start, when it has a sale).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Its metadata, as In Process keeps it.
    #[serde(default)]
    pub metadata: Option<ListedMetadata>,
    /// Who hid it (In Process's ids of artists): empty while it shows.
    #[serde(default)]
    pub hidden: Option<Vec<serde_json::Value>>,
}

/// What the timeline says of a Moment's metadata.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListedMetadata {
    #[serde(default)]
    pub name: Option<String>,
}

impl Listed {
    /// The Moment listed, as a create would have answered it.
    pub fn created(&self) -> Created {
        Created {
            contract_address: self.address.clone(),
            token_id: self.token_id.clone(),
            chain_id: self.chain_id,
            hash: None,
        }
    }

    /// When it was made, if In Process said in a form that reads (RFC 3339, or PostgreSQL's
    /// own `2026-12-04 10:00:00.123+00`).
    pub fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let text = self.created_at.as_deref()?.trim();
        chrono::DateTime::parse_from_rfc3339(text)
            .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// Whether someone (its artist, on In Process's site) hid it.
    pub fn is_hidden(&self) -> bool {
        self.hidden.as_ref().is_some_and(|who| !who.is_empty())
    }

    /// The name its metadata gives it, if the timeline says.
    pub fn name(&self) -> Option<&str> {
        self.metadata.as_ref()?.name.as_deref()
    }
}

#[derive(Deserialize)]
struct Pagination {
    total_pages: u32,
}

#[derive(Deserialize)]
struct Uploaded {
    uri: String,
}

#[derive(Deserialize, Default)]
struct Refusal {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

impl InProcessApi {
    /// The API at `base` (`INPROCESS_API_BASE`). Redirects are not followed: a key is never
    /// sent where it was not configured to go.
    pub fn new(base: String, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Has In Process fetch the file at `url` and keep it on Arweave; answers its `ar://` URI.
    pub async fn upload(&self, key: &Secret, url: &str) -> Result<String, ApiError> {
        let text = self
            .post(key, "/upload", &serde_json::json!({ "url": url }))
            .await?;
        match serde_json::from_str::<Uploaded>(&text) {
            Ok(up) if up.uri.starts_with("ar://") => Ok(up.uri),
            _ => Err(ApiError::Retryable {
                reason: format!(
                    "In Process's upload answered without an ar:// URI: {}",
                    cut(&text)
                ),
                retry_after: None,
                may_have_happened: false,
            }),
        }
    }

    /// Creates a media Moment.
    pub async fn create_moment(
        &self,
        key: &Secret,
        body: &CreateMoment,
    ) -> Result<Created, ApiError> {
        let text = self.post(key, "/moment/create", body).await?;
        created(&text)
    }

    /// Creates a writing Moment.
    pub async fn create_writing(
        &self,
        key: &Secret,
        body: &CreateWriting,
    ) -> Result<Created, ApiError> {
        let text = self.post(key, "/moment/create/writing", body).await?;
        created(&text)
    }

    /// Toggles a Moment's hidden flag: sent once per UNDO, never until it flips.
    pub async fn hide(
        &self,
        key: &Secret,
        moment: &Created,
        chain_id: u64,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({
            "moment": {
                "collectionAddress": moment.contract_address,
                "tokenId": moment.token_id,
                "chainId": chain_id,
            }
        });
        self.post(key, "/moment/hide", &body).await.map(|_| ())
    }

    /// The artist's Moment on chain `chain_id` whose metadata is at `metadata_uri`, hidden or
    /// not, if In Process lists it: how a create whose answer was lost is known to have
    /// happened (a media Moment's metadata URI is momentline's own upload, so no other Moment
    /// has it). Looks at the artist's newest `pages` pages of the public timeline; a Moment
    /// listed without its URI leaves it unknown (an error), never "not there".
    pub async fn find_by_metadata(
        &self,
        artist: &str,
        chain_id: u64,
        metadata_uri: &str,
        pages: u32,
    ) -> Result<Option<Created>, ApiError> {
        let found = self
            .find(artist, chain_id, pages, |listed| {
                if listed.uri.is_empty() {
                    return Err("the timeline lists a Moment without its metadata URI".into());
                }
                Ok(listed.uri == metadata_uri)
            })
            .await?;
        Ok(found.map(|listed| listed.created()))
    }

    /// The first of the artist's Moments on chain `chain_id`, newest first, hidden or not, that
    /// `wanted` picks, in the newest `pages` pages of the public timeline. `wanted` answers
    /// why it cannot tell, for a Moment listed without what it needs: then nothing is known.
    pub async fn find(
        &self,
        artist: &str,
        chain_id: u64,
        pages: u32,
        wanted: impl Fn(&Listed) -> Result<bool, String>,
    ) -> Result<Option<Listed>, ApiError> {
        for page in 1..=pages.max(1) {
            let (listed, last) = self.timeline_page(artist, chain_id, page).await?;
            for moment in &listed {
                let picked = wanted(moment).map_err(|reason| ApiError::Retryable {
                    reason: format!("In Process's timeline cannot tell: {reason}"),
                    retry_after: None,
                    may_have_happened: false,
                })?;
                if picked {
                    return Ok(Some(moment.clone()));
                }
            }
            if listed.is_empty() || page >= last {
                break;
            }
        }
        Ok(None)
    }

    /// Page `page` of the artist's Moments on the public timeline, hidden ones too, and the
    /// number of pages.
    async fn timeline_page(
        &self,
        artist: &str,
        chain_id: u64,
        page: u32,
    ) -> Result<(Vec<Listed>, u32), ApiError> {
        let unread = |reason: String| ApiError::Retryable {
            reason,
            retry_after: None,
            may_have_happened: false,
        };
        let sent = self
            .http
            .get(format!("{}/timeline", self.base))
            .query(&[
                ("artist", artist),
                ("chain_id", &chain_id.to_string()),
                ("limit", "100"),
                ("page", &page.to_string()),
                ("hidden", "true"),
            ])
            .send()
            .await
            .map_err(|e| {
                unread(format!(
                    "In Process's timeline could not be read: {}",
                    crate::telemetry::error_chain(&e.without_url())
                ))
            })?;
        let status = sent.status();
        let text = read_at_most(sent, MAX_PAGE_BYTES).await;
        if !status.is_success() {
            return Err(unread(format!(
                "In Process's timeline {}: {}",
                status.as_u16(),
                cut(&text)
            )));
        }
        let listed: Timeline = serde_json::from_str(&text)
            .map_err(|e| unread(format!("In Process's timeline could not be read: {e}")))?;
        let last = listed.pagination.map_or(page, |p| p.total_pages);
        Ok((listed.moments.unwrap_or_default(), last))
    }

    /// POSTs `body` as JSON with the artist's key; the answer's text when it is a 2xx.
    async fn post<B: Serialize + ?Sized>(
        &self,
        key: &Secret,
        path: &str,
        body: &B,
    ) -> Result<String, ApiError> {
        let mut api_key = reqwest::header::HeaderValue::from_str(key.expose()).map_err(|_| {
            ApiError::KeyRefused {
                message: "the registered key is not a valid header value".into(),
            }
        })?;
        // Never printed by the HTTP stack's own logs.
        api_key.set_sensitive(true);
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-api-key", api_key)
            .json(body)
            .send()
            .await;
        let response = sent.map_err(|e| {
            // Only a request that never reached In Process is known not to have been done.
            let may_have_happened = !(e.is_connect() || e.is_builder());
            ApiError::Retryable {
                reason: format!(
                    "In Process could not be reached: {}",
                    crate::telemetry::error_chain(&e.without_url())
                ),
                retry_after: None,
                may_have_happened,
            }
        })?;
        let status = response.status();
        let retry_after = retry_after(&response);
        let text = read_capped(response).await;
        if status.is_success() {
            return Ok(text);
        }
        let refusal: Refusal = serde_json::from_str(&text).unwrap_or_default();
        let message = if refusal.message.is_empty() {
            cut(&text)
        } else {
            refusal.message
        };
        Err(match status.as_u16() {
            401 => ApiError::KeyRefused { message },
            402 => ApiError::PaymentRequired { message },
            // 403: the artist may not do this (a collection it does not administer).
            400 | 403 | 422 => ApiError::Invalid {
                message,
                errors: refusal.errors,
            },
            408 | 429 => ApiError::Retryable {
                reason: format!("In Process {}: {message}", status.as_u16()),
                retry_after,
                may_have_happened: false,
            },
            // A server error may come after the transaction was sent.
            500..=599 => ApiError::Retryable {
                reason: format!("In Process {}: {message}", status.as_u16()),
                retry_after,
                may_have_happened: true,
            },
            other => ApiError::Permanent {
                reason: format!("In Process {other}: {message}"),
            },
        })
    }
}

fn created(text: &str) -> Result<Created, ApiError> {
    serde_json::from_str::<Created>(text)
        .ok()
        .filter(|c| is_address(&c.contract_address) && !c.token_id.is_empty())
        .ok_or_else(|| ApiError::Retryable {
            reason: format!("In Process answered without a Moment: {}", cut(text)),
            retry_after: None,
            may_have_happened: true,
        })
}

/// Whether `text` is an address: `0x` and 40 hex digits.
pub fn is_address(text: &str) -> bool {
    text.strip_prefix("0x")
        .is_some_and(|hex| hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The start of a body, for a reason.
fn cut(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const ARTIST: &str = "0x1111111111111111111111111111111111111111";

    async fn api() -> (MockServer, InProcessApi) {
        let server = MockServer::start().await;
        let api = InProcessApi::new(format!("{}/api/", server.uri()), Duration::from_secs(2))
            .expect("client");
        (server, api)
    }

    fn writing() -> CreateWriting {
        CreateWriting {
            title: "Night swim".into(),
            contract: Collection::New {
                name: "Sweetman".into(),
                uri: "ar://meta".into(),
            },
            token: WritingToken {
                token_content: "The lake at midnight".into(),
                create_referral: ARTIST.into(),
                sales_config: SalesConfig::erc20(3_000_000, "0xusdc", 1_800_000_000),
                mint_to_creator_count: 1,
                payout_recipient: ARTIST.into(),
            },
            account: ARTIST.into(),
            channel: "sms",
        }
    }

    #[tokio::test]
    async fn a_writing_moment_is_sent_in_in_processs_fields_with_the_artists_key() {
        let (server, api) = api().await;
        Mock::given(method("POST"))
            .and(path("/api/moment/create/writing"))
            .and(header("x-api-key", "art_sk_1"))
            .and(body_json(serde_json::json!({
                "title": "Night swim",
                "contract": { "name": "Sweetman", "uri": "ar://meta" },
                "token": {
                    "tokenContent": "The lake at midnight",
                    "createReferral": ARTIST,
                    "salesConfig": {
                        "type": "erc20Mint",
                        "pricePerToken": "3000000",
                        "saleStart": "1800000000",
                        "saleEnd": SALE_NEVER_ENDS,
                        "currency": "0xusdc"
                    },
                    "mintToCreatorCount": 1,
                    "payoutRecipient": ARTIST
                },
                "account": ARTIST,
                "channel": "sms"
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "contractAddress": "0x2222222222222222222222222222222222222222",
                "tokenId": 1,
                "hash": "0xfeed",
                "chainId": 8453
            })))
            .expect(1)
            .mount(&server)
            .await;
        let created = api
            .create_writing(&Secret::from("art_sk_1"), &writing())
            .await
            .expect("created");
        assert_eq!(created.token_id, "1");
        assert_eq!(created.chain_id, Some(8453));
    }

    #[tokio::test]
    async fn each_refusal_is_sorted_into_what_the_dispatch_does() {
        let key = Secret::from("art_sk_1");
        for (status, body, want) in [
            (
                401,
                r#"{"message":"Invalid API key"}"#,
                ApiError::KeyRefused {
                    message: "Invalid API key".into(),
                },
            ),
            (
                400,
                r#"{"message":"Invalid input","errors":[{"field":"account","message":"bad"}]}"#,
                ApiError::Invalid {
                    message: "Invalid input".into(),
                    errors: vec![FieldError {
                        field: "account".into(),
                        message: "bad".into(),
                    }],
                },
            ),
            (
                503,
                r#"{"message":"busy"}"#,
                ApiError::Retryable {
                    reason: "In Process 503: busy".into(),
                    retry_after: None,
                    may_have_happened: true,
                },
            ),
            (
                429,
                "slow down",
                ApiError::Retryable {
                    reason: "In Process 429: slow down".into(),
                    retry_after: None,
                    may_have_happened: false,
                },
            ),
            (
                404,
                "{}",
                ApiError::Permanent {
                    reason: "In Process 404: {}".into(),
                },
            ),
        ] {
            let (server, api) = api().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status).set_body_string(body))
                .mount(&server)
                .await;
            let got = api
                .create_writing(&key, &writing())
                .await
                .expect_err("refused");
            assert_eq!(got, want, "{status}");
        }
        let (server, api) = api().await;
        Mock::given(method("POST"))
            .and(path("/api/upload"))
            .respond_with(ResponseTemplate::new(402).set_body_string(
                r#"{"message":"Insufficient balance","required":"1","available":"0"}"#,
            ))
            .mount(&server)
            .await;
        assert_eq!(
            api.upload(&key, "https://m.example/media/a.jpg").await,
            Err(ApiError::PaymentRequired {
                message: "Insufficient balance".into()
            })
        );
    }

    #[tokio::test]
    async fn an_answer_that_does_not_come_may_mean_the_moment_was_made() {
        let (server, api) = api().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&server)
            .await;
        match api
            .create_writing(&Secret::from("art_sk_1"), &writing())
            .await
        {
            Err(ApiError::Retryable {
                may_have_happened, ..
            }) => assert!(may_have_happened),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_moment_whose_answer_was_lost_is_found_by_its_metadata_uri() {
        let (server, api) = api().await;
        let moment = |uri: &str, token: u64| {
            serde_json::json!({
                "address": "0x2222222222222222222222222222222222222222",
                "token_id": token.to_string(),
                "chain_id": 8453,
                "id": "0b4a",
                "uri": uri,
                "creator": { "address": ARTIST },
            })
        };
        for (page, moments) in [
            ("1", vec![moment("ar://other", 9), moment("ar://older", 8)]),
            ("2", vec![moment("ar://mine", 7)]),
        ] {
            Mock::given(method("GET"))
                .and(path("/api/timeline"))
                .and(wiremock::matchers::query_param("artist", ARTIST))
                .and(wiremock::matchers::query_param("page", page))
                .and(wiremock::matchers::query_param("hidden", "true"))
                .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "status": "success",
                    "moments": moments,
                    "pagination": { "page": page.parse::<u32>().unwrap_or(1), "limit": 100, "total_pages": 2 }
                })))
                .mount(&server)
                .await;
        }
        let found = api
            .find_by_metadata(ARTIST, 8453, "ar://mine", 3)
            .await
            .expect("read")
            .expect("found");
        assert_eq!((found.token_id.as_str(), found.chain_id), ("7", Some(8453)));
        assert_eq!(
            api.find_by_metadata(ARTIST, 8453, "ar://never", 3).await,
            Ok(None),
            "not there: every page looked at, then none"
        );
        let asked = server.received_requests().await.unwrap_or_default();
        assert_eq!(asked.len(), 4);
        assert!(asked
            .iter()
            .all(|r| r.url.query().is_some_and(|q| q.contains("chain_id=8453"))));
    }

    #[tokio::test]
    async fn a_timeline_that_lists_a_moment_without_its_uri_tells_nothing() {
        let (server, api) = api().await;
        Mock::given(method("GET"))
            .and(path("/api/timeline"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "status": "success",
                "moments": [{ "address": "0x2222222222222222222222222222222222222222", "token_id": "3" }],
                "pagination": { "page": 1, "limit": 100, "total_pages": 1 }
            })))
            .mount(&server)
            .await;
        match api.find_by_metadata(ARTIST, 8453, "ar://mine", 3).await {
            Err(ApiError::Retryable { reason, .. }) => {
                assert!(reason.contains("without its metadata URI"), "{reason}")
            }
            other => panic!("unknown is not 'not there': {other:?}"),
        }
        let (server, empty) = self::api().await;
        Mock::given(method("GET"))
            .and(path("/api/timeline"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({ "status": "success", "moments": null })),
            )
            .mount(&server)
            .await;
        assert_eq!(
            empty.find_by_metadata(ARTIST, 8453, "ar://mine", 3).await,
            Ok(None)
        );
        drop(server);
    }

    #[tokio::test]
    async fn an_upload_answers_its_ar_uri_and_hide_names_the_moment() {
        let (server, api) = api().await;
        let key = Secret::from("art_sk_1");
        Mock::given(method("POST"))
            .and(path("/api/upload"))
            .and(body_json(
                serde_json::json!({ "url": "https://m.example/media/a.jpg" }),
            ))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({ "uri": "ar://abc" })),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/moment/hide"))
            .and(body_json(serde_json::json!({
                "moment": { "collectionAddress": "0xc", "tokenId": "4", "chainId": 84532 }
            })))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({ "success": true })),
            )
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            api.upload(&key, "https://m.example/media/a.jpg").await,
            Ok("ar://abc".to_owned())
        );
        let moment = Created {
            contract_address: "0xc".into(),
            token_id: "4".into(),
            chain_id: None,
            hash: None,
        };
        assert_eq!(api.hide(&key, &moment, 84532).await, Ok(()));
        assert!(is_address(ARTIST));
        assert!(!is_address("0x123"));
    }
}
