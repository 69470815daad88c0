-- Versions are ordered with the node that minted them: (version, version_node), compared lexicographically,
-- so two nodes that mint the same version for one record still agree on a winner (store/versions.py).
-- Rows written before keep '' and compare by version alone, as the hub's records without a node do.

ALTER TABLE memories ADD COLUMN version_node TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN version_node TEXT NOT NULL DEFAULT '';
