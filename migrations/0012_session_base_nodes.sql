-- A session's base is a stamp too: `synced_node` is the node that minted `synced_version`, the edit this
-- node last saw in Redis, so the hub's session push script compares whole stamps (store/versions.py), never
-- versions alone. Where the row is that edit itself, its node is known; elsewhere it stays '' (a base from
-- before base nodes, which compares as node '' does for rows from before stamps).

ALTER TABLE sessions ADD COLUMN synced_node TEXT NOT NULL DEFAULT '';
UPDATE sessions SET synced_node = version_node WHERE synced_version = version;
