//! The In Process host (`MOMENTLINE_DISPATCH=inprocess`): each Moment is created on In
//! Process itself, through its public API, with the artist's own key and address.
//!
//! - A media Moment: its kept file is uploaded (`ar://`), then its metadata, served here at
//!   `/moments/{id}/metadata.json`; the metadata URI goes to `moment/create`.
//! - A text or link Moment: `moment/create/writing`, its text the Moment's content.
//! - Every URI uploaded is kept before the next step, so a retry never uploads twice, and a
//!   create is noted as sent before it goes: a retry of a create that may have happened looks
//!   for the Moment first (`look_for`), so none is minted twice.
//! - An artist's Moments run one at a time (their jobs share the artist's queue), so the
//!   first Moment alone makes the artist's collection, and a lost writing is told apart from
//!   momentline's other Moments.
//! - UNDO hides the Moment there, once: hiding toggles, so a hide whose answer was lost is
//!   never sent again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::inprocess_api::{
    is_address, ApiError, Collection, CreateMoment, CreateWriting, Created, InProcessApi,
    MediaToken, SalesConfig, WritingToken,
};
use super::{NotCreated, ToCreate};
use crate::db::inprocess::{self, Token};
use crate::db::{moments, parse_ts, Conn, DbError};
use crate::domain::chain::Chain;
use crate::domain::ids::{ArtistId, MomentId};
use crate::domain::number_state::ReplyKind;
use crate::domain::sealed::SealingKey;
use crate::domain::secret::Secret;
use crate::domain::MomentKindCode;
use crate::store::Store;
use crate::vars::{invalid, ConfigError, Variable, Vars};

/// The In Process host's variables.
pub const VARIABLES: &[Variable] = &[
    (
        "INPROCESS_API_BASE",
        "https://inprocess.world/api",
        "In Process's API (inprocess dispatch)",
    ),
    (
        "INPROCESS_SITE_URL",
        "https://inprocess.world",
        "In Process's site, for the link texted back",
    ),
    (
        "INPROCESS_CHAIN",
        "base",
        "base or base-sepolia: the chain id, USDC and the link's prefix follow",
    ),
    (
        "INPROCESS_CREATE_REFERRAL",
        "(none: the artist's address)",
        "the address each Moment's create referral is paid to",
    ),
    (
        "INPROCESS_TIMEOUT_SECS",
        "240",
        "how long one In Process call may take (a create waits for its transaction)",
    ),
    (
        "INPROCESS_LOOK_AFTER_SECS",
        "120",
        "after a create's answer is lost, the wait before looking for the Moment",
    ),
];

/// An artist's Moments, one at a time: the jobs queue they share.
pub fn queue(artist: ArtistId) -> String {
    format!("inprocess:artist:{artist}")
}

/// How the host reaches In Process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InProcessSettings {
    pub api_base: String,
    pub site_url: String,
    pub chain: Chain,
    /// `None`: each artist's own address.
    pub create_referral: Option<String>,
    pub timeout: Duration,
    pub look_after: Duration,
}

impl InProcessSettings {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let seconds = |name: &'static str, default: &str, least: u64| {
            let text = vars.or(name, default);
            text.parse::<u64>()
                .ok()
                .filter(|s| (least..=3600).contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    invalid(
                        name,
                        format!("'{text}' is not a whole number of seconds from {least} to 3600"),
                    )
                })
        };
        let create_referral = vars
            .get("INPROCESS_CREATE_REFERRAL")
            .map(|a| {
                if is_address(&a) {
                    Ok(a)
                } else {
                    Err(invalid(
                        "INPROCESS_CREATE_REFERRAL",
                        format!("'{a}' is not an address (0x and 40 hex digits)"),
                    ))
                }
            })
            .transpose()?;
        Ok(Self {
            api_base: vars.base_url("INPROCESS_API_BASE", "https://inprocess.world/api")?,
            site_url: vars.base_url("INPROCESS_SITE_URL", "https://inprocess.world")?,
            chain: Chain::parse(&vars.or("INPROCESS_CHAIN", "base"))
                .map_err(|p| invalid("INPROCESS_CHAIN", p))?,
            create_referral,
            timeout: seconds("INPROCESS_TIMEOUT_SECS", "240", 1)?,
            look_after: seconds("INPROCESS_LOOK_AFTER_SECS", "120", 0)?,
        })
    }
}

/// How a hide (UNDO) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hide {
    /// In Process hid it: the Moment's link.
    Hidden { link: String },
    /// Nothing to hide: it never reached In Process, or was hidden before.
    Nothing,
    /// Not sent: another attempt may be.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Not sent: the artist's key is refused.
    Paused { reason: String },
    /// Sent, and not known to have worked: never sent again (it toggles).
    Unconfirmed {
        reason: String,
        link: Option<String>,
    },
}

/// In Process, as momentline posts Moments there.
#[derive(Clone)]
pub struct InProcess {
    api: InProcessApi,
    settings: InProcessSettings,
    sealing: SealingKey,
    store: Store,
    public_url: String,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The artist as a call needs it: the address it acts as, and its key.
struct Account {
    address: String,
    key: Secret,
    collection: Option<String>,
}

impl InProcess {
    pub fn new(
        settings: InProcessSettings,
        sealing: SealingKey,
        store: Store,
        public_url: String,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            api: InProcessApi::new(settings.api_base.clone(), settings.timeout)?,
            settings,
            sealing,
            store,
            public_url,
        })
    }

    /// The link texted back for a Moment on chain.
    pub fn link(&self, token: &Token) -> String {
        self.settings
            .chain
            .moment_link(&self.settings.site_url, &token.contract, &token.token_id)
    }

    /// Where Moment `id`'s metadata is served, for In Process to fetch.
    fn metadata_url(&self, id: MomentId) -> String {
        format!("{}/moments/{id}/metadata.json", self.public_url)
    }

    /// Creates the Moment on In Process; answers its link.
    pub async fn create(&self, to_create: &ToCreate<'_>) -> Result<String, NotCreated> {
        let m = to_create.moment;
        let (id, artist_id) = (m.id, m.artist_id);
        let (artist, kept, known) = self
            .store
            .read(move |c| {
                Ok((
                    inprocess::artist(c, artist_id)?,
                    inprocess::moment(c, id)?,
                    inprocess::tokens_of(c, artist_id)?,
                ))
            })
            .await
            .map_err(|e| retry(format!("could not read the Moment: {e}")))?;
        if let Some(token) = &kept.token {
            // Created before; this attempt's outcome was not recorded.
            return Ok(self.link(token));
        }
        let artist = artist.ok_or_else(|| NotCreated::Failed {
            reason: "the Moment's artist is gone".into(),
            told_as: None,
        })?;
        let account = self.account(artist_id, &m.artist_name, &artist)?;
        if let Some(sent_at) = kept.sent_at.as_deref() {
            let found = self
                .look_for(&account, m.kind, &m.title, &kept, sent_at, &known)
                .await
                .map_err(|e| self.not_created(e, &m.artist_name))?;
            if let Some(found) = found {
                tracing::info!(moment_id = id.0, contract = %found.contract_address, token_id = %found.token_id,
                    "a create whose answer was lost had made the Moment: it is not sent again");
                return self.keep_created(id, artist_id, &account, found).await;
            }
        }
        let created = match m.kind {
            MomentKindCode::Media => self.create_media(to_create, &account, &kept).await,
            MomentKindCode::Text | MomentKindCode::Link => {
                self.create_writing(to_create, &account, &kept).await
            }
        };
        let created = created.map_err(|e| self.not_created(e, &m.artist_name))?;
        self.keep_created(id, artist_id, &account, created).await
    }

    /// The artist's address and key, or why its Moments must wait.
    fn account(
        &self,
        id: ArtistId,
        name: &str,
        artist: &inprocess::Artist,
    ) -> Result<Account, NotCreated> {
        let paused = |why: String| {
            tracing::error!(artist_id = id.0, artist = name, "{why}");
            NotCreated::Paused { reason: why }
        };
        let Some(address) = artist.address.clone().filter(|a| is_address(a)) else {
            return Err(paused(format!(
                "artist '{name}' has no wallet address: its Moments wait for one"
            )));
        };
        if let Some(at) = &artist.refused_at {
            return Err(NotCreated::Paused {
                reason: format!(
                    "In Process refused the API key of artist '{name}' at {at}: its Moments wait \
                     for `momentline artists inprocess-key --artist \"{name}\"`"
                ),
            });
        }
        let Some(sealed) = &artist.sealed_key else {
            return Err(paused(format!(
                "artist '{name}' has no In Process key: its Moments wait for \
                 `momentline artists inprocess-key --artist \"{name}\"`"
            )));
        };
        let key = self
            .sealing
            .open(sealed, format!("artist:{id}").as_bytes())
            .map_err(|e| {
                paused(format!(
                    "the In Process key of artist '{name}' could not be opened ({e}): is \
                     MOMENTLINE_SECRET_KEY the one it was sealed with? Its Moments wait"
                ))
            })?;
        Ok(Account {
            address,
            key,
            collection: artist.collection.clone(),
        })
    }

    /// Uploads what the Moment still lacks (its media, its metadata), then creates it.
    async fn create_media(
        &self,
        to_create: &ToCreate<'_>,
        account: &Account,
        kept: &inprocess::Moment,
    ) -> Result<Created, ApiError> {
        let id = to_create.moment.id;
        if kept.media_uri.is_none() {
            // In Process stores whatever its fetch gets: only a file kept here is sent.
            let media = to_create
                .media
                .as_ref()
                .filter(|media| media.size.is_some())
                .ok_or_else(|| ApiError::Retryable {
                    reason: "the Moment's kept file is not there to upload".into(),
                    retry_after: None,
                    may_have_happened: false,
                })?;
            let uri = self.api.upload(&account.key, &media.url).await?;
            let kept_uri = uri.clone();
            self.write(move |tx| inprocess::set_media_uri(tx, id, &kept_uri, Utc::now()))
                .await?;
        }
        let metadata_uri = self.metadata_uri(id, account, kept).await?;
        let body = CreateMoment {
            contract: self.collection(to_create, account, &metadata_uri),
            token: MediaToken {
                token_metadata_uri: metadata_uri,
                create_referral: self.referral(account),
                sales_config: self.sale(to_create),
                mint_to_creator_count: 1,
                payout_recipient: account.address.clone(),
            },
            account: account.address.clone(),
            channel: "sms",
        };
        self.mark_sent(id).await?;
        self.api.create_moment(&account.key, &body).await
    }

    /// Creates a text or link Moment as writing: its text is the Moment.
    async fn create_writing(
        &self,
        to_create: &ToCreate<'_>,
        account: &Account,
        kept: &inprocess::Moment,
    ) -> Result<Created, ApiError> {
        let m = to_create.moment;
        // A new collection needs a metadata URI of its own: this Moment's.
        let contract = match &account.collection {
            Some(address) => Collection::Existing {
                address: address.clone(),
            },
            None => {
                let uri = self.metadata_uri(m.id, account, kept).await?;
                self.collection(to_create, account, &uri)
            }
        };
        let content = if m.description.is_empty() {
            m.title.clone()
        } else {
            m.description.clone()
        };
        let body = CreateWriting {
            title: m.title.clone(),
            contract,
            token: WritingToken {
                token_content: content,
                create_referral: self.referral(account),
                sales_config: self.sale(to_create),
                mint_to_creator_count: 1,
                payout_recipient: account.address.clone(),
            },
            account: account.address.clone(),
            channel: "sms",
        };
        self.mark_sent(m.id).await?;
        self.api.create_writing(&account.key, &body).await
    }

    /// The Moment's metadata URI: uploaded once (In Process fetches it from here), then kept.
    async fn metadata_uri(
        &self,
        id: MomentId,
        account: &Account,
        kept: &inprocess::Moment,
    ) -> Result<String, ApiError> {
        if let Some(uri) = &kept.metadata_uri {
            return Ok(uri.clone());
        }
        let uri = self
            .api
            .upload(&account.key, &self.metadata_url(id))
            .await?;
        let kept_uri = uri.clone();
        self.write(move |tx| inprocess::set_metadata_uri(tx, id, &kept_uri, Utc::now()))
            .await?;
        Ok(uri)
    }

    /// The artist's collection, or a new one this Moment starts.
    fn collection(&self, to_create: &ToCreate<'_>, account: &Account, uri: &str) -> Collection {
        match &account.collection {
            Some(address) => Collection::Existing {
                address: address.clone(),
            },
            None => Collection::New {
                name: to_create.moment.artist_name.clone(),
                uri: uri.to_owned(),
            },
        }
    }

    fn referral(&self, account: &Account) -> String {
        self.settings
            .create_referral
            .clone()
            .unwrap_or_else(|| account.address.clone())
    }

    /// Sold in USDC at the Moment's price, from now, for ever.
    fn sale(&self, to_create: &ToCreate<'_>) -> SalesConfig {
        let price = u64::try_from(to_create.moment.price_micro_usdc).unwrap_or_default();
        SalesConfig::erc20(price, self.settings.chain.usdc(), Utc::now().timestamp())
    }

    /// Notes, before a create goes, that one may have happened.
    async fn mark_sent(&self, id: MomentId) -> Result<(), ApiError> {
        self.write(move |tx| inprocess::mark_sent(tx, id, Utc::now()))
            .await
    }

    /// Looks on In Process for the Moment a create whose answer was lost may have made.
    ///
    /// - A media Moment, or any Moment whose metadata momentline uploaded and In Process
    ///   lists: its metadata URI is momentline's own upload, so the Moment listed with it is
    ///   this one.
    /// - A writing Moment (In Process makes its metadata): the artist's newest Moment made no
    ///   earlier than a minute before the first create was sent (In Process lists a Moment at
    ///   its sale's start, set as the create is sent), in its collection when it has one,
    ///   named with its title when the timeline gives a name, that is none of momentline's
    ///   recorded Moments. The artist's Moments are created
    ///   one at a time, so no other create of momentline's is in that window; a Moment the
    ///   artist made elsewhere in the same minutes would be taken for it (the text is then
    ///   linked to that Moment, and nothing is minted twice).
    async fn look_for(
        &self,
        account: &Account,
        kind: MomentKindCode,
        title: &str,
        kept: &inprocess::Moment,
        sent_at: &str,
        known: &[(String, String)],
    ) -> Result<Option<Created>, ApiError> {
        const PAGES: u32 = 3;
        if kind == MomentKindCode::Media {
            let Some(uri) = &kept.metadata_uri else {
                return Ok(None);
            };
            return self
                .api
                .find_by_metadata(&account.address, uri, PAGES)
                .await;
        }
        let since = parse_ts(sent_at)
            .map(|t| t - chrono::Duration::minutes(1))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let found = self
            .api
            .find(&account.address, PAGES, |listed| {
                let recorded = known.iter().any(|(contract, token)| {
                    contract.eq_ignore_ascii_case(&listed.address) && *token == listed.token_id
                });
                let in_collection = account
                    .collection
                    .as_deref()
                    .is_none_or(|c| c.eq_ignore_ascii_case(&listed.address));
                let made_since = listed.created_at().is_some_and(|t| t >= since);
                let named = listed.name().is_none_or(|name| name == title);
                !recorded && in_collection && made_since && named
            })
            .await?;
        Ok(found.map(|listed| listed.created()))
    }

    /// Keeps what the Moment became (and the collection it started); answers its link.
    async fn keep_created(
        &self,
        id: MomentId,
        artist: ArtistId,
        account: &Account,
        created: Created,
    ) -> Result<String, NotCreated> {
        let token = Token {
            contract: created.contract_address,
            token_id: created.token_id,
            chain_id: created.chain_id.or(Some(self.settings.chain.id())),
        };
        let link = self.link(&token);
        let new_collection = account.collection.is_none();
        self.store
            .write(move |tx| {
                let now = Utc::now();
                inprocess::set_token(tx, id, &token, now)?;
                if new_collection {
                    inprocess::set_collection(tx, artist, &token.contract)?;
                }
                Ok(())
            })
            .await
            // Its next attempt finds it on In Process: its create was noted as sent.
            .map_err(|e| retry(format!("could not keep the created Moment: {e}")))?;
        Ok(link)
    }

    /// What an In Process refusal means for the Moment.
    fn not_created(&self, e: ApiError, artist: &str) -> NotCreated {
        match e {
            ApiError::KeyRefused { message } => {
                let reason = format!(
                    "In Process refused the API key of artist '{artist}' (401: {message}): its \
                     Moments wait for `momentline artists inprocess-key --artist \"{artist}\"`"
                );
                tracing::error!(artist, "{reason}");
                NotCreated::Paused { reason }
            }
            ApiError::PaymentRequired { message } => NotCreated::Failed {
                reason: format!("In Process needs payment for the upload (402): {message}"),
                told_as: Some(ReplyKind::PaymentNeeded),
            },
            ApiError::Invalid { ref errors, .. } => {
                tracing::warn!(artist, errors = ?errors, "In Process refused the Moment: {e}");
                NotCreated::Failed {
                    reason: e.to_string(),
                    told_as: Some(ReplyKind::HostRefused),
                }
            }
            ApiError::Retryable {
                reason,
                retry_after,
                may_have_happened,
            } => NotCreated::Retry {
                reason,
                // In Process lists a Moment once its indexer catches up with the chain.
                retry_after: if may_have_happened {
                    Some(
                        retry_after
                            .unwrap_or_default()
                            .max(self.settings.look_after),
                    )
                } else {
                    retry_after
                },
            },
            ApiError::Permanent { reason } => NotCreated::Failed {
                reason,
                told_as: None,
            },
        }
    }

    /// Marks the artist's key refused: `true` the first time, when the artist is told.
    pub fn pause(&self, tx: &Conn, artist: ArtistId, now: DateTime<Utc>) -> Result<bool, DbError> {
        inprocess::refuse_key(tx, artist, now)
    }

    /// Hides Moment `id` on In Process (UNDO), at most once.
    pub async fn hide(&self, id: MomentId) -> Hide {
        let read = self
            .store
            .read(move |c| {
                let Some(moment) = moments::for_host(c, id)? else {
                    return Ok(None);
                };
                let artist = inprocess::artist(c, moment.artist_id)?;
                let known = inprocess::tokens_of(c, moment.artist_id)?;
                Ok(Some((moment, artist, inprocess::moment(c, id)?, known)))
            })
            .await;
        let (moment, artist, kept, known) = match read {
            Ok(Some((moment, Some(artist), kept, known))) => (moment, artist, kept, known),
            Ok(_) => return Hide::Nothing,
            Err(e) => {
                return Hide::Retry {
                    reason: format!("could not read the Moment: {e}"),
                    retry_after: None,
                }
            }
        };
        if kept.hidden_at.is_some() {
            return Hide::Nothing;
        }
        let link = kept.token.as_ref().map(|t| self.link(t));
        if kept.hide_sent_at.is_some() {
            return Hide::Unconfirmed {
                reason: "a hide was sent before and its answer was lost: hiding toggles, so it \
                         is not sent again"
                    .into(),
                link,
            };
        }
        let account = match self.account(moment.artist_id, &moment.artist_name, &artist) {
            Ok(account) => account,
            Err(NotCreated::Paused { reason }) => return Hide::Paused { reason },
            Err(other) => {
                return Hide::Retry {
                    reason: format!("{other:?}"),
                    retry_after: None,
                }
            }
        };
        let token = match (kept.token.clone(), kept.sent_at.as_deref()) {
            (Some(token), _) => token,
            (None, None) => return Hide::Nothing,
            (None, Some(sent_at)) => {
                match self
                    .look_for(&account, moment.kind, &moment.title, &kept, sent_at, &known)
                    .await
                {
                    Ok(Some(found)) => {
                        match self
                            .keep_created(id, moment.artist_id, &account, found)
                            .await
                        {
                            Ok(_) => {}
                            Err(e) => return self.hide_retry(e),
                        }
                        match self.store.read(move |c| inprocess::moment(c, id)).await {
                            Ok(inprocess::Moment {
                                token: Some(token), ..
                            }) => token,
                            _ => {
                                return Hide::Retry {
                                    reason: "could not read the Moment found".into(),
                                    retry_after: None,
                                }
                            }
                        }
                    }
                    Ok(None) => return Hide::Nothing,
                    Err(e) => return self.hide_retry(self.not_created(e, &moment.artist_name)),
                }
            }
        };
        let link = self.link(&token);
        if let Err(e) = self
            .write(move |tx| inprocess::mark_hide_sent(tx, id, Utc::now()))
            .await
        {
            return self.hide_retry(self.not_created(e, &moment.artist_name));
        }
        let created = Created {
            contract_address: token.contract.clone(),
            token_id: token.token_id.clone(),
            chain_id: token.chain_id,
            hash: None,
        };
        let chain_id = token.chain_id.unwrap_or(self.settings.chain.id());
        match self.api.hide(&account.key, &created, chain_id).await {
            Ok(()) => {
                let marked = self
                    .write(move |tx| inprocess::mark_hidden(tx, id, Utc::now()))
                    .await;
                if let Err(e) = marked {
                    tracing::warn!(
                        moment_id = id.0,
                        "the hide was answered but could not be noted: {e}"
                    );
                }
                Hide::Hidden { link }
            }
            Err(ApiError::Retryable {
                may_have_happened: true,
                reason,
                ..
            }) => Hide::Unconfirmed {
                reason: format!("{reason}: hiding toggles, so it is not sent again"),
                link: Some(link),
            },
            // Not sent, or refused before anything changed: it may be sent again.
            Err(e @ (ApiError::Retryable { .. } | ApiError::KeyRefused { .. })) => {
                let cleared = self
                    .store
                    .write(move |tx| inprocess::clear_hide_sent(tx, id))
                    .await;
                if let Err(write) = cleared {
                    return Hide::Unconfirmed {
                        reason: format!("{e}; and the hide could not be noted as unsent: {write}"),
                        link: Some(link),
                    };
                }
                self.hide_retry(self.not_created(e, &moment.artist_name))
            }
            Err(e) => Hide::Unconfirmed {
                reason: e.to_string(),
                link: Some(link),
            },
        }
    }

    fn hide_retry(&self, e: NotCreated) -> Hide {
        match e {
            NotCreated::Retry {
                reason,
                retry_after,
            } => Hide::Retry {
                reason,
                retry_after,
            },
            NotCreated::Paused { reason } => Hide::Paused { reason },
            NotCreated::Failed { reason, .. } => Hide::Unconfirmed { reason, link: None },
        }
    }

    /// A write whose failure another attempt may not meet.
    async fn write<F>(&self, work: F) -> Result<(), ApiError>
    where
        F: FnMut(&Conn) -> Result<(), DbError> + Send + 'static,
    {
        self.store
            .write(work)
            .await
            .map_err(|e| ApiError::Retryable {
                reason: format!("could not write to the database: {e}"),
                retry_after: None,
                may_have_happened: false,
            })
    }
}

fn retry(reason: String) -> NotCreated {
    NotCreated::Retry {
        reason,
        retry_after: None,
    }
}
