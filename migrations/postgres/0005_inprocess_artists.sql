-- As migrations/0005_inprocess_artists.sql: an artist's sealed In Process key and collection.
ALTER TABLE artists ADD COLUMN inprocess_key BYTEA;
ALTER TABLE artists ADD COLUMN collection TEXT COLLATE "C"
    CHECK (collection IS NULL OR (length(collection) = 42 AND collection LIKE '0x%'));
