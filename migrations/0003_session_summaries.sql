-- Closed sessions are summarised into a memory by a node with the infer role; this records which were.

ALTER TABLE sessions ADD COLUMN summarised_at REAL;
CREATE INDEX sessions_to_summarise ON sessions(closed_at) WHERE closed_at IS NOT NULL AND summarised_at IS NULL;
