-- As migrations/0004_jobs_moment_and_request.sql: a job's Moment in a column of its own, and
-- the id of the request that queued it.
ALTER TABLE jobs ADD COLUMN moment_id BIGINT;
ALTER TABLE jobs ADD COLUMN request_id TEXT COLLATE "C";
UPDATE jobs SET moment_id = CAST(CAST(payload AS jsonb) ->> 'moment_id' AS BIGINT)
 WHERE jsonb_typeof(CAST(payload AS jsonb) -> 'moment_id') = 'number';
CREATE INDEX IF NOT EXISTS jobs_moment ON jobs (moment_id, kind) WHERE moment_id IS NOT NULL;
