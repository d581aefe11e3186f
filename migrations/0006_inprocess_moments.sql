-- Moments posted on In Process: what was uploaded for each and what it became there; an
-- artist whose In Process key was refused (its Moments wait for a new one); the reply a
-- failed Moment is told with; and a job kind that hides a Moment there (UNDO).
CREATE TABLE inprocess_moments (
    moment_id    INTEGER PRIMARY KEY REFERENCES moments(id),
    -- the ar:// URIs of its media and of its metadata, uploaded once and kept for retries
    media_uri    TEXT,
    metadata_uri TEXT,
    -- when a create that may have reached In Process was first sent: a retry looks first
    sent_at      TEXT,
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
