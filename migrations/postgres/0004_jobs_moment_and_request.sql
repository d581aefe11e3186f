-- As migrations/0004_jobs_moment_and_request.sql: a job's Moment in a column of its own, and
-- the id of the request that queued it.
ALTER TABLE jobs ADD COLUMN moment_id BIGINT;
ALTER TABLE jobs ADD COLUMN request_id TEXT COLLATE "C";
UPDATE jobs SET moment_id = CAST(CAST(payload AS jsonb) ->> 'moment_id' AS BIGINT)
 WHERE jsonb_typeof(CAST(payload AS jsonb) -> 'moment_id') = 'number'
   -- a whole number BIGINT holds, as SQLite's step takes only an integer
   AND CAST(payload AS jsonb) ->> 'moment_id' ~ '^-?[0-9]{1,18}$';
CREATE INDEX IF NOT EXISTS jobs_moment ON jobs (moment_id, kind) WHERE moment_id IS NOT NULL;
