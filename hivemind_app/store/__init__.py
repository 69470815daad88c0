"""The local store: SQLite (apsw) + sqlite-vec + FTS5. Never imports a front end or a model library."""
