-- The approximate-nearest-neighbour (ANN) index files beside the store follow the vectors through this log.
-- Once an index exists for the store (meta 'ann_log' = '1'), every transaction that adds, replaces or drops
-- a vector in vec_space_N records the memory's rowid and its new vector here. A process holding an index in memory replays
-- the rows after the sequence number its index file was saved at; whoever saves a newer index file deletes
-- the rows it covers and moves 'ann_pruned_seq' up, so an index file older than that is known to be stale.
-- AUTOINCREMENT: a sequence number is never reused, even after every row was pruned.

CREATE TABLE vector_changes (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id      INTEGER NOT NULL,
    memory_rowid  INTEGER NOT NULL,
    vector        BLOB                      -- the new vector (float32, little endian); NULL: it has none now
);
CREATE INDEX vector_changes_space ON vector_changes(space_id, seq);

-- Identifies this store's vector history: an index file saved for another store (or a copy) is not used.
INSERT OR REPLACE INTO meta(key, value) VALUES ('ann_generation', lower(hex(randomblob(8))));
