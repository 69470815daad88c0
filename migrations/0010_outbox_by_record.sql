-- Every write is recorded in the outbox whether or not a hub is configured, and a record keeps at most one row
-- there (the push sends its current state): a write replaces the record's older row, found by this index.
-- Rows queued twice before this migration are coalesced to the newest.

DELETE FROM outbox WHERE seq NOT IN (SELECT max(seq) FROM outbox GROUP BY kind, key);
CREATE INDEX outbox_record ON outbox(kind, key);
