-- Moments posted on In Process: what was uploaded for each and what it became there; an
-- artist whose In Process key was refused (its Moments wait for a new one); the reply a
-- failed Moment is told with; a job kind that hides a Moment there (UNDO); and the replies
-- that tell an artist of each.
CREATE TABLE inprocess_moments (
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
ALTER TABLE artists ADD COLUMN inprocess_refused_at TEXT;
ALTER TABLE moments ADD COLUMN failure TEXT;

-- SQLite cannot change a CHECK in place: jobs is rebuilt with the new kind.
CREATE TABLE jobs_v6 (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('send_text', 'keep_media', 'dispatch_moment',
        'deliver_event', 'broadcast', 'hide_moment')),
    payload     TEXT NOT NULL,
    queue       TEXT,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   TEXT NOT NULL,
    leased_by   TEXT,
    lease_until TEXT,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    moment_id   INTEGER,
    request_id  TEXT,
    CHECK ((state = 'running') = (leased_by IS NOT NULL AND lease_until IS NOT NULL))
);
INSERT INTO jobs_v6 (id, kind, payload, queue, state, attempts, run_after, leased_by,
    lease_until, last_error, created_at, updated_at, moment_id, request_id)
SELECT id, kind, payload, queue, state, attempts, run_after, leased_by, lease_until,
    last_error, created_at, updated_at, moment_id, request_id
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v6 RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (kind, run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_queue ON jobs (queue, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_moment ON jobs (moment_id, kind) WHERE moment_id IS NOT NULL;

-- And messages, for the replies of In Process's refusals and of a hide.
CREATE TABLE messages_v6 (
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
INSERT INTO messages_v6 (id, direction, artist_id, phone, service_number, body, subject, media,
    provider, provider_message_id, state, purpose, broadcast_id, encoding, segments, attempts,
    last_error, created_at, updated_at)
SELECT id, direction, artist_id, phone, service_number, body, subject, media,
    provider, provider_message_id, state, purpose, broadcast_id, encoding, segments, attempts,
    last_error, created_at, updated_at
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v6 RENAME TO messages;
CREATE UNIQUE INDEX messages_provider_id
    ON messages (direction, provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_artist ON messages (artist_id, id);
CREATE INDEX messages_phone ON messages (phone, direction, created_at);
CREATE INDEX messages_prompts ON messages (artist_id, created_at)
    WHERE purpose IN ('prompt', 'code');
CREATE INDEX messages_broadcast ON messages (broadcast_id, state) WHERE broadcast_id IS NOT NULL;
