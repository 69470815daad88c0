"""The vector change log (`vector_changes`) that keeps every process's index current, and its compaction.

Every transaction that changes a vector appends (rowid, new vector or NULL) once some process has an index
for the store (meta 'ann_log'): a small store pays nothing. A process replays the rows after the sequence
number its index file was saved at; whoever saves a newer file deletes the rows it covers and moves the
space's pruned sequence number up, so a file older than that is known to be stale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import apsw

from hivemind_app.store.db import Row, all_rows, maybe_one


def record_change(conn: apsw.Connection, space_id: int, rowid: int, vector: bytes | None) -> None:
    """Inside a write transaction: rowid's vector in `space_id` is now `vector` (None: it has none).

    Recorded only once some process has an index for this store (meta 'ann_log'), so a small store pays
    nothing.
    """
    conn.execute(
        "INSERT INTO vector_changes(space_id, memory_rowid, vector) SELECT ?, ?, ? "
        "WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'ann_log' AND value = '1')",
        (space_id, rowid, vector),
    )


def forget_space(conn: apsw.Connection, space_id: int) -> None:
    """Inside a write transaction: a space was dropped; its log rows go (`AnnManager.remove_spaces`: its files)."""
    conn.execute("DELETE FROM vector_changes WHERE space_id = ?", (space_id,))


def start_logging(conn: apsw.Connection) -> None:
    """Inside a write transaction: from now on every vector change is logged (an index is being built)."""
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('ann_log', '1')")


def is_logging(conn: apsw.Connection) -> bool:
    """Whether vector changes are being logged (some process built an index for this store)."""
    return _meta(conn, "ann_log") == "1"


def generation(conn: apsw.Connection) -> str | None:
    """The store's vector-history token: an index file saved for another store (or a copy) carries another."""
    return _meta(conn, "ann_generation")


def last_seq(conn: apsw.Connection) -> int:
    """The newest sequence number the log ever handed out (AUTOINCREMENT: pruning never lowers it)."""
    row = maybe_one(conn, "SELECT seq FROM sqlite_sequence WHERE name = 'vector_changes'")
    return int(row[0]) if row else 0


def pruned_seq(conn: apsw.Connection, space_id: int) -> int:
    """Log rows of `space_id` up to this number are gone: an index file saved before it misses them."""
    return int(_meta(conn, _pruned_key(space_id)) or 0)


def changes_after(conn: apsw.Connection, space_id: int, after: int) -> list[Row]:
    """(seq, rowid, vector or None) of every change to `space_id` after `after`, in order."""
    return all_rows(
        conn,
        "SELECT seq, memory_rowid, vector FROM vector_changes WHERE space_id = ? AND seq > ? ORDER BY seq",
        (space_id, after),
    )


def latest_between(conn: apsw.Connection, space_id: int, after: int, upto: int) -> dict[int, bytes | None]:
    """Each changed rowid's latest vector (None: it has none now) over the log rows in (after, upto]."""
    rows = all_rows(
        conn,
        "SELECT memory_rowid, vector FROM vector_changes WHERE space_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
        (space_id, after, upto),
    )
    latest: dict[int, bytes | None] = {}
    for rowid, vector in rows:
        latest[int(rowid)] = None if vector is None else bytes(vector)
    return latest


def prune(conn: apsw.Connection, space_id: int, seq: int) -> None:
    """Inside a write transaction: an index file covers every change up to `seq`, so those log rows may go."""
    conn.execute("DELETE FROM vector_changes WHERE space_id = ? AND seq <= ?", (space_id, seq))
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_pruned_key(space_id), str(seq)))


@contextlib.contextmanager
def read_snapshot(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """A read transaction: the vectors read and the log's last sequence number agree."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def _meta(conn: apsw.Connection, key: str) -> str | None:
    row = maybe_one(conn, "SELECT value FROM meta WHERE key = ?", (key,))
    return None if row is None else str(row[0])


def _pruned_key(space_id: int) -> str:
    return f"ann_pruned_seq_{space_id}"
