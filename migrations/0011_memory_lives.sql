-- A memory stored again after it was deleted begins a new life: `born_version` and `born_node` hold the stamp
-- of the delete it came after ((0, '') for a first life). An apply keeps our tags and sources only when our
-- copy is not older than that delete, so labels a delete removed do not come back (store/memory_rows.py).

ALTER TABLE memories ADD COLUMN born_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE memories ADD COLUMN born_node TEXT NOT NULL DEFAULT '';
