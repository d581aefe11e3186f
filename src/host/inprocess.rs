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
    is_address, ApiError, Collection, CreateMoment, CreateWriting, Created, InProcessApi, Listed,
    MediaToken, SalesConfig, WritingToken,
};
use super::{NotCreated, Refused, ToCreate};
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
    /// Not sent, for the reason a create would not have been (`Retry`, `Wait`, `Paused`);
    /// it may be sent later.
    NotSent(NotCreated),
    /// Sent, and not known to have worked: never sent again (it toggles).
    Unconfirmed {
        reason: String,
        link: Option<String>,
    },
}

/// The most creates sent for one Moment, each looked for and not found before the next.
const MOST_SENDS: u32 = 5;
/// The newest pages of the artist's timeline a lost Moment is looked for in.
const PAGES: u32 = 3;

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

/// The artist as a call needs it: the address it acts as, and its key (and the key as it is
/// kept, to know which one a refusal was of).
struct Account {
    address: String,
    key: Secret,
    sealed_key: Vec<u8>,
    collection: Option<String>,
}

/// What is read before a Moment is created or hidden.
struct Known {
    artist: inprocess::Artist,
    kept: inprocess::Moment,
    /// The tokens of the artist's Moments momentline recorded.
    tokens: Vec<(String, String)>,
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

    /// What creating or hiding Moment `id` of `artist` starts from.
    async fn known(&self, id: MomentId, artist: ArtistId) -> Result<Option<Known>, DbError> {
        self.store
            .read(move |c| {
                let Some(found) = inprocess::artist(c, artist)? else {
                    return Ok(None);
                };
                Ok(Some(Known {
                    artist: found,
                    kept: inprocess::moment(c, id)?,
                    tokens: inprocess::tokens_of(c, artist)?,
                }))
            })
            .await
    }

    /// Creates the Moment on In Process; answers its link.
    pub async fn create(&self, to_create: &ToCreate<'_>) -> Result<String, NotCreated> {
        let m = to_create.moment;
        let (id, artist_id) = (m.id, m.artist_id);
        let known = self
            .known(id, artist_id)
            .await
            .map_err(|e| retry(format!("could not read the Moment: {e}")))?
            .ok_or_else(|| NotCreated::Failed {
                reason: "the Moment's artist is gone".into(),
                told_as: None,
            })?;
        if let Some(token) = &known.kept.token {
            // Created before; this attempt's outcome was not recorded.
            return Ok(self.link(token));
        }
        let account = self.account(artist_id, &m.artist_name, &known.artist)?;
        if known.kept.last_sent_at.is_some() {
            if let Some(found) = self.find_lost(&account, m, &known).await? {
                return self.keep_created(id, artist_id, &account, found).await;
            }
        }
        if known.kept.sends >= MOST_SENDS {
            return Err(NotCreated::Failed {
                reason: format!(
                    "In Process did not create it after {MOST_SENDS} sends, each looked for on \
                     its timeline and not found"
                ),
                told_as: None,
            });
        }
        let created = match m.kind {
            MomentKindCode::Media => self.create_media(to_create, &account, &known.kept).await,
            MomentKindCode::Text | MomentKindCode::Link => {
                self.create_writing(to_create, &account, &known.kept).await
            }
        };
        let created =
            created.map_err(|(e, sent)| self.not_created(e, &m.artist_name, &account, sent))?;
        self.keep_created(id, artist_id, &account, created).await
    }

    /// The artist's address and key, or why its Moments must wait.
    fn account(
        &self,
        id: ArtistId,
        name: &str,
        artist: &inprocess::Artist,
    ) -> Result<Account, NotCreated> {
        let paused = |why: String, refused: Option<Refused>| {
            tracing::error!(artist_id = id.0, artist = name, "{why}");
            NotCreated::Paused {
                reason: why,
                refused,
            }
        };
        let fix = format!("`momentline artists inprocess-key --artist \"{name}\"`");
        if let Some(at) = &artist.refused_at {
            return Err(NotCreated::Paused {
                reason: format!(
                    "In Process refused the API key of artist '{name}' at {at}: its Moments wait \
                     for {fix}"
                ),
                refused: None,
            });
        }
        let Some(address) = artist.address.clone().filter(|a| is_address(a)) else {
            return Err(paused(
                format!("artist '{name}' has no wallet address: its Moments wait for {fix} --address 0x…"),
                Some(Refused { sealed_key: None }),
            ));
        };
        let Some(sealed) = &artist.sealed_key else {
            return Err(paused(
                format!("artist '{name}' has no In Process key: its Moments wait for {fix}"),
                Some(Refused { sealed_key: None }),
            ));
        };
        let key = self
            .sealing
            .open(sealed, format!("artist:{id}").as_bytes())
            .map_err(|e| {
                // momentline's own setting: the artist is not told, and nothing is marked.
                paused(
                    format!(
                        "the In Process key of artist '{name}' could not be opened ({e}): is \
                         MOMENTLINE_SECRET_KEY the one it was sealed with? Its Moments wait"
                    ),
                    None,
                )
            })?;
        Ok(Account {
            address,
            key,
            sealed_key: sealed.clone(),
            collection: artist.collection.clone(),
        })
    }

    /// Uploads what the Moment still lacks (its media, its metadata), then creates it. An
    /// error says whether a create was sent.
    async fn create_media(
        &self,
        to_create: &ToCreate<'_>,
        account: &Account,
        kept: &inprocess::Moment,
    ) -> Result<Created, (ApiError, bool)> {
        let id = to_create.moment.id;
        if kept.media_uri.is_none() {
            // In Process stores whatever its fetch gets: only a file kept here is sent.
            let media = to_create
                .media
                .as_ref()
                .filter(|media| media.size.is_some())
                .ok_or_else(|| {
                    (
                        ApiError::Retryable {
                            reason: "the Moment's kept file is not there to upload".into(),
                            retry_after: None,
                            may_have_happened: false,
                        },
                        false,
                    )
                })?;
            let uri = self
                .api
                .upload(&account.key, &media.url)
                .await
                .map_err(|e| (e, false))?;
            let kept_uri = uri.clone();
            self.write(move |tx| inprocess::set_media_uri(tx, id, &kept_uri, Utc::now()))
                .await
                .map_err(|e| (e, false))?;
        }
        let metadata_uri = self
            .metadata_uri(id, account, kept)
            .await
            .map_err(|e| (e, false))?;
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
        self.send(id, self.api.create_moment(&account.key, &body))
            .await
    }

    /// Creates a text or link Moment as writing: its text is the Moment.
    async fn create_writing(
        &self,
        to_create: &ToCreate<'_>,
        account: &Account,
        kept: &inprocess::Moment,
    ) -> Result<Created, (ApiError, bool)> {
        let m = to_create.moment;
        // A new collection needs a metadata URI of its own: this Moment's.
        let contract = match &account.collection {
            Some(address) => Collection::Existing {
                address: address.clone(),
            },
            None => {
                let uri = self
                    .metadata_uri(m.id, account, kept)
                    .await
                    .map_err(|e| (e, false))?;
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
        self.send(m.id, self.api.create_writing(&account.key, &body))
            .await
    }

    /// Sends a create, noted first as one that may happen; one In Process never read is
    /// noted as not sent. An error says whether the create may have happened.
    async fn send(
        &self,
        id: MomentId,
        create: impl std::future::Future<Output = Result<Created, ApiError>>,
    ) -> Result<Created, (ApiError, bool)> {
        self.write(move |tx| inprocess::mark_sent(tx, id, Utc::now()))
            .await
            .map_err(|e| (e, false))?;
        match create.await {
            Ok(created) => Ok(created),
            Err(e) if e.may_have_happened() => Err((e, true)),
            Err(e) => {
                let unsent = self
                    .write(move |tx| inprocess::mark_unsent(tx, id, Utc::now()))
                    .await;
                if let Err(write) = unsent {
                    // It is looked for before the next send, which is only slower.
                    tracing::warn!(
                        moment_id = id.0,
                        "a create In Process refused could not be noted as unsent: {write}"
                    );
                }
                Err((e, false))
            }
        }
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
        // Served from the moment its row is there.
        self.write(move |tx| inprocess::open(tx, id, Utc::now()))
            .await?;
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

    /// A create of the Moment may have happened (its last send's answer was lost, or the
    /// process stopped while it was sent): the Moment it made, found on In Process, or `None`
    /// once it was looked for twice, `INPROCESS_LOOK_AFTER_SECS` apart, and not found. Until
    /// then it waits (no attempt is spent): first until the send can no longer be under way
    /// and In Process's indexer has had time to list it (`INPROCESS_TIMEOUT_SECS` and
    /// `INPROCESS_LOOK_AFTER_SECS` after it was sent), then between the two looks.
    async fn find_lost(
        &self,
        account: &Account,
        m: &crate::db::moments::ForHost,
        known: &Known,
    ) -> Result<Option<Created>, NotCreated> {
        let kept = &known.kept;
        let Some(last) = kept.last_sent_at.as_deref() else {
            return Ok(None);
        };
        let wait = |reason: String, wait: chrono::Duration| NotCreated::Wait {
            reason,
            wait: wait
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_millis(100)),
        };
        let look_after = chrono::Duration::from_std(self.settings.look_after).unwrap_or_default();
        let timeout = chrono::Duration::from_std(self.settings.timeout).unwrap_or_default();
        let sent = parse_ts(last).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let now = Utc::now();
        let look_from = sent + timeout + look_after;
        if now < look_from {
            return Err(wait(
                format!("a create sent at {last} may have happened: it is looked for on In Process from {}", crate::db::ts(look_from)),
                look_from - now,
            ));
        }
        let found = self
            .look_for(account, m.kind, &m.title, kept, &known.tokens)
            .await
            .map_err(|e| self.not_created(e, &m.artist_name, account, false))?;
        if found.is_some() {
            return Ok(found);
        }
        let id = m.id;
        match kept.looked_at.as_deref().map(parse_ts) {
            Some(Ok(looked)) if now >= looked + look_after => Ok(None),
            Some(Ok(looked)) => Err(wait(
                "not found on In Process yet: looked for once more before it is sent again".into(),
                looked + look_after - now,
            )),
            _ => {
                self.write(move |tx| inprocess::mark_looked(tx, id, Utc::now()))
                    .await
                    .map_err(|e| self.not_created(e, &m.artist_name, account, false))?;
                Err(wait(
                    "not found on In Process yet: looked for once more before it is sent again"
                        .into(),
                    look_after,
                ))
            }
        }
    }

    /// Looks on In Process for the Moment a create whose answer was lost may have made.
    ///
    /// - A media Moment is the one listed with its metadata URI, momentline's own upload, so
    ///   no other Moment has it.
    /// - A writing Moment (In Process makes its metadata): the artist's newest Moment listed
    ///   no earlier than a minute before the first create was sent (In Process lists a Moment
    ///   at its sale's start, set as the create is sent), in its collection when it has one,
    ///   named with its title when the timeline gives a name, that is none of momentline's
    ///   recorded Moments. The artist's Moments are created one at a time, so no other create
    ///   of momentline's is in that window; a Moment the artist made elsewhere in the same
    ///   minutes would be taken for it (the text is then linked to that Moment, and nothing is
    ///   minted twice).
    ///
    /// A Moment listed without what the rule reads (its URI, its time) leaves it unknown: an
    /// error, never "not there".
    async fn look_for(
        &self,
        account: &Account,
        kind: MomentKindCode,
        title: &str,
        kept: &inprocess::Moment,
        known: &[(String, String)],
    ) -> Result<Option<Created>, ApiError> {
        let chain_id = self.settings.chain.id();
        if kind == MomentKindCode::Media {
            let Some(uri) = &kept.metadata_uri else {
                return Ok(None);
            };
            return self
                .api
                .find_by_metadata(&account.address, chain_id, uri, PAGES)
                .await;
        }
        let since = kept
            .sent_at
            .as_deref()
            .and_then(|t| parse_ts(t).ok())
            .map(|t| t - chrono::Duration::minutes(1))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let found = self
            .api
            .find(&account.address, chain_id, PAGES, |listed| {
                let recorded = known.iter().any(|(contract, token)| {
                    contract.eq_ignore_ascii_case(&listed.address) && *token == listed.token_id
                });
                let in_collection = account
                    .collection
                    .as_deref()
                    .is_none_or(|c| c.eq_ignore_ascii_case(&listed.address));
                if recorded || !in_collection {
                    return Ok(false);
                }
                let made = listed.created_at().ok_or_else(|| {
                    format!(
                        "a Moment is listed without a time it was made: {:?}",
                        listed.created_at
                    )
                })?;
                let named = listed.name().is_none_or(|name| name == title);
                Ok(made >= since && named)
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

    /// What an In Process refusal means for the Moment; `sent`: after a create that may have
    /// happened, which is looked for before anything is sent again (no attempt is spent).
    fn not_created(&self, e: ApiError, artist: &str, account: &Account, sent: bool) -> NotCreated {
        match e {
            ApiError::KeyRefused { message } => {
                let reason = format!(
                    "In Process refused the API key of artist '{artist}' (401: {message}): its \
                     Moments wait for `momentline artists inprocess-key --artist \"{artist}\"`"
                );
                tracing::error!(artist, "{reason}");
                NotCreated::Paused {
                    reason,
                    refused: Some(Refused {
                        sealed_key: Some(account.sealed_key.clone()),
                    }),
                }
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
            ApiError::Retryable { reason, .. } if sent => NotCreated::Wait {
                reason: format!("{reason}: the create may have happened, and is looked for first"),
                wait: self.settings.look_after.max(Duration::from_millis(100)),
            },
            ApiError::Retryable {
                reason,
                retry_after,
                ..
            } => NotCreated::Retry {
                reason,
                retry_after,
            },
            ApiError::Permanent { reason } => NotCreated::Failed {
                reason,
                told_as: None,
            },
        }
    }

    /// Marks the artist's key refused: `true` the first time, when the artist is told.
    pub fn pause(
        &self,
        tx: &Conn,
        artist: ArtistId,
        refused: &Refused,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        inprocess::refuse_key(tx, artist, refused.sealed_key.as_deref(), now)
    }

    /// Hides Moment `id` on In Process (UNDO), at most once.
    pub async fn hide(&self, id: MomentId) -> Hide {
        let moment = match self.store.read(move |c| moments::for_host(c, id)).await {
            Ok(Some(moment)) => moment,
            Ok(None) => return Hide::Nothing,
            Err(e) => return hide_retry(format!("could not read the Moment: {e}")),
        };
        let known = match self.known(id, moment.artist_id).await {
            Ok(Some(known)) => known,
            Ok(None) => return Hide::Nothing,
            Err(e) => return hide_retry(format!("could not read the Moment: {e}")),
        };
        let kept = &known.kept;
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
        let account = match self.account(moment.artist_id, &moment.artist_name, &known.artist) {
            Ok(account) => account,
            Err(e) => return hide_not_sent(e),
        };
        let token = match &kept.token {
            Some(token) => token.clone(),
            // No create of it may have happened (none was sent, or each was looked for).
            None if kept.last_sent_at.is_none() => return Hide::Nothing,
            None => match self.find_lost(&account, &moment, &known).await {
                Ok(Some(found)) => {
                    if let Err(e) = self
                        .keep_created(id, moment.artist_id, &account, found.clone())
                        .await
                    {
                        return hide_not_sent(e);
                    }
                    Token {
                        contract: found.contract_address,
                        token_id: found.token_id,
                        chain_id: found.chain_id.or(Some(self.settings.chain.id())),
                    }
                }
                Ok(None) => return Hide::Nothing,
                Err(e) => return hide_not_sent(e),
            },
        };
        self.send_hide(id, &account, &moment.artist_name, token)
            .await
    }

    /// Sends the hide, noted first as sent: once In Process may have read it, it is never
    /// sent again. A Moment the artist already hid on In Process's site is left so: hiding
    /// toggles, and would show it again.
    async fn send_hide(&self, id: MomentId, account: &Account, artist: &str, token: Token) -> Hide {
        let link = self.link(&token);
        let listed = self
            .api
            .find(&account.address, self.settings.chain.id(), 1, |listed| {
                Ok(listed.address.eq_ignore_ascii_case(&token.contract)
                    && listed.token_id == token.token_id)
            })
            .await;
        if listed
            .as_ref()
            .is_ok_and(|l| l.as_ref().is_some_and(Listed::is_hidden))
        {
            tracing::info!(moment_id = id.0, %link, "the Moment is hidden on In Process already: no hide sent");
            let marked = self
                .write(move |tx| inprocess::mark_hidden(tx, id, Utc::now()))
                .await;
            if let Err(e) = marked {
                return hide_retry(e.to_string());
            }
            return Hide::Hidden { link };
        }
        if let Err(e) = self
            .write(move |tx| inprocess::mark_hide_sent(tx, id, Utc::now()))
            .await
        {
            return hide_retry(e.to_string());
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
            // Never read (not reached, 408, 429) or refused before anything changed (401): it
            // may be sent again.
            Err(e @ (ApiError::Retryable { .. } | ApiError::KeyRefused { .. }))
                if !e.may_have_happened() =>
            {
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
                hide_not_sent(self.not_created(e, artist, account, false))
            }
            Err(e) => Hide::Unconfirmed {
                reason: e.to_string(),
                link: Some(link),
            },
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

fn hide_retry(reason: String) -> Hide {
    Hide::NotSent(retry(reason))
}

/// A hide not sent, for why a create would not have been; one that no attempt can send is
/// told as not confirmed.
fn hide_not_sent(e: NotCreated) -> Hide {
    match e {
        NotCreated::Failed { reason, .. } => Hide::Unconfirmed { reason, link: None },
        not_yet => Hide::NotSent(not_yet),
    }
}
