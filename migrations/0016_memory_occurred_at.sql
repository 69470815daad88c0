-- The time a memory describes, when it is known (unix seconds): a chat session's date, a meeting's, the day
-- a note was written about; NULL when only the time it was stored is known (every memory stored before this
-- column, and most stored by hand). Time-aware search compares a memory's time, `coalesce(occurred_at,
-- created_at)`, with the window a question names, through this index (store/search.py spells the same
-- expression, so SQLite can use it).

ALTER TABLE memories ADD COLUMN occurred_at REAL;
CREATE INDEX memories_when ON memories(coalesce(occurred_at, created_at)) WHERE deleted = 0;
