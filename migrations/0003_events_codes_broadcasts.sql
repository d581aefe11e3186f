-- Version 3: events to the host, verification codes, broadcasts, caption merging and UNDO.
-- Outbound texts gain purposes (a verification code, a broadcast, UNDO's answers) and the
-- broadcast they belong to; jobs gain kinds (an event to deliver, a broadcast to fan out); a
-- Moment can be deleted.

CREATE TABLE broadcasts (
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

-- SQLite cannot change a CHECK in place: jobs and messages are rebuilt.
CREATE TABLE jobs_v3 (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('send_text', 'keep_media', 'dispatch_moment',
        'deliver_event', 'broadcast')),
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
    CHECK ((state = 'running') = (leased_by IS NOT NULL AND lease_until IS NOT NULL))
);
INSERT INTO jobs_v3 (id, kind, payload, queue, state, attempts, run_after, leased_by,
    lease_until, last_error, created_at, updated_at)
SELECT id, kind, payload, queue, state, attempts, run_after, leased_by, lease_until,
    last_error, created_at, updated_at
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v3 RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (kind, run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_queue ON jobs (queue, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';

CREATE TABLE messages_v3 (
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
        'nothing_to_undo')),
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
INSERT INTO messages_v3 (id, direction, artist_id, phone, service_number, body, subject, media,
    provider, provider_message_id, state, purpose, encoding, segments, attempts, last_error,
    created_at, updated_at)
SELECT id, direction, artist_id, phone, service_number, body, subject, media,
    provider, provider_message_id, state, purpose, encoding, segments, attempts, last_error,
    created_at, updated_at
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v3 RENAME TO messages;
CREATE UNIQUE INDEX messages_provider_id
    ON messages (direction, provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_artist ON messages (artist_id, id);
CREATE INDEX messages_phone ON messages (phone, direction, created_at);
CREATE INDEX messages_prompts ON messages (artist_id, created_at)
    WHERE purpose IN ('prompt', 'code');
CREATE INDEX messages_broadcast ON messages (broadcast_id, state) WHERE broadcast_id IS NOT NULL;

-- UNDO: a deleted Moment is hidden from the API and its page.
ALTER TABLE moments ADD COLUMN deleted_at TEXT;

-- Verification codes: a number verified by a code its owner entered records cause 'code'.
CREATE TABLE number_state_changes_v3 (
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
INSERT INTO number_state_changes_v3 (id, e164, from_state, to_state, from_owner_id,
    to_owner_id, cause, message_id, artist_id, created_at)
SELECT id, e164, from_state, to_state, from_owner_id, to_owner_id, cause, message_id,
    artist_id, created_at
FROM number_state_changes;
DROP TABLE number_state_changes;
ALTER TABLE number_state_changes_v3 RENAME TO number_state_changes;
CREATE INDEX number_state_changes_e164 ON number_state_changes (e164, id);

CREATE TABLE verification_codes (
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
CREATE INDEX verification_codes_message ON verification_codes (message_id);
-- Caption merging: a photo alone or a caption alone waits this long for its other half.
ALTER TABLE moments ADD COLUMN merge_until TEXT;
