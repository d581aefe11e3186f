-- momentline's whole schema, at version 3 (src/store/migrations.rs): a new database is made
-- from this file; an older one is brought up to it by the steps in migrations/.
-- Times are UTC text in one fixed format (2026-11-22T10:00:00.000Z), so they sort as text.
-- Status words are mirrored by Rust enums (src/domain/mod.rs, src/domain/number_state.rs).

CREATE TABLE IF NOT EXISTS artists (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    address     TEXT CHECK (address IS NULL OR (length(address) = 42 AND address LIKE '0x%')),
    created_at  TEXT NOT NULL,
    -- its In Process API key, sealed with MOMENTLINE_SECRET_KEY (never kept in clear)
    inprocess_key BLOB,
    -- the In Process collection its Moments go to
    collection  TEXT CHECK (collection IS NULL OR (length(collection) = 42 AND collection LIKE '0x%')),
    -- when In Process last refused its key (401): its Moments wait until a new one is set
    inprocess_refused_at TEXT
);

-- Only a SHA-256 of each key is kept; the prefix names a key for `keys revoke`.
CREATE TABLE IF NOT EXISTS api_keys (
    id          INTEGER PRIMARY KEY,
    artist_id   INTEGER NOT NULL REFERENCES artists(id),
    prefix      TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- One row per number that has ever been connected or has texted us.
CREATE TABLE IF NOT EXISTS phone_numbers (
    e164          TEXT PRIMARY KEY,
    state         TEXT NOT NULL CHECK (state IN ('unknown', 'pending', 'verified', 'opted_out')),
    -- verified (or verified before opting out): the artist it is bound to
    owner_id      INTEGER REFERENCES artists(id),
    -- a connect request waiting for "yes": pending, or another artist's takeover of a
    -- verified number
    requester_id  INTEGER REFERENCES artists(id),
    requested_at  TEXT,
    -- opted_out: the state it had before
    state_before_opt_out TEXT CHECK (state_before_opt_out IN ('unknown', 'pending', 'verified')),
    updated_at    TEXT NOT NULL,
    CHECK ((requester_id IS NULL) = (requested_at IS NULL)),
    CHECK ((state = 'opted_out') = (state_before_opt_out IS NOT NULL))
);
-- An artist's numbers, owned or asked for.
CREATE INDEX IF NOT EXISTS phone_numbers_owner ON phone_numbers (owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS phone_numbers_requester ON phone_numbers (requester_id)
    WHERE requester_id IS NOT NULL;

-- Every change of a number's state, with what caused it.
CREATE TABLE IF NOT EXISTS number_state_changes (
    id          INTEGER PRIMARY KEY,
    e164        TEXT NOT NULL REFERENCES phone_numbers(e164),
    from_state  TEXT NOT NULL CHECK (from_state IN ('unknown', 'pending', 'verified', 'opted_out')),
    to_state    TEXT NOT NULL CHECK (to_state IN ('unknown', 'pending', 'verified', 'opted_out')),
    from_owner_id INTEGER REFERENCES artists(id),
    to_owner_id   INTEGER REFERENCES artists(id),
    cause       TEXT NOT NULL CHECK (cause IN ('inbound', 'connect', 'disconnect', 'provider',
        'code')),
    -- the message that caused it (inbound text, or the outbound text a provider refused)
    message_id  INTEGER REFERENCES messages(id),
    -- the artist whose API request caused it (for 'code', who entered the right code)
    artist_id   INTEGER REFERENCES artists(id),
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS number_state_changes_e164 ON number_state_changes (e164, id);

-- An operator's text to every verified number (`momentline broadcast`), queued by a
-- broadcast job a batch of numbers at a time.
CREATE TABLE IF NOT EXISTS broadcasts (
    id          INTEGER PRIMARY KEY,
    body        TEXT NOT NULL CHECK (length(body) >= 1),
    -- numbers it has been queued for so far
    queued      INTEGER NOT NULL DEFAULT 0,
    -- the fan-out's place: the last number queued
    cursor      TEXT,
    -- set once every verified number has its text
    queued_at   TEXT,
    created_at  TEXT NOT NULL
);

-- A broadcast sent through a provider's own bulk path (TextFlow's bulk-sms) goes a batch of
-- numbers a call; each call is one job at the provider, sent at its own pace.
CREATE TABLE IF NOT EXISTS broadcast_batches (
    id           INTEGER PRIMARY KEY,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id),
    -- queued: its call waits; running: the provider took it and sends it at its own pace;
    -- finished: the provider says none of it waits any more; failed: refused for good
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'finished', 'failed')),
    -- texts it was queued with
    texts        INTEGER NOT NULL CHECK (texts >= 1),
    -- numbers the provider was asked to send it to (the others had opted out by then)
    sent_to      INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    -- when the provider took it, and when it said the job was done
    sent_at      TEXT,
    finished_at  TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS broadcast_batches_broadcast ON broadcast_batches (broadcast_id, state);
CREATE INDEX IF NOT EXISTS broadcast_batches_running ON broadcast_batches (id) WHERE state = 'running';

-- Inbound and outbound texts. An outbound text in 'unconfirmed' has a send_text job, or is
-- one of a broadcast batch's texts (broadcast_batch_texts), sent by its batch's send_batch job.
CREATE TABLE IF NOT EXISTS messages (
    id                  INTEGER PRIMARY KEY,
    direction           TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    -- whose conversation this is (none for numbers no artist has asked for)
    artist_id           INTEGER REFERENCES artists(id),
    -- the texter's number: `from` of an inbound message, `to` of an outbound one
    phone               TEXT NOT NULL,
    -- our number; NULL on an outbound text means the provider's configured sender
    service_number      TEXT,
    body                TEXT NOT NULL,
    subject             TEXT,
    media               TEXT NOT NULL DEFAULT '[]',
    provider            TEXT NOT NULL,
    provider_message_id TEXT,
    state               TEXT NOT NULL
        CHECK (state IN ('received', 'unconfirmed', 'sent', 'delivered', 'error')),
    -- outbound: which automatic text this is
    purpose             TEXT CHECK (purpose IN ('prompt', 'verified', 'opted_out', 'opted_in',
        'welcome', 'expired', 'reminder', 'help', 'video_refused', 'moment_posted',
        'moment_failed', 'price_too_high', 'code', 'broadcast', 'moment_deleted',
        'nothing_to_undo', 'key_refused', 'payment_needed', 'host_refused', 'moment_hidden',
        'hide_unconfirmed', 'media_lost', 'photo_added')),
    -- outbound: the broadcast this text is one of
    broadcast_id        INTEGER REFERENCES broadcasts(id),
    -- outbound: GSM-7 or UCS-2, and how many SMS segments the text takes
    encoding            TEXT CHECK (encoding IN ('GSM-7', 'UCS-2')),
    segments            INTEGER CHECK (segments >= 1),
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CHECK ((direction = 'inbound') = (state = 'received'))
);
-- A provider's message id has one effect: the dedupe key of inbound webhooks, and how
-- status reports find the outbound text they are about.
CREATE UNIQUE INDEX IF NOT EXISTS messages_provider_id
    ON messages (direction, provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_artist ON messages (artist_id, id);
CREATE INDEX IF NOT EXISTS messages_phone ON messages (phone, direction, created_at);
-- An artist's recent prompts and verification codes, for the connect rate limit.
CREATE INDEX IF NOT EXISTS messages_prompts ON messages (artist_id, created_at)
    WHERE purpose IN ('prompt', 'code');
-- A broadcast's texts by state, for `momentline broadcast status`.
CREATE INDEX IF NOT EXISTS messages_broadcast ON messages (broadcast_id, state)
    WHERE broadcast_id IS NOT NULL;

-- The texts of a batch: each still its own outbound message, in its artist's conversation.
CREATE TABLE IF NOT EXISTS broadcast_batch_texts (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id),
    batch_id   INTEGER NOT NULL REFERENCES broadcast_batches(id)
);
CREATE INDEX IF NOT EXISTS broadcast_batch_texts_batch ON broadcast_batch_texts (batch_id, message_id);

-- Parts of a message its provider delivers in several (Vonage's concat), kept until every
-- part is in; then they are joined in order into one inbound message (message_id).
CREATE TABLE IF NOT EXISTS message_parts (
    id                  INTEGER PRIMARY KEY,
    provider            TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    phone               TEXT NOT NULL,
    reference           TEXT NOT NULL,
    part                INTEGER NOT NULL CHECK (part >= 1),
    total               INTEGER NOT NULL CHECK (total >= part),
    body                TEXT NOT NULL,
    message_id          INTEGER REFERENCES messages(id),
    -- set when the rest never came and a newer message took the reference over
    abandoned_at        TEXT,
    created_at          TEXT NOT NULL,
    UNIQUE (provider, provider_message_id)
);
-- A sender reuses references over time: a part number is unique only among open parts.
CREATE UNIQUE INDEX IF NOT EXISTS message_parts_open
    ON message_parts (provider, phone, reference, part)
    WHERE message_id IS NULL AND abandoned_at IS NULL;

-- Status reports that came before the send they are about was recorded (a provider may
-- report faster than the worker writes down its answer); applied when it is.
CREATE TABLE IF NOT EXISTS early_status_reports (
    id                  INTEGER PRIMARY KEY,
    provider            TEXT NOT NULL,
    provider_message_id TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('sent', 'delivered', 'error')),
    error               TEXT,
    recipient_opted_out INTEGER NOT NULL DEFAULT 0 CHECK (recipient_opted_out IN (0, 1)),
    created_at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS early_status_reports_id
    ON early_status_reports (provider, provider_message_id);

CREATE TABLE IF NOT EXISTS moments (
    id                 INTEGER PRIMARY KEY,
    artist_id          INTEGER NOT NULL REFERENCES artists(id),
    -- the inbound text that asked for it, and its place among that text's Moments
    message_id         INTEGER NOT NULL REFERENCES messages(id),
    position           INTEGER NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('media', 'link', 'text')),
    title              TEXT NOT NULL,
    description        TEXT NOT NULL,
    media_url          TEXT,
    media_content_type TEXT,
    -- media Moments: the provider's copy is fetched once (a keep_media job) and kept by
    -- content hash
    media_state        TEXT CHECK (media_state IN ('fetching', 'kept', 'failed')),
    media_file         TEXT,
    media_error        TEXT,
    link_url           TEXT,
    price_micro_usdc   INTEGER NOT NULL CHECK (price_micro_usdc >= 0),
    state              TEXT NOT NULL CHECK (state IN ('pending', 'created', 'failed')),
    url                TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    -- UNDO: hidden from the API and its page
    deleted_at         TEXT,
    -- a photo alone or a caption alone: until when the other half, sent as a message of its
    -- own, joins this Moment (its dispatch waits until then)
    merge_until        TEXT,
    -- failed: the reply it is told with (a reply kind; none: the plain "could not be posted")
    failure            TEXT,
    UNIQUE (message_id, position)
);
CREATE INDEX IF NOT EXISTS moments_artist ON moments (artist_id, id);

-- Background work: sending a text, keeping a Moment's media, dispatching a Moment, delivering
-- an event to the host, fanning out a broadcast. Enqueued in the same write as the change that
-- causes it; run by the jobs runner (src/jobs/).
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('send_text', 'keep_media', 'dispatch_moment',
        'deliver_event', 'broadcast', 'hide_moment', 'send_batch')),
    -- what the job is about, as JSON ({"message_id": 7}, {"moment_id": 3, ...})
    payload     TEXT NOT NULL,
    -- jobs sharing a queue run one at a time, oldest first (texts to one number)
    queue       TEXT,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'failed')),
    -- attempts begun, the one running included
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   TEXT NOT NULL,
    -- running: the process that claimed it, and until when the claim holds
    leased_by   TEXT,
    lease_until TEXT,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- the Moment it is about (its payload's moment_id), for finding a Moment's jobs
    moment_id   INTEGER,
    -- the request that queued it (or the job's request that queued that), for the log
    request_id  TEXT,
    CHECK ((state = 'running') = (leased_by IS NOT NULL AND lease_until IS NOT NULL))
);
-- Due jobs of a kind, oldest first: a backlog of one kind never slows claiming another.
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (kind, run_after, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (queue, id) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS jobs_moment ON jobs (moment_id, kind) WHERE moment_id IS NOT NULL;

-- A Moment posted on In Process (MOMENTLINE_DISPATCH=inprocess): what was uploaded for it
-- and what it became there.
CREATE TABLE IF NOT EXISTS inprocess_moments (
    moment_id    INTEGER PRIMARY KEY REFERENCES moments(id),
    -- the ar:// URIs of its media and of its metadata, uploaded once and kept for retries
    media_uri    TEXT,
    metadata_uri TEXT,
    -- when a create that may have reached In Process was first and last sent, how many
    -- were sent, and when the last one was looked for on In Process and not found: a create
    -- is sent again only once it was looked for twice and not found
    sent_at      TEXT,
    last_sent_at TEXT,
    sends        INTEGER NOT NULL DEFAULT 0,
    looked_at    TEXT,
    -- what it became: its collection, its token, its chain
    contract     TEXT CHECK (contract IS NULL OR (length(contract) = 42 AND contract LIKE '0x%')),
    token_id     TEXT,
    chain_id     INTEGER,
    -- UNDO: when the hide was sent, and whether In Process answered it
    hide_sent_at TEXT,
    hidden_at    TEXT,
    updated_at   TEXT NOT NULL,
    CHECK ((contract IS NULL) = (token_id IS NULL))
);

-- A verification code an artist asked to text a number ("method": "code"). Only a salted
-- SHA-256 of the code is kept, and none at all while its text waits to be sent or when the
-- provider makes and checks the code itself (TextFlow's send-code). A new request replaces
-- the artist's code for that number.
CREATE TABLE IF NOT EXISTS verification_codes (
    e164        TEXT NOT NULL REFERENCES phone_numbers(e164),
    artist_id   INTEGER NOT NULL REFERENCES artists(id),
    -- the outbound text (purpose 'code') that carries it
    message_id  INTEGER NOT NULL REFERENCES messages(id),
    salt        BLOB,
    code_hash   BLOB,
    -- set when the code is made and sent; none while its text waits
    expires_at  TEXT,
    -- wrong codes entered; the code dies at 5
    tries       INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (e164, artist_id),
    CHECK ((salt IS NULL) = (code_hash IS NULL))
);
CREATE INDEX IF NOT EXISTS verification_codes_message ON verification_codes (message_id);
