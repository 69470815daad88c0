-- Memories, their tags and sources, keyword search, and the embedding spaces vectors live in.
-- Vector tables (vec0) are created by the store at run time: their dimension comes from the model.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE memories (
    rowid        INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,          -- sha256 of the normalised text
    text         TEXT    NOT NULL,                 -- emptied when the memory is deleted
    session_id   TEXT,
    created_at   REAL    NOT NULL,                 -- unix seconds
    updated_at   REAL    NOT NULL,
    origin_node  TEXT    NOT NULL,
    version      INTEGER NOT NULL,                 -- hybrid logical clock, for sync
    deleted      INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))
);
CREATE INDEX memories_created ON memories(created_at) WHERE deleted = 0;
CREATE INDEX memories_session ON memories(session_id) WHERE deleted = 0;

CREATE TABLE memory_tags (
    memory_rowid INTEGER NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
    tag          TEXT    NOT NULL,
    PRIMARY KEY (memory_rowid, tag)
) WITHOUT ROWID;
CREATE INDEX memory_tags_tag ON memory_tags(tag);

CREATE TABLE memory_sources (
    memory_rowid INTEGER NOT NULL REFERENCES memories(rowid) ON DELETE CASCADE,
    source       TEXT    NOT NULL,
    position     INTEGER NOT NULL,                 -- first source seen is 0
    PRIMARY KEY (memory_rowid, source)
) WITHOUT ROWID;
CREATE INDEX memory_sources_source ON memory_sources(source);

CREATE VIRTUAL TABLE memories_fts USING fts5(
    text,
    content = 'memories',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- Only live memories are searchable: a tombstone leaves the index.
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories WHEN new.deleted = 0 BEGIN
    INSERT INTO memories_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER memories_fts_update_old AFTER UPDATE OF text, deleted ON memories WHEN old.deleted = 0 BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER memories_fts_update_new AFTER UPDATE OF text, deleted ON memories WHEN new.deleted = 0 BEGIN
    INSERT INTO memories_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories WHEN old.deleted = 0 BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;

-- One row per embedding model the store has held vectors for; vectors of space N live in vec_space_N.
CREATE TABLE embedding_spaces (
    space_id    INTEGER PRIMARY KEY,
    model       TEXT    NOT NULL UNIQUE,
    dim         INTEGER NOT NULL CHECK (dim > 0),
    created_at  REAL    NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
);
CREATE UNIQUE INDEX embedding_spaces_one_active ON embedding_spaces(active) WHERE active = 1;

-- Embeddings of texts that are not (or not yet) memories, e.g. repeated queries.
CREATE TABLE embedding_cache (
    model      TEXT NOT NULL,
    text_hash  TEXT NOT NULL,
    vector     BLOB NOT NULL,                      -- float32, little endian
    used_at    REAL NOT NULL,
    PRIMARY KEY (model, text_hash)
) WITHOUT ROWID;
