-- Sync with the Redis hub: every local write leaves an outbox row in its own transaction; the pusher
-- deletes rows only after Redis acknowledged them. sync_state holds the change-feed cursor and counters.

CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('memory', 'session', 'learning', 'toolcache')),
    key         TEXT NOT NULL,
    created_at  REAL NOT NULL
);

CREATE TABLE sync_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- The version of a session this node last saw in Redis: a push whose base differs from Redis's current
-- version was edited on both sides of a partition.
ALTER TABLE sessions ADD COLUMN synced_version INTEGER;

CREATE TABLE session_conflicts (
    session_id    TEXT PRIMARY KEY,
    winner        TEXT NOT NULL,      -- JSON: the state both sides now have
    loser         TEXT NOT NULL,      -- JSON: the state that lost last-writer-wins, kept until resolved
    detected_at   REAL NOT NULL
) WITHOUT ROWID;
