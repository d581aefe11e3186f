-- Version 2: one jobs table for every kind of background work. Texts still queued and media
-- still to fetch become jobs; the columns their twin workers used are dropped. Outbound texts
-- may also say a Moment could not be posted ('moment_failed') or its price was too high
-- ('price_too_high'). Indexes for the queries that
-- scanned an artist's rows.

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('send_text', 'keep_media', 'dispatch_moment')),
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
CREATE INDEX jobs_due ON jobs (kind, run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_queue ON jobs (queue, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';

INSERT INTO jobs (kind, payload, queue, state, attempts, run_after, created_at, updated_at)
SELECT 'send_text', json_object('message_id', id), phone, 'queued', attempts,
       coalesce(next_attempt_at, updated_at), created_at, updated_at
FROM messages WHERE direction = 'outbound' AND state = 'unconfirmed' ORDER BY id;

INSERT INTO jobs (kind, payload, queue, state, attempts, run_after, created_at, updated_at)
SELECT 'keep_media', json_object('moment_id', id), NULL, 'queued', media_attempts,
       coalesce(media_next_attempt_at, updated_at), created_at, updated_at
FROM moments WHERE media_state = 'fetching' ORDER BY id;

-- Version 1 dispatched Moments as it recorded them; any left pending is dispatched now.
INSERT INTO jobs (kind, payload, queue, state, attempts, run_after, created_at, updated_at)
SELECT 'dispatch_moment', json_object('moment_id', id, 'reply', json('false')), NULL, 'queued',
       0, updated_at, created_at, updated_at
FROM moments WHERE state = 'pending' ORDER BY id;

-- SQLite cannot change a CHECK in place: messages is rebuilt without next_attempt_at.
CREATE TABLE messages_v2 (
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
        'moment_failed', 'price_too_high')),
    -- outbound: GSM-7 or UCS-2, and how many SMS segments the text takes
    encoding            TEXT CHECK (encoding IN ('GSM-7', 'UCS-2')),
    segments            INTEGER CHECK (segments >= 1),
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CHECK ((direction = 'inbound') = (state = 'received'))
);
INSERT INTO messages_v2 (id, direction, artist_id, phone, service_number, body, subject, media,
    provider, provider_message_id, state, purpose, encoding, segments, attempts, last_error,
    created_at, updated_at)
SELECT id, direction, artist_id, phone, service_number, body, subject, media,
    provider, provider_message_id, state, purpose, encoding, segments, attempts, last_error,
    created_at, updated_at
FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
CREATE UNIQUE INDEX messages_provider_id
    ON messages (direction, provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_artist ON messages (artist_id, id);
CREATE INDEX messages_phone ON messages (phone, direction, created_at);
CREATE INDEX messages_prompts ON messages (artist_id, created_at) WHERE purpose = 'prompt';

-- Numbers by artist, for GET /api/phones and disconnecting all of them.
CREATE INDEX phone_numbers_owner ON phone_numbers (owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX phone_numbers_requester ON phone_numbers (requester_id)
    WHERE requester_id IS NOT NULL;

DROP INDEX moments_media_due;
ALTER TABLE moments DROP COLUMN media_next_attempt_at;
ALTER TABLE moments DROP COLUMN media_attempts;
