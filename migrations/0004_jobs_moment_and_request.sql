-- A job is found by the Moment it is about through a column of its own (its payload's
-- moment_id), not by reading its JSON; and it keeps the id of the request that queued it, so
-- the log follows a text from its webhook to its reply.
ALTER TABLE jobs ADD COLUMN moment_id INTEGER;
ALTER TABLE jobs ADD COLUMN request_id TEXT;
UPDATE jobs SET moment_id = json_extract(payload, '$.moment_id')
 WHERE json_valid(payload) AND json_type(payload, '$.moment_id') = 'integer';
CREATE INDEX IF NOT EXISTS jobs_moment ON jobs (moment_id, kind) WHERE moment_id IS NOT NULL;
