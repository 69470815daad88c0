-- The learning loop's local state: the trainer's example pool, its rounds, and the adapters it published
-- when there is no hub (with a hub, rounds and adapters live in Redis so every node sees them).

CREATE TABLE training_examples (
    example_key  TEXT PRIMARY KEY,      -- sha256 of (query, tool, arguments): one row per distinct example
    body         TEXT NOT NULL,         -- JSON: query, tool, arguments, result, timestamp
    added_at     REAL NOT NULL
) WITHOUT ROWID;

CREATE INDEX training_examples_by_age ON training_examples(added_at);

CREATE TABLE training_rounds (
    round_id     INTEGER PRIMARY KEY,
    finished_at  REAL NOT NULL,
    report       TEXT NOT NULL          -- JSON: examples, steps, metrics, verdict, adapter version
);

CREATE TABLE adapters (
    version      INTEGER PRIMARY KEY,
    sha256       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    base_model   TEXT NOT NULL,
    metrics      TEXT NOT NULL,         -- JSON
    created_at   REAL NOT NULL,
    node         TEXT NOT NULL
);

-- learning-queue cursor (last entry id a round used), the active adapter version, schedule bookkeeping
CREATE TABLE training_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
