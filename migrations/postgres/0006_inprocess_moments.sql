-- As migrations/0006_inprocess_moments.sql: Moments posted on In Process, an artist whose key
-- was refused, the reply a failed Moment is told with, and the hide_moment job kind.
CREATE TABLE IF NOT EXISTS inprocess_moments (
    moment_id    BIGINT PRIMARY KEY REFERENCES moments(id),
    media_uri    TEXT COLLATE "C",
    metadata_uri TEXT COLLATE "C",
    sent_at      TEXT COLLATE "C",
    last_sent_at TEXT COLLATE "C",
    sends        BIGINT NOT NULL DEFAULT 0,
    looked_at    TEXT COLLATE "C",
    contract     TEXT COLLATE "C" CHECK (contract IS NULL OR (length(contract) = 42 AND contract LIKE '0x%')),
    token_id     TEXT COLLATE "C",
    chain_id     BIGINT,
    hide_sent_at TEXT COLLATE "C",
    hidden_at    TEXT COLLATE "C",
    updated_at   TEXT COLLATE "C" NOT NULL,
    CHECK ((contract IS NULL) = (token_id IS NULL))
);
ALTER TABLE artists ADD COLUMN inprocess_refused_at TEXT COLLATE "C";
ALTER TABLE moments ADD COLUMN failure TEXT COLLATE "C";
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('send_text', 'keep_media',
    'dispatch_moment', 'deliver_event', 'broadcast', 'hide_moment'));
ALTER TABLE messages DROP CONSTRAINT messages_purpose_check;
ALTER TABLE messages ADD CONSTRAINT messages_purpose_check CHECK (purpose IN ('prompt',
    'verified', 'opted_out', 'opted_in', 'welcome', 'expired', 'reminder', 'help',
    'video_refused', 'moment_posted', 'moment_failed', 'price_too_high', 'code', 'broadcast',
    'moment_deleted', 'nothing_to_undo', 'key_refused', 'payment_needed', 'host_refused',
    'moment_hidden', 'hide_unconfirmed', 'media_lost', 'photo_added'));
