-- The seed's session context, learning queue and tool-output cache, kept locally so a node works with no
-- Redis at all (the embedded default) and while Redis is away.

CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY,
    context       TEXT NOT NULL DEFAULT '{}',      -- JSON object
    files         TEXT NOT NULL DEFAULT '[]',      -- JSON array of paths
    current_task  TEXT NOT NULL DEFAULT '',
    updated_at    REAL NOT NULL,
    version       INTEGER NOT NULL,
    closed_at     REAL
) WITHOUT ROWID;

CREATE TABLE learning_queue (
    entry_id    INTEGER PRIMARY KEY,
    user_query  TEXT    NOT NULL,
    tool_used   TEXT    NOT NULL,
    tool_input  TEXT    NOT NULL DEFAULT '',
    result      TEXT    NOT NULL DEFAULT '',
    success     INTEGER NOT NULL CHECK (success IN (0, 1)),
    session_id  TEXT,
    timestamp   REAL    NOT NULL
);

CREATE TABLE tool_cache (
    tool        TEXT NOT NULL,
    input_hash  TEXT NOT NULL,
    output      TEXT NOT NULL,
    expires_at  REAL NOT NULL,
    PRIMARY KEY (tool, input_hash)
) WITHOUT ROWID;
