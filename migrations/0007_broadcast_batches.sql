-- A broadcast sent through a provider's own bulk path (TextFlow's bulk-sms): its batches,
-- each one call to the provider and one job there, and which texts each carries; and the
-- send_batch job kind that makes the call.
CREATE TABLE broadcast_batches (
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
CREATE INDEX broadcast_batches_broadcast ON broadcast_batches (broadcast_id, state);
CREATE INDEX broadcast_batches_running ON broadcast_batches (id) WHERE state = 'running';

-- The texts of a batch: each still its own outbound message, in its artist's conversation.
CREATE TABLE broadcast_batch_texts (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id),
    batch_id   INTEGER NOT NULL REFERENCES broadcast_batches(id)
);
CREATE INDEX broadcast_batch_texts_batch ON broadcast_batch_texts (batch_id, message_id);

-- SQLite cannot change a CHECK in place: jobs is rebuilt with the new kind.
CREATE TABLE jobs_v7 (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('send_text', 'keep_media', 'dispatch_moment',
        'deliver_event', 'broadcast', 'hide_moment', 'send_batch')),
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
INSERT INTO jobs_v7 (id, kind, payload, queue, state, attempts, run_after, leased_by,
    lease_until, last_error, created_at, updated_at, moment_id, request_id)
SELECT id, kind, payload, queue, state, attempts, run_after, leased_by, lease_until,
    last_error, created_at, updated_at, moment_id, request_id
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v7 RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (kind, run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_queue ON jobs (queue, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_moment ON jobs (moment_id, kind) WHERE moment_id IS NOT NULL;
