//! A stand-in for In Process's API (INPROCESS.md) for the integration tests: it answers as In
//! Process does, keeps everything it was sent, and checks every request against the fields In
//! Process takes, strictly, so a test can assert momentline sent exactly what In Process accepts.

// The tests at the bottom use part of this; the other integration tests use the rest.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// What In Process answers a key it does not take.
const INVALID_AUTHENTICATION: &str = "Invalid authentication";
/// The channels a create may name.
const CHANNELS: [&str; 4] = ["sms", "telegram", "web", "api"];
/// The kinds of sale a create may set up.
const SALE_TYPES: [&str; 2] = ["erc20Mint", "fixedPrice"];
/// The most Moments one timeline page lists, and how many it lists when not told.
const PAGE_LIMIT: u64 = 100;
/// What a payment-needing upload says it needs and has, in micro-USDC.
const UPLOAD_PRICE: &str = "1000000";
const UPLOAD_BALANCE: &str = "0";

/// A stand-in In Process API on a local port, and all it was sent.
pub struct InProcessStandIn {
    server: MockServer,
    state: Shared,
}

/// A request the stand-in received: its path, its `x-api-key`, and its body (the body's text
/// as a JSON string when it was not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub path: String,
    pub api_key: Option<String>,
    pub body: Value,
}

/// A Moment the stand-in created, as its timeline holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StandInMoment {
    /// Uuid-like, as In Process's timeline ids are.
    pub id: String,
    pub collection: String,
    pub token_id: String,
    pub chain_id: u64,
    pub metadata_uri: String,
    /// The creator's wallet address, as the key resolves to it.
    pub creator: String,
    /// `"media"` or `"writing"`.
    pub kind: &'static str,
    /// A writing's title.
    pub title: Option<String>,
    /// A writing's text.
    pub token_content: Option<String>,
    /// `salesConfig.pricePerToken`.
    pub price: String,
    pub hidden: bool,
    /// Whether this create made its collection.
    pub new_collection: bool,
    /// The create's whole body.
    pub body: Value,
}

/// An upload the stand-in answered with a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The URL In Process was asked to fetch.
    pub url: String,
    /// The `ar://` URI it answered.
    pub uri: String,
    pub api_key: String,
}

impl InProcessStandIn {
    /// Starts it. `chain_id` is what its creates answer with (8453 base, 84532 base-sepolia),
    /// and the chain its timeline lists when not told one.
    pub async fn start(chain_id: u64) -> Self {
        let server = MockServer::start().await;
        let state: Shared = Arc::new(Mutex::new(State::new(chain_id)));
        mount_post(&server, "/api/upload", UploadRoute(state.clone())).await;
        for kind in [Kind::Media, Kind::Writing] {
            let route = CreateRoute {
                state: state.clone(),
                kind,
            };
            mount_post(&server, kind.path(), route).await;
        }
        mount_post(&server, "/api/moment/hide", HideRoute(state.clone())).await;
        Mock::given(method("GET"))
            .and(path("/api/timeline"))
            .respond_with(TimelineRoute(state.clone()))
            .mount(&server)
            .await;
        // Lowest priority: whatever no route above takes.
        Mock::given(any())
            .respond_with(Elsewhere(state.clone()))
            .with_priority(u8::MAX)
            .mount(&server)
            .await;
        Self { server, state }
    }

    /// The API base momentline is configured with: `{server uri}/api`.
    pub fn api_base(&self) -> String {
        format!("{}/api", self.server.uri())
    }

    /// Registers an artist key (e.g. "art_sk_" + 43 chars) that resolves to wallet `address`.
    pub fn add_key(&self, key: &str, address: &str) {
        assert!(is_address(address), "{address:?} is not a wallet address");
        let key_state = Key {
            address: address.to_owned(),
            revoked: false,
            needs_payment: false,
        };
        lock(&self.state).keys.insert(key.to_owned(), key_state);
    }

    /// From now on this key answers 401 {"message":"Invalid authentication"} on every
    /// authenticated endpoint.
    pub fn revoke_key(&self, key: &str) {
        self.with_key(key, |k| k.revoked = true);
    }

    /// A pre-existing collection owned by `address` (so `contract: {address}` is accepted for it).
    pub fn add_collection(&self, collection: &str, address: &str) {
        assert!(is_address(collection), "{collection:?} is not an address");
        assert!(is_address(address), "{address:?} is not a wallet address");
        lock(&self.state).collections.push(Collection {
            address: collection.to_owned(),
            owner: address.to_owned(),
            tokens: 0,
        });
    }

    /// Uploads with this key answer 402 {"message","required","available","smart_wallet"}
    /// (micro-USDC digit strings).
    pub fn uploads_need_payment(&self, key: &str) {
        self.with_key(key, |k| k.needs_payment = true);
    }

    /// The next `n` creates (either kind) that pass the checks answer 400 {"message":"Invalid
    /// input","errors":[{"field","message"}]} without creating.
    pub fn refuse_next_creates(&self, n: usize, field: &str, message: &str) {
        let mut state = lock(&self.state);
        for _ in 0..n {
            state.outcomes.push_back(Outcome::Refuse {
                field: field.to_owned(),
                message: message.to_owned(),
            });
        }
    }

    /// The next create (either kind) that passes the checks creates the Moment (it is on the
    /// timeline) but its answer comes only after `delay`.
    pub fn create_then_stall(&self, delay: Duration) {
        lock(&self.state).outcomes.push_back(Outcome::Stall(delay));
    }

    /// The next create that passes the checks creates the Moment and then answers 500
    /// {"message": "..."}.
    pub fn create_then_fail(&self) {
        lock(&self.state).outcomes.push_back(Outcome::Fail);
    }

    /// The next create that passes the checks answers 500 {"message": "..."} without creating
    /// anything (the transaction was never sent).
    pub fn fail_next_create(&self) {
        lock(&self.state).outcomes.push_back(Outcome::FailUncreated);
    }

    /// Every timeline request's query string, in order.
    pub fn timeline_requests(&self) -> Vec<String> {
        lock(&self.state).timeline_requests.clone()
    }

    /// Every create request received (either endpoint), accepted or not, in order.
    pub fn create_requests(&self) -> Vec<Received> {
        lock(&self.state).create_requests.clone()
    }

    /// Moments created, in order.
    pub fn moments(&self) -> Vec<StandInMoment> {
        let state = lock(&self.state);
        state.moments.iter().map(|l| l.moment.clone()).collect()
    }

    /// Every upload answered with a URI: the URL In Process was asked to fetch and the ar://
    /// URI answered.
    pub fn uploads(&self) -> Vec<Upload> {
        lock(&self.state).uploads.clone()
    }

    /// Every upload request received, answered with a URI or not, in order.
    pub fn upload_requests(&self) -> Vec<Received> {
        lock(&self.state).upload_requests.clone()
    }

    /// Every hide request received, in order, with the Moment it named.
    pub fn hides(&self) -> Vec<Received> {
        lock(&self.state).hides.clone()
    }

    /// Every fault found in a request's body, query or headers, as "path: field: what was
    /// wrong", for `assert!(standin.violations().is_empty(), ...)`. A violating request is
    /// answered 400 (a missing `x-api-key` is answered 401, as In Process does).
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }

    /// Changes a registered key.
    fn with_key(&self, key: &str, change: impl FnOnce(&mut Key)) {
        let mut state = lock(&self.state);
        let known = state
            .keys
            .get_mut(key)
            .expect("a key registered with add_key");
        change(known);
    }
}

/// Serves an authenticated `POST` at `at` with `route`.
async fn mount_post(server: &MockServer, at: &str, route: impl Respond + 'static) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(route)
        .mount(server)
        .await;
}

/// The stand-in's state, shared by its routes.
type Shared = Arc<Mutex<State>>;

/// The shared state, even when a panic elsewhere left its lock poisoned.
fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the stand-in knows: keys, collections, Moments, and what it was sent.
struct State {
    chain_id: u64,
    keys: HashMap<String, Key>,
    collections: Vec<Collection>,
    moments: Vec<Listed>,
    outcomes: VecDeque<Outcome>,
    create_requests: Vec<Received>,
    upload_requests: Vec<Received>,
    uploads: Vec<Upload>,
    hides: Vec<Received>,
    /// Every timeline query string received.
    timeline_requests: Vec<String>,
    violations: Vec<String>,
    /// Counts every id the stand-in makes, so no two are alike.
    serial: u64,
}

/// An artist key: the wallet it resolves to, and how it is answered.
struct Key {
    address: String,
    revoked: bool,
    needs_payment: bool,
}

/// A collection (contract), its owner and how many tokens it has.
struct Collection {
    address: String,
    owner: String,
    tokens: u64,
}

/// A Moment on the timeline, and when it was made: as In Process lists it, its sale's start
/// when it has one, else when it was indexed.
struct Listed {
    moment: StandInMoment,
    created_at: DateTime<Utc>,
}

/// How the next create that passes the checks is answered, when a test set it up.
enum Outcome {
    Refuse { field: String, message: String },
    Stall(Duration),
    Fail,
    FailUncreated,
}

/// Why a request's key is not taken.
enum KeyFault {
    Missing,
    Refused,
}

impl State {
    fn new(chain_id: u64) -> Self {
        Self {
            chain_id,
            keys: HashMap::new(),
            collections: Vec::new(),
            moments: Vec::new(),
            outcomes: VecDeque::new(),
            create_requests: Vec::new(),
            upload_requests: Vec::new(),
            uploads: Vec::new(),
            hides: Vec::new(),
            timeline_requests: Vec::new(),
            violations: Vec::new(),
            serial: 0,
        }
    }

    /// Keeps each of `faults`, found in a request to `at`.
    fn record(&mut self, at: &str, faults: &Faults) {
        for (field, message) in &faults.0 {
            self.violations.push(format!("{at}: {field}: {message}"));
        }
    }

    /// The wallet address `key` resolves to, when In Process takes it.
    fn artist(&self, key: Option<&str>) -> Result<String, KeyFault> {
        let key = key.ok_or(KeyFault::Missing)?;
        match self.keys.get(key) {
            Some(known) if !known.revoked => Ok(known.address.clone()),
            _ => Err(KeyFault::Refused),
        }
    }

    /// The collection at `address`.
    fn collection(&self, address: &str) -> Option<&Collection> {
        self.collections.iter().find(|c| same(&c.address, address))
    }

    /// A number no id made before has used.
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// A fresh Arweave URI, `ar://` and 43 characters.
    fn fresh_ar(&mut self, what: &str) -> String {
        let n = self.next_serial();
        format!("ar://{what}{n:0>width$}", width = 43 - what.len())
    }

    /// A new collection owned by `owner`; its address.
    fn fresh_collection(&mut self, owner: &str) -> String {
        let address = loop {
            let candidate = format!("0xc0{:038x}", self.next_serial());
            if self.collection(&candidate).is_none() {
                break candidate;
            }
        };
        self.collections.push(Collection {
            address: address.clone(),
            owner: owner.to_owned(),
            tokens: 0,
        });
        address
    }

    /// The next token id of the collection at `address`, and its address as it was made.
    fn next_token(&mut self, address: &str) -> (String, String) {
        match self
            .collections
            .iter_mut()
            .find(|c| same(&c.address, address))
        {
            Some(collection) => {
                collection.tokens += 1;
                (collection.address.clone(), collection.tokens.to_string())
            }
            None => (address.to_owned(), "1".to_owned()),
        }
    }

    /// Answers an upload of `url` that passed the checks.
    fn upload(&mut self, key: &str, artist: &str, url: String) -> ResponseTemplate {
        if self.keys.get(key).is_some_and(|k| k.needs_payment) {
            return payment_required(artist);
        }
        let uri = self.fresh_ar("upload");
        self.uploads.push(Upload {
            url,
            uri: uri.clone(),
            api_key: key.to_owned(),
        });
        ResponseTemplate::new(200).set_body_json(json!({ "uri": uri }))
    }

    /// Answers a create that passed the checks, as the test set it up.
    fn answer_create(&mut self, draft: Draft, artist: &str, body: Value) -> ResponseTemplate {
        match self.outcomes.pop_front() {
            Some(Outcome::Refuse { field, message }) => invalid_input(&[(field, message)]),
            Some(Outcome::Fail) => {
                self.create(draft, artist, body);
                message(500, "Failed to create moment")
            }
            Some(Outcome::FailUncreated) => message(500, "Failed to create moment"),
            Some(Outcome::Stall(delay)) => {
                let moment = self.create(draft, artist, body);
                self.created(&moment).set_delay(delay)
            }
            None => {
                let moment = self.create(draft, artist, body);
                self.created(&moment)
            }
        }
    }

    /// Creates the Moment `draft` describes and puts it on the timeline.
    fn create(&mut self, draft: Draft, artist: &str, body: Value) -> StandInMoment {
        let (collection, new_collection) = match draft.target {
            Target::Existing(address) => (address, false),
            Target::New => (self.fresh_collection(artist), true),
        };
        let (collection, token_id) = self.next_token(&collection);
        let metadata_uri = match draft.metadata_uri {
            Some(uri) => uri,
            None => self.fresh_ar("writing"),
        };
        let n = self.next_serial();
        let moment = StandInMoment {
            id: format!("5a4d1e00-0000-4000-8000-{n:012x}"),
            collection,
            token_id,
            chain_id: self.chain_id,
            metadata_uri,
            creator: artist.to_owned(),
            kind: draft.kind.name(),
            title: draft.title,
            token_content: draft.token_content,
            price: draft.price,
            hidden: false,
            new_collection,
            body,
        };
        let sale_start = moment.body["token"]["salesConfig"]["saleStart"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| *s != 0)
            .and_then(|s| DateTime::from_timestamp(s, 0));
        self.moments.push(Listed {
            moment: moment.clone(),
            created_at: sale_start.unwrap_or_else(Utc::now),
        });
        moment
    }

    /// The `200` answer to a create that made `moment`.
    fn created(&mut self, moment: &StandInMoment) -> ResponseTemplate {
        let hash = format!("0x{:064x}", self.next_serial());
        ResponseTemplate::new(200).set_body_json(json!({
            "contractAddress": moment.collection,
            "tokenId": moment.token_id,
            "hash": hash,
            "chainId": moment.chain_id,
        }))
    }

    /// Toggles the hidden flag of the Moment `named`, when it is `artist`'s.
    fn toggle_hidden(&mut self, artist: &str, named: &Named) -> ResponseTemplate {
        let found = self.moments.iter_mut().find(|l| {
            same(&l.moment.collection, &named.collection)
                && l.moment.token_id == named.token_id
                && l.moment.chain_id == named.chain_id
                && same(&l.moment.creator, artist)
        });
        match found {
            Some(listed) => {
                listed.moment.hidden = !listed.moment.hidden;
                ResponseTemplate::new(200).set_body_json(json!({ "success": true }))
            }
            None => message(404, "Moment not found"),
        }
    }

    /// One page of the timeline `query` asks for, newest first.
    fn timeline(&self, query: &Query) -> ResponseTemplate {
        let listed: Vec<&Listed> = self
            .moments
            .iter()
            .rev()
            .filter(|l| query.lists(&l.moment))
            .collect();
        let limit = query.limit as usize;
        let skip = (query.page as usize - 1) * limit;
        let moments: Vec<Value> = listed
            .iter()
            .skip(skip)
            .take(limit)
            .map(|l| l.to_json())
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "status": "success",
            "moments": moments,
            "pagination": {
                "page": query.page,
                "limit": query.limit,
                "total_pages": listed.len().div_ceil(limit),
            },
        }))
    }
}

impl Listed {
    /// The Moment as the timeline lists it.
    fn to_json(&self) -> Value {
        let moment = &self.moment;
        let hidden: Vec<String> = if moment.hidden {
            vec![artist_id(&moment.creator)]
        } else {
            Vec::new()
        };
        json!({
            "id": moment.id,
            "address": moment.collection,
            "token_id": moment.token_id,
            "chain_id": moment.chain_id,
            "uri": moment.metadata_uri,
            "creator": { "address": moment.creator },
            "created_at": self.created_at.to_rfc3339(),
            "hidden": hidden,
            // In Process reads a media Moment's metadata from its URI; a writing's it made.
            "metadata": moment.title.as_ref().map(|title| json!({ "name": title })),
        })
    }
}

/// The uuid-like id In Process knows the artist at `address` by.
fn artist_id(address: &str) -> String {
    let hex = address.trim_start_matches("0x").to_ascii_lowercase();
    let tail = hex.get(8..).unwrap_or_default();
    let part = |from: usize, to: usize| tail.get(from..to).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}

/// Which create endpoint: a media Moment or a writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Media,
    Writing,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Media => "/api/moment/create",
            Kind::Writing => "/api/moment/create/writing",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Media => "media",
            Kind::Writing => "writing",
        }
    }
}

/// A POST as the authenticated endpoints read it.
struct Post {
    path: String,
    key: Option<String>,
    /// The body as JSON, or its text when it is not JSON.
    body: Result<Value, String>,
    /// What was wrong with the headers.
    faults: Faults,
}

impl Post {
    fn read(request: &Request) -> Self {
        let key = request
            .headers
            .get("x-api-key")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = serde_json::from_slice(&request.body)
            .map_err(|_| String::from_utf8_lossy(&request.body).into_owned());
        let mut faults = Faults::default();
        check_content_type(&mut faults, request);
        Self {
            path: request.url.path().to_owned(),
            key,
            body,
            faults,
        }
    }

    /// The request as the stand-in keeps it.
    fn received(&self) -> Received {
        Received {
            path: self.path.clone(),
            api_key: self.key.clone(),
            body: self.json(),
        }
    }

    /// The body as JSON, or its text as a JSON string.
    fn json(&self) -> Value {
        match &self.body {
            Ok(body) => body.clone(),
            Err(text) => Value::String(text.clone()),
        }
    }

    /// The artist's address and what `check` read from the body, or why In Process refuses
    /// the request (each fault found is recorded).
    fn admit<T>(
        &self,
        state: &mut State,
        check: impl FnOnce(&State, &Value, Option<&str>, &mut Faults) -> Option<T>,
    ) -> Result<(String, T), Refusal> {
        let mut faults = self.faults.clone();
        let Ok(body) = &self.body else {
            faults.add("body", "not JSON");
            state.record(&self.path, &faults);
            return Err(Refusal::NotJson);
        };
        let artist = state.artist(self.key.as_deref());
        let read = check(state, body, artist.as_deref().ok(), &mut faults);
        let read = match read {
            Some(read) if faults.is_empty() => read,
            _ => {
                if faults.is_empty() {
                    faults.add("body", "not read");
                }
                state.record(&self.path, &faults);
                return Err(Refusal::Invalid(faults));
            }
        };
        match artist {
            Ok(artist) => Ok((artist, read)),
            Err(fault) => {
                if let KeyFault::Missing = fault {
                    faults.add("x-api-key", "missing");
                    state.record(&self.path, &faults);
                }
                Err(Refusal::Key)
            }
        }
    }
}

/// Why In Process refuses an authenticated POST before its endpoint acts on it.
enum Refusal {
    NotJson,
    Invalid(Faults),
    Key,
}

impl Refusal {
    fn answer(self) -> ResponseTemplate {
        match self {
            Refusal::NotJson => message(400, "Invalid JSON body"),
            Refusal::Invalid(faults) => faults.answer(),
            Refusal::Key => message(401, INVALID_AUTHENTICATION),
        }
    }
}

/// Records a fault unless the request says its body is JSON.
fn check_content_type(faults: &mut Faults, request: &Request) {
    let Some(value) = request.headers.get("content-type") else {
        faults.add("content-type", "missing");
        return;
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let media_type = text.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        faults.add("content-type", format!("{text:?} is not application/json"));
    }
}

/// `POST /api/upload`.
struct UploadRoute(Shared);

impl Respond for UploadRoute {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let post = Post::read(request);
        let mut state = lock(&self.0);
        state.upload_requests.push(post.received());
        match post.admit(&mut state, |_, body, _, f| read_upload(f, body)) {
            Ok((artist, url)) => {
                let key = post.key.as_deref().unwrap_or_default();
                state.upload(key, &artist, url)
            }
            Err(refusal) => refusal.answer(),
        }
    }
}

/// `POST /api/moment/create` and `POST /api/moment/create/writing`.
struct CreateRoute {
    state: Shared,
    kind: Kind,
}

impl Respond for CreateRoute {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let post = Post::read(request);
        let mut state = lock(&self.state);
        state.create_requests.push(post.received());
        let kind = self.kind;
        let read = |state: &State, body: &Value, artist: Option<&str>, f: &mut Faults| {
            read_create(f, kind, state, body, artist)
        };
        match post.admit(&mut state, read) {
            Ok((artist, draft)) => state.answer_create(draft, &artist, post.json()),
            Err(refusal) => refusal.answer(),
        }
    }
}

/// `POST /api/moment/hide`.
struct HideRoute(Shared);

impl Respond for HideRoute {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let post = Post::read(request);
        let mut state = lock(&self.0);
        state.hides.push(post.received());
        match post.admit(&mut state, |_, body, _, f| read_hide(f, body)) {
            Ok((artist, named)) => state.toggle_hidden(&artist, &named),
            Err(refusal) => refusal.answer(),
        }
    }
}

/// `GET /api/timeline`: public, no key.
struct TimelineRoute(Shared);

impl Respond for TimelineRoute {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.0);
        let asked = request.url.query().unwrap_or_default().to_owned();
        state.timeline_requests.push(asked);
        match read_query(request, state.chain_id) {
            Ok(query) => state.timeline(&query),
            Err(faults) => {
                state.record(request.url.path(), &faults);
                let text = faults.summary();
                ResponseTemplate::new(400)
                    .set_body_json(json!({ "status": "error", "message": text }))
            }
        }
    }
}

/// Every request no endpoint takes: `404`, and a violation.
struct Elsewhere(Shared);

impl Respond for Elsewhere {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let what = format!("{} {}", request.method, request.url.path());
        lock(&self.0)
            .violations
            .push(format!("{what}: not an In Process endpoint"));
        message(404, "Not found")
    }
}

/// A `{"message"}` answer.
fn message(status: u16, text: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "message": text }))
}

/// The `400` answer naming each field at fault.
fn invalid_input(faults: &[(String, String)]) -> ResponseTemplate {
    let errors: Vec<Value> = faults
        .iter()
        .map(|(field, message)| json!({ "field": field, "message": message }))
        .collect();
    ResponseTemplate::new(400)
        .set_body_json(json!({ "message": "Invalid input", "errors": errors }))
}

/// The `402` answer to an upload the artist's wallet cannot pay for.
fn payment_required(artist: &str) -> ResponseTemplate {
    ResponseTemplate::new(402).set_body_json(json!({
        "message": "Insufficient balance: the monthly free uploads are spent",
        "required": UPLOAD_PRICE,
        "available": UPLOAD_BALANCE,
        "smart_wallet": smart_wallet(artist),
    }))
}

/// The smart wallet In Process keeps for the artist at `address`.
fn smart_wallet(address: &str) -> String {
    let hex = address.trim_start_matches("0x");
    format!("0x5a{}", hex.get(2..).unwrap_or_default())
}

/// The faults found in one request: each field's path and what was wrong with it.
#[derive(Debug, Clone, Default)]
struct Faults(Vec<(String, String)>);

impl Faults {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_owned(), message.into()));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `400` answer naming each fault.
    fn answer(&self) -> ResponseTemplate {
        invalid_input(&self.0)
    }

    /// The faults in one line.
    fn summary(&self) -> String {
        let each: Vec<String> = self.0.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        each.join("; ")
    }
}

/// A create that passed the checks: what the Moment will be.
struct Draft {
    kind: Kind,
    target: Target,
    /// A media Moment's `tokenMetadataURI` (a writing's is the stand-in's own).
    metadata_uri: Option<String>,
    title: Option<String>,
    token_content: Option<String>,
    price: String,
}

/// The collection a create names.
enum Target {
    Existing(String),
    New,
}

/// What a token says that the Moment keeps.
struct Token {
    /// `tokenMetadataURI` for media, `tokenContent` for a writing.
    own: String,
    price: String,
}

/// The Moment a hide names.
struct Named {
    collection: String,
    token_id: String,
    chain_id: u64,
}

/// What a timeline request asks for.
struct Query {
    artist: Option<String>,
    collection: Option<String>,
    chain_id: u64,
    limit: u64,
    page: u64,
    hidden: bool,
}

impl Query {
    /// Whether the timeline this asks for lists `moment`.
    fn lists(&self, moment: &StandInMoment) -> bool {
        self.artist
            .as_ref()
            .is_none_or(|a| same(a, &moment.creator))
            && (self.collection.as_ref()).is_none_or(|c| same(c, &moment.collection))
            && moment.chain_id == self.chain_id
            && (self.hidden || !moment.hidden)
    }
}

/// An upload's body: `{"url"}`; the URL.
fn read_upload(f: &mut Faults, body: &Value) -> Option<String> {
    let top = object(f, "", body, &["url"], &[])?;
    field(f, top, "", "url", public_url).map(str::to_owned)
}

/// A create's body, of either kind.
fn read_create(
    f: &mut Faults,
    kind: Kind,
    state: &State,
    body: &Value,
    artist: Option<&str>,
) -> Option<Draft> {
    let required: &[&str] = match kind {
        Kind::Media => &["contract", "token", "account"],
        Kind::Writing => &["title", "contract", "token", "account"],
    };
    let top = object(f, "", body, required, &["splits", "channel"])?;
    let title = match kind {
        Kind::Media => None,
        Kind::Writing => field(f, top, "", "title", text),
    };
    let target = field(f, top, "", "contract", |f, at, v| {
        read_contract(f, at, v, state, artist)
    });
    let token = field(f, top, "", "token", |f, at, v| read_token(f, at, v, kind));
    field(f, top, "", "account", |f, at, v| {
        read_account(f, at, v, artist)
    });
    field(f, top, "", "splits", read_splits);
    field(f, top, "", "channel", |f, at, v| {
        one_of(f, at, v, &CHANNELS)
    });
    let (target, token) = (target?, token?);
    let (metadata_uri, token_content) = match kind {
        Kind::Media => (Some(token.own), None),
        Kind::Writing => (None, Some(token.own)),
    };
    Some(Draft {
        kind,
        target,
        metadata_uri,
        title: title.map(str::to_owned),
        token_content,
        price: token.price,
    })
}

/// `contract`: `{"address"}` of an existing collection of the artist's, or `{"name", "uri"}`
/// for a new one.
fn read_contract(
    f: &mut Faults,
    at: &str,
    value: &Value,
    state: &State,
    artist: Option<&str>,
) -> Option<Target> {
    let names_address = value.as_object().is_some_and(|m| m.contains_key("address"));
    if !names_address {
        let contract = object(f, at, value, &["name", "uri"], &[])?;
        let name = field(f, contract, at, "name", text);
        let uri = field(f, contract, at, "uri", ar_uri);
        return name.and(uri).map(|_| Target::New);
    }
    let contract = object(f, at, value, &["address"], &[])?;
    let named = field(f, contract, at, "address", address)?;
    let at = join(at, "address");
    match state.collection(named) {
        None => f.add(&at, format!("{named} is not a collection In Process knows")),
        Some(c) if artist.is_some_and(|a| !same(a, &c.owner)) => {
            f.add(&at, format!("{named} is another artist's collection"));
        }
        Some(_) => {}
    }
    Some(Target::Existing(named.to_owned()))
}

/// `token`: a media Moment's or a writing's.
fn read_token(f: &mut Faults, at: &str, value: &Value, kind: Kind) -> Option<Token> {
    let own = match kind {
        Kind::Media => "tokenMetadataURI",
        Kind::Writing => "tokenContent",
    };
    let required = [own, "createReferral", "salesConfig", "mintToCreatorCount"];
    let token = object(f, at, value, &required, &["payoutRecipient", "maxSupply"])?;
    let own = match kind {
        Kind::Media => field(f, token, at, own, ar_uri),
        Kind::Writing => field(f, token, at, own, text),
    };
    field(f, token, at, "createReferral", address);
    let price = field(f, token, at, "salesConfig", read_sales_config);
    field(f, token, at, "mintToCreatorCount", |f, at, v| {
        count(f, at, v, 0)
    });
    field(f, token, at, "payoutRecipient", address);
    field(f, token, at, "maxSupply", |f, at, v| count(f, at, v, 1));
    Some(Token {
        own: own?.to_owned(),
        price: price?,
    })
}

/// `salesConfig`; its price.
fn read_sales_config(f: &mut Faults, at: &str, value: &Value) -> Option<String> {
    let required = ["type", "pricePerToken", "saleStart", "saleEnd"];
    let sale = object(f, at, value, &required, &["currency"])?;
    let kind = field(f, sale, at, "type", |f, at, v| {
        one_of(f, at, v, &SALE_TYPES)
    });
    let price = field(f, sale, at, "pricePerToken", digits);
    let start = field(f, sale, at, "saleStart", unix_time);
    let end = field(f, sale, at, "saleEnd", unix_time);
    field(f, sale, at, "currency", address);
    if kind == Some("erc20Mint") && !sale.contains_key("currency") {
        f.add(
            &join(at, "currency"),
            "missing: an erc20Mint sale names its token",
        );
    }
    if let (Some(start), Some(end)) = (start, end) {
        if end < start {
            f.add(&join(at, "saleEnd"), "before saleStart");
        }
    }
    price.map(str::to_owned)
}

/// `account`: the artist's own address, the one their key resolves to.
fn read_account(f: &mut Faults, at: &str, value: &Value, artist: Option<&str>) -> Option<()> {
    let account = address(f, at, value)?;
    if let Some(artist) = artist {
        if !same(account, artist) {
            f.add(at, format!("{account} is not the key's address {artist}"));
        }
    }
    Some(())
}

/// `splits`: two or more `{"address", "percentAllocation"}` summing to 100.
fn read_splits(f: &mut Faults, at: &str, value: &Value) -> Option<()> {
    let Some(splits) = value.as_array() else {
        f.add(
            at,
            format!("{} where In Process takes an array", kind_of(value)),
        );
        return None;
    };
    if splits.len() < 2 {
        f.add(at, "fewer than 2 recipients");
    }
    let mut total = Some(0.0);
    for (i, split) in splits.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let share = object(f, &at, split, &["address", "percentAllocation"], &[]).and_then(|s| {
            field(f, s, &at, "address", address);
            field(f, s, &at, "percentAllocation", percent)
        });
        total = total.zip(share).map(|(sum, share)| sum + share);
    }
    if let Some(total) = total.filter(|t| (t - 100.0).abs() > 1e-9) {
        f.add(at, format!("allocations sum to {total}, not 100"));
    }
    Some(())
}

/// A hide's body: `{"moment": {"collectionAddress", "tokenId", "chainId"}}`.
fn read_hide(f: &mut Faults, body: &Value) -> Option<Named> {
    let top = object(f, "", body, &["moment"], &[])?;
    field(f, top, "", "moment", |f, at, v| {
        let required = ["collectionAddress", "tokenId", "chainId"];
        let moment = object(f, at, v, &required, &[])?;
        let collection = field(f, moment, at, "collectionAddress", address);
        let token_id = field(f, moment, at, "tokenId", digits);
        let chain_id = field(f, moment, at, "chainId", |f, at, v| count(f, at, v, 1));
        Some(Named {
            collection: collection?.to_owned(),
            token_id: token_id?.to_owned(),
            chain_id: chain_id?,
        })
    })
}

/// A timeline request's query; `chain_id` is the chain listed when it names none.
fn read_query(request: &Request, chain_id: u64) -> Result<Query, Faults> {
    let mut f = Faults::default();
    let mut query = Query {
        artist: None,
        collection: None,
        chain_id,
        limit: PAGE_LIMIT,
        page: 1,
        hidden: false,
    };
    for (name, value) in request.url.query_pairs() {
        let text = Value::String(value.into_owned());
        let f = &mut f;
        let at = name.as_ref();
        match at {
            "artist" => query.artist = address(f, at, &text).map(str::to_owned),
            "collection" => query.collection = address(f, at, &text).map(str::to_owned),
            "chain_id" => query.chain_id = query_number(f, at, &text, 1, u64::MAX).unwrap_or(0),
            "limit" => query.limit = query_number(f, at, &text, 1, PAGE_LIMIT).unwrap_or(1),
            "page" => query.page = query_number(f, at, &text, 1, u64::MAX).unwrap_or(1),
            "hidden" => query.hidden = one_of(f, at, &text, &["true", "false"]) == Some("true"),
            _ => f.add(at, "not a query the timeline takes"),
        }
    }
    if f.is_empty() {
        Ok(query)
    } else {
        Err(f)
    }
}

/// A query value that is a whole number from `min` to `max`.
fn query_number(f: &mut Faults, at: &str, value: &Value, min: u64, max: u64) -> Option<u64> {
    let text = digits(f, at, value)?;
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            f.add(at, format!("{text} is not from {min} to {max}"));
            None
        }
    }
}

/// Runs `check` on the field `name` of `object` (at `at`) when it is there: a missing field
/// that is required was recorded already.
fn field<'a, T>(
    f: &mut Faults,
    object: &'a Map<String, Value>,
    at: &str,
    name: &str,
    check: impl FnOnce(&mut Faults, &str, &'a Value) -> Option<T>,
) -> Option<T> {
    let value = object.get(name)?;
    check(f, &join(at, name), value)
}

/// `value` as an object that holds every `required` field, any of the `optional` ones and
/// nothing else.
fn object<'a>(
    f: &mut Faults,
    at: &str,
    value: &'a Value,
    required: &[&str],
    optional: &[&str],
) -> Option<&'a Map<String, Value>> {
    let Some(object) = value.as_object() else {
        let at = if at.is_empty() { "body" } else { at };
        f.add(
            at,
            format!("{} where In Process takes an object", kind_of(value)),
        );
        return None;
    };
    for name in required.iter().filter(|n| !object.contains_key(**n)) {
        f.add(&join(at, name), "missing");
    }
    let known = |name: &str| required.contains(&name) || optional.contains(&name);
    for name in object.keys().filter(|n| !known(n)) {
        f.add(&join(at, name), "not a field In Process takes");
    }
    Some(object)
}

/// A string.
fn string<'a>(f: &mut Faults, at: &str, value: &'a Value) -> Option<&'a str> {
    let text = value.as_str();
    if text.is_none() {
        f.add(
            at,
            format!("{} where In Process takes a string", kind_of(value)),
        );
    }
    text
}

/// A string with something in it.
fn text<'a>(f: &mut Faults, at: &str, value: &'a Value) -> Option<&'a str> {
    let text = string(f, at, value)?;
    if text.trim().is_empty() {
        f.add(at, "empty");
        return None;
    }
    Some(text)
}

/// An address: `0x` and 40 hex digits.
fn address<'a>(f: &mut Faults, at: &str, value: &'a Value) -> Option<&'a str> {
    let text = string(f, at, value)?;
    if !is_address(text) {
        f.add(
            at,
            format!("{text:?} is not an address (0x and 40 hex digits)"),
        );
        return None;
    }
    Some(text)
}

/// An Arweave URI: `ar://` and an id.
fn ar_uri<'a>(f: &mut Faults, at: &str, value: &'a Value) -> Option<&'a str> {
    let text = string(f, at, value)?;
    if text.strip_prefix("ar://").is_none_or(str::is_empty) {
        f.add(at, format!("{text:?} is not an ar:// URI"));
        return None;
    }
    Some(text)
}

/// An `http` or `https` URL In Process can fetch.
fn public_url<'a>(f: &mut Faults, at: &str, value: &'a Value) -> Option<&'a str> {
    let text = string(f, at, value)?;
    let fetchable = reqwest::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
    if !fetchable {
        f.add(at, format!("{text:?} is not an http(s) URL"));
        return None;
    }
    Some(text)
}

/// A string of decimal digits.
fn digits<'a>(f: &mut Faults, at: &str, value: &'a Value) -> Option<&'a str> {
    let text = string(f, at, value)?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        f.add(at, format!("{text:?} is not a string of digits"));
        return None;
    }
    Some(text)
}

/// Unix seconds as a string of digits (or a whole number) that fits 64 bits.
fn unix_time(f: &mut Faults, at: &str, value: &Value) -> Option<u64> {
    if value.is_number() {
        let seconds = value.as_u64();
        if seconds.is_none() {
            f.add(at, format!("{value} is not a whole number of seconds"));
        }
        return seconds;
    }
    let text = digits(f, at, value)?;
    let seconds = text.parse::<u64>().ok();
    if seconds.is_none() {
        f.add(at, format!("{text} is later than the latest 64-bit time"));
    }
    seconds
}

/// A JSON integer of at least `min` (a string of digits is not one).
fn count(f: &mut Faults, at: &str, value: &Value, min: u64) -> Option<u64> {
    let n = value.as_u64().filter(|n| *n >= min);
    if n.is_none() {
        let what = match value {
            Value::Number(n) => format!("{n}, where In Process takes an integer of at least {min}"),
            other => format!("{} where In Process takes an integer", kind_of(other)),
        };
        f.add(at, what);
    }
    n
}

/// A share of a split: a number above 0 and at most 100.
fn percent(f: &mut Faults, at: &str, value: &Value) -> Option<f64> {
    let share = value.as_f64().filter(|p| *p > 0.0 && *p <= 100.0);
    if share.is_none() {
        f.add(at, format!("{value} is not a percentage above 0"));
    }
    share
}

/// One of `allowed`.
fn one_of<'a>(f: &mut Faults, at: &str, value: &'a Value, allowed: &[&str]) -> Option<&'a str> {
    let text = string(f, at, value)?;
    if !allowed.contains(&text) {
        f.add(at, format!("{text:?} is not one of {}", allowed.join(", ")));
        return None;
    }
    Some(text)
}

/// What kind of JSON value `value` is, in words.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The path of the field `name` inside the one at `at`.
fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

/// Whether `text` is an address: `0x` and 40 hex digits.
fn is_address(text: &str) -> bool {
    text.strip_prefix("0x")
        .is_some_and(|hex| hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether two addresses are the same (addresses are not case-sensitive).
fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

// The stand-in's own tests.

const KEY: &str = "art_sk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
const WALLET: &str = "0x1111111111111111111111111111111111111abc";
const USDC: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";

/// A stand-in on Base that knows `KEY`.
async fn standin() -> InProcessStandIn {
    let standin = InProcessStandIn::start(8453).await;
    standin.add_key(KEY, WALLET);
    standin
}

/// A good writing create's body, into `contract`.
fn writing(contract: Value) -> Value {
    json!({
        "title": "Night swim",
        "contract": contract,
        "token": {
            "tokenContent": "The lake at midnight",
            "createReferral": WALLET,
            "salesConfig": {
                "type": "erc20Mint",
                "pricePerToken": "1000000",
                "saleStart": "1800000000",
                "saleEnd": "18446744073709551615",
                "currency": USDC
            },
            "mintToCreatorCount": 1,
            "payoutRecipient": WALLET
        },
        "account": WALLET,
        "channel": "sms"
    })
}

/// A new collection, for a create.
fn new_collection() -> Value {
    json!({ "name": "Sweetman", "uri": "ar://collection-metadata" })
}

/// POSTs `body` to `route` with `KEY`; the status and the answer's JSON.
async fn post(standin: &InProcessStandIn, route: &str, body: &Value) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}{route}", standin.api_base()))
        .header("x-api-key", KEY)
        .json(body)
        .send()
        .await
        .expect("the stand-in answers");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("a JSON answer"))
}

/// The timeline's answer to `query`.
async fn timeline(standin: &InProcessStandIn, query: &str) -> Value {
    reqwest::get(format!("{}/timeline?{query}", standin.api_base()))
        .await
        .expect("the stand-in answers")
        .json()
        .await
        .expect("a JSON answer")
}

/// The timeline's Moments for `query`.
async fn listed(standin: &InProcessStandIn, query: &str) -> Vec<Value> {
    let page = timeline(standin, query).await;
    page["moments"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_good_writing_create_is_accepted_and_shows_on_the_timeline() {
    let standin = standin().await;
    let (status, created) = post(
        &standin,
        "/moment/create/writing",
        &writing(new_collection()),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let contract = created["contractAddress"].as_str().expect("an address");
    assert!(is_address(contract), "{contract}");
    assert_eq!(created["tokenId"], "1");
    assert_eq!(created["chainId"], 8453);
    let hash = created["hash"].as_str().expect("a hash");
    assert!(hash.len() == 66 && hash.starts_with("0x"), "{hash}");

    let into_it = writing(json!({ "address": contract.to_uppercase().replace("0X", "0x") }));
    let (status, second) = post(&standin, "/moment/create/writing", &into_it).await;
    assert_eq!((status, &second["tokenId"]), (200, &json!("2")), "{second}");

    let artist = WALLET.to_uppercase().replace("0X", "0x");
    let page = timeline(&standin, &format!("artist={artist}")).await;
    assert_eq!(page["status"], "success");
    assert_eq!(
        page["pagination"],
        json!({ "page": 1, "limit": 100, "total_pages": 1 })
    );
    let moments = page["moments"].as_array().expect("moments");
    let tokens: Vec<&Value> = moments.iter().map(|m| &m["token_id"]).collect();
    assert_eq!(tokens, [&json!("2"), &json!("1")], "newest first");
    let first = &moments[1];
    assert_eq!(first["address"], contract);
    assert_eq!(first["creator"]["address"], WALLET);
    assert_eq!(first["hidden"], json!([]));
    assert!(first["uri"]
        .as_str()
        .is_some_and(|u| u.starts_with("ar://")));
    assert!(DateTime::parse_from_rfc3339(first["created_at"].as_str().unwrap_or_default()).is_ok());

    let made = standin.moments();
    assert_eq!(made[0].kind, "writing");
    assert_eq!(made[0].title.as_deref(), Some("Night swim"));
    assert_eq!(
        made[0].token_content.as_deref(),
        Some("The lake at midnight")
    );
    assert_eq!(made[0].price, "1000000");
    assert!(made[0].new_collection && !made[1].new_collection);
    assert_eq!(made[0].id, first["id"]);
    assert!(
        standin.violations().is_empty(),
        "{:?}",
        standin.violations()
    );
}

#[tokio::test]
async fn a_count_sent_as_a_string_and_an_unknown_field_are_violations_answered_400() {
    let standin = standin().await;
    let mut counted_as_text = writing(new_collection());
    counted_as_text["token"]["mintToCreatorCount"] = json!("1");
    let (status, answer) = post(&standin, "/moment/create/writing", &counted_as_text).await;
    assert_eq!(status, 400);
    assert_eq!(answer["message"], "Invalid input");
    assert_eq!(answer["errors"][0]["field"], "token.mintToCreatorCount");

    let mut with_extra = writing(new_collection());
    with_extra["token"]["salesConfig"]["maxTokensPerAddress"] = json!(1);
    let (status, answer) = post(&standin, "/moment/create/writing", &with_extra).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["errors"][0]["field"],
        "token.salesConfig.maxTokensPerAddress"
    );

    let violations = standin.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].starts_with("/api/moment/create/writing: token.mintToCreatorCount: "));
    assert!(violations[1].contains("token.salesConfig.maxTokensPerAddress"));
    assert!(standin.moments().is_empty());
    assert_eq!(standin.create_requests().len(), 2);
}

#[tokio::test]
async fn hide_toggles_a_moment_off_the_timeline_and_back() {
    let standin = standin().await;
    let (_, created) = post(
        &standin,
        "/moment/create/writing",
        &writing(new_collection()),
    )
    .await;
    let hide = json!({ "moment": {
        "collectionAddress": created["contractAddress"],
        "tokenId": created["tokenId"],
        "chainId": 8453,
    }});
    let artist = format!("artist={WALLET}");

    assert_eq!(
        post(&standin, "/moment/hide", &hide).await,
        (200, json!({ "success": true }))
    );
    assert!(listed(&standin, &artist).await.is_empty());
    let with_hidden = listed(&standin, &format!("{artist}&hidden=true")).await;
    assert_eq!(with_hidden.len(), 1);
    assert_eq!(with_hidden[0]["hidden"].as_array().map(Vec::len), Some(1));
    assert!(standin.moments()[0].hidden);

    assert_eq!(post(&standin, "/moment/hide", &hide).await.0, 200);
    assert_eq!(listed(&standin, &artist).await.len(), 1);
    assert!(!standin.moments()[0].hidden);

    let mut unknown = hide.clone();
    unknown["moment"]["tokenId"] = json!("9");
    assert_eq!(post(&standin, "/moment/hide", &unknown).await.0, 404);
    assert_eq!(standin.hides().len(), 3);
    assert!(
        standin.violations().is_empty(),
        "{:?}",
        standin.violations()
    );
}

#[tokio::test]
async fn a_revoked_key_answers_401() {
    let standin = standin().await;
    standin.revoke_key(KEY);
    let refused = (401, json!({ "message": "Invalid authentication" }));
    assert_eq!(
        post(
            &standin,
            "/moment/create/writing",
            &writing(new_collection())
        )
        .await,
        refused
    );
    let upload = json!({ "url": "https://moments.example/media/a.jpg" });
    assert_eq!(post(&standin, "/upload", &upload).await, refused);
    assert!(standin.moments().is_empty() && standin.uploads().is_empty());
    assert!(
        standin.violations().is_empty(),
        "{:?}",
        standin.violations()
    );
}

#[tokio::test]
async fn a_create_that_stalls_is_made_though_its_answer_comes_too_late() {
    let standin = standin().await;
    standin.create_then_stall(Duration::from_secs(1));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("a client");
    let sent = impatient
        .post(format!("{}/moment/create/writing", standin.api_base()))
        .header("x-api-key", KEY)
        .json(&writing(new_collection()))
        .send()
        .await;
    assert!(
        sent.is_err_and(|e| e.is_timeout()),
        "the answer came in time"
    );
    assert_eq!(listed(&standin, &format!("artist={WALLET}")).await.len(), 1);
    assert_eq!(standin.moments().len(), 1);
}

#[tokio::test]
async fn uploads_answer_fresh_uris_until_the_artist_must_pay() {
    let standin = standin().await;
    let upload = json!({ "url": "https://moments.example/media/a.jpg" });
    let (_, first) = post(&standin, "/upload", &upload).await;
    let (_, second) = post(&standin, "/upload", &upload).await;
    assert_ne!(first["uri"], second["uri"]);
    assert!(first["uri"]
        .as_str()
        .is_some_and(|u| u.starts_with("ar://")));

    standin.uploads_need_payment(KEY);
    let (status, refused) = post(&standin, "/upload", &upload).await;
    assert_eq!(status, 402);
    for name in ["message", "required", "available", "smart_wallet"] {
        assert!(refused[name].is_string(), "{name}: {refused}");
    }
    assert_eq!(standin.uploads().len(), 2);
    assert_eq!(standin.uploads()[0].uri, first["uri"]);
    assert_eq!(standin.upload_requests().len(), 3);
    assert!(
        standin.violations().is_empty(),
        "{:?}",
        standin.violations()
    );
}

#[tokio::test]
async fn refusals_failures_and_strays_are_answered_as_set_up() {
    let standin = standin().await;
    let collection = "0x2222222222222222222222222222222222222222";
    standin.add_collection(collection, WALLET);
    let media = json!({
        "contract": { "address": collection },
        "token": {
            "tokenMetadataURI": "ar://metadata",
            "createReferral": WALLET,
            "salesConfig": {
                "type": "fixedPrice",
                "pricePerToken": "0",
                "saleStart": 1800000000,
                "saleEnd": "18446744073709551615"
            },
            "mintToCreatorCount": 1,
            "maxSupply": 10
        },
        "account": WALLET
    });
    standin.refuse_next_creates(1, "account", "No smart wallet");
    let (status, refused) = post(&standin, "/moment/create", &media).await;
    assert_eq!(
        (status, &refused["errors"][0]["field"]),
        (400, &json!("account"))
    );
    assert!(standin.moments().is_empty());

    standin.create_then_fail();
    assert_eq!(post(&standin, "/moment/create", &media).await.0, 500);
    let (status, created) = post(&standin, "/moment/create", &media).await;
    assert_eq!(
        (status, &created["tokenId"]),
        (200, &json!("2")),
        "{created}"
    );
    assert_eq!(standin.moments()[0].metadata_uri, "ar://metadata");
    assert!(
        standin.violations().is_empty(),
        "{:?}",
        standin.violations()
    );

    let stray = reqwest::Client::new()
        .post(format!("{}/moment/create", standin.api_base()))
        .header("x-api-key", KEY)
        .body(media.to_string())
        .send()
        .await
        .expect("the stand-in answers");
    assert_eq!(stray.status().as_u16(), 400, "no content-type");
    let elsewhere = reqwest::get(format!("{}/moment/delete", standin.api_base()))
        .await
        .expect("the stand-in answers");
    assert_eq!(elsewhere.status().as_u16(), 404);
    let violations = standin.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("content-type"));
    assert!(violations[1].starts_with("GET /api/moment/delete: "));
}
