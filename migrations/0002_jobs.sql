-- Version 2: one jobs table for every kind of background work. Texts still queued and media
-- still to fetch become jobs; the columns their twin workers used are dropped.

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
CREATE INDEX jobs_due ON jobs (run_after, id) WHERE state = 'queued';
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

DROP INDEX messages_outbox;
ALTER TABLE messages DROP COLUMN next_attempt_at;
DROP INDEX moments_media_due;
ALTER TABLE moments DROP COLUMN media_next_attempt_at;
ALTER TABLE moments DROP COLUMN media_attempts;
