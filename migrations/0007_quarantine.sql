-- Records read from the hub that failed validation (wrong types, missing fields, a version that is not an
-- integer or lies far ahead of this node's clock, a session hash another program wrote). They are kept aside
-- here instead of being applied, so one bad record never stops the change feed: the cursor moves past it and
-- the rest applies. One row per Redis key (the latest bad value read there); a good record read at the same
-- key later takes its row away.

CREATE TABLE quarantine (
    key             TEXT PRIMARY KEY,   -- the Redis key (with the hive's prefix), or STREAM#entry-id for a feed entry
    raw             TEXT NOT NULL,      -- JSON object of the fields as read (bytes that are not UTF-8 as \x escapes)
    reason          TEXT NOT NULL,      -- what is wrong with it, in a sentence
    quarantined_at  REAL NOT NULL,      -- when it was last read and refused
    seen            INTEGER NOT NULL DEFAULT 1   -- how many times it was read and refused
) WITHOUT ROWID;
