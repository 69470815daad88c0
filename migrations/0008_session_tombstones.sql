-- A cleared session keeps its row as a tombstone (cleared = 1; its context, files and task emptied) instead of
-- losing it, so the clear is pushed like any other edit: with its own version, minted when it was cleared, and
-- with the version this node last saw in Redis as its base. Without the row the clear went out based on
-- nothing, and the hub took it for an edit made on the other side of a partition: a conflict with itself.
-- A session written again after a clear starts from the tombstone's base in the same way. Readers skip
-- tombstones.

ALTER TABLE sessions ADD COLUMN cleared INTEGER NOT NULL DEFAULT 0 CHECK (cleared IN (0, 1));
