-- An artist's In Process API key, sealed with MOMENTLINE_SECRET_KEY (never kept in clear), and
-- the collection its Moments go to there (set by the operator, or by its first Moment).
ALTER TABLE artists ADD COLUMN inprocess_key BLOB;
ALTER TABLE artists ADD COLUMN collection TEXT
    CHECK (collection IS NULL OR (length(collection) = 42 AND collection LIKE '0x%'));
