"""Reading a node's SQLite file directly, for the rare test that checks on-disk state no `Hive` call shows.

Read-only, through apsw (the store's own SQLite build), beside whatever connections the `Hive` holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw


def rows(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.setbusytimeout(5000)
        return [tuple(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def learning_entries(db_path: Path) -> list[dict[str, Any]]:
    """The local learning queue, newest first, as stored (after validation and redaction)."""
    names = ("user_query", "tool_used", "tool_input", "result", "success", "session_id", "timestamp")
    found = rows(db_path, f"SELECT {', '.join(names)} FROM learning_queue ORDER BY entry_id DESC")
    return [dict(zip(names, row, strict=True)) for row in found]


def meta(db_path: Path, key: str) -> str | None:
    found = rows(db_path, "SELECT value FROM meta WHERE key = ?", (key,))
    return None if not found else str(found[0][0])


def training_state(db_path: Path, key: str) -> str | None:
    found = rows(db_path, "SELECT value FROM training_state WHERE key = ?", (key,))
    return None if not found else str(found[0][0])
