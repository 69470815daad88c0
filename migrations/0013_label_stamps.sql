-- Tags and sources carry the stamp of the newest store that added them (`version`, `version_node`): a label
-- is part of a memory while that stamp is newer than the newest delete anyone knows of (the memory's `born`,
-- or a tombstone's own stamp), so labels a delete removed never come back from a node that stored the
-- memory again without having seen the delete (store/memory_rows.py). Labels from before this take the stamp
-- of their memory's row, the newest store they can have come from.

ALTER TABLE memory_tags ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE memory_tags ADD COLUMN version_node TEXT NOT NULL DEFAULT '';
ALTER TABLE memory_sources ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE memory_sources ADD COLUMN version_node TEXT NOT NULL DEFAULT '';
UPDATE memory_tags SET
    version = (SELECT m.version FROM memories m WHERE m.rowid = memory_tags.memory_rowid),
    version_node = (SELECT m.version_node FROM memories m WHERE m.rowid = memory_tags.memory_rowid);
UPDATE memory_sources SET
    version = (SELECT m.version FROM memories m WHERE m.rowid = memory_sources.memory_rowid),
    version_node = (SELECT m.version_node FROM memories m WHERE m.rowid = memory_sources.memory_rowid);
