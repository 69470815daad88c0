-- Watched folders (`hivemind-app watch`): the folders this node follows, each file's state when last read
-- (size and mtime decide whether it must be read again, the content hash whether it changed and where a
-- renamed file went) and the memory each of its chunks became, with the byte range it came from.
-- Local to this node: another node follows its own folders; the memories themselves sync as any other.

CREATE TABLE watched_folders (
    path TEXT PRIMARY KEY,
    tags TEXT NOT NULL DEFAULT '[]',
    added_at REAL NOT NULL,
    last_change REAL,
    missing INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    -- st_dev of the folder when it was added: another device there now is an unmounted mount point
    device INTEGER,
    -- a reconcile found more than half its files gone: nothing is deleted until `watch add` is run again
    suspect INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE watched_files (
    path TEXT PRIMARY KEY,
    folder TEXT NOT NULL REFERENCES watched_folders(path) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    error TEXT
);
CREATE INDEX watched_files_by_folder ON watched_files(folder);

CREATE TABLE watched_chunks (
    path TEXT NOT NULL REFERENCES watched_files(path) ON DELETE CASCADE ON UPDATE CASCADE,
    seq INTEGER NOT NULL,
    memory_id TEXT NOT NULL,
    start_byte INTEGER NOT NULL,
    end_byte INTEGER NOT NULL,
    PRIMARY KEY (path, seq)
);
CREATE INDEX watched_chunks_by_memory ON watched_chunks(memory_id);

-- The version each memory had when the watch last stored it (NULL: it existed before the watch stored it,
-- by hand or from another node). The watch deletes a memory only while it is at that version: one stored
-- again by hand, tagged or synced since is someone else's too, and is kept.
CREATE TABLE watched_memories (
    memory_id TEXT PRIMARY KEY,
    version INTEGER
);
