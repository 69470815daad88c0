"""Records from the hub that failed validation, kept aside instead of applied (the `quarantine` table).

Invariants: one row per Redis key (the latest bad value read there, and how often it was refused); a row is
written in the caller's write transaction when there is one, so a quarantined record and the cursor move past
it commit together; a good record applied at the same key later takes the row away (`release`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import apsw

from hivemind_app.records.status import QuarantinedRecord
from hivemind_app.store.database import Database
from hivemind_app.store.db import all_rows, maybe_one

# The most of a raw value kept (a huge poisoned text is not worth keeping whole).
RAW_LIMIT = 20_000


def raw_json(fields: Mapping[str, object]) -> str:
    """The fields as read, as JSON: bytes decoded (invalid UTF-8 as \\x escapes), vectors by their length only."""
    out: dict[str, object] = {}
    for name, value in fields.items():
        if isinstance(value, bytes):
            out[name] = f"<{len(value)} bytes>" if name == "vector" else value.decode("utf-8", "backslashreplace")
        else:
            out[name] = value
    text = json.dumps(out, ensure_ascii=False, default=str)
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + "...(cut)"


class Quarantine:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, conn: apsw.Connection, key: str, raw: Mapping[str, object], reason: str) -> bool:
        """Keep a refused record aside (inside the caller's write transaction); True when the key was not
        quarantined already (or held another bad value)."""
        value = raw_json(raw)
        known = maybe_one(conn, "SELECT raw FROM quarantine WHERE key = ?", (key,))
        conn.execute(
            "INSERT INTO quarantine(key, raw, reason, quarantined_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET raw = excluded.raw, reason = excluded.reason, "
            "quarantined_at = excluded.quarantined_at, seen = seen + 1",
            (key, value, reason, time.time()),
        )
        return known is None or str(known[0]) != value

    @staticmethod
    def release(conn: apsw.Connection, key: str) -> None:
        """A good record was read at `key`: the bad one it replaced is no longer held."""
        conn.execute("DELETE FROM quarantine WHERE key = ?", (key,))

    def count(self) -> int:
        with self.db.read() as conn:
            row = maybe_one(conn, "SELECT count(*) FROM quarantine")
        return int(row[0]) if row else 0

    def records(self, limit: int = 100) -> list[QuarantinedRecord]:
        """The quarantined records, the most recently refused first."""
        with self.db.read() as conn:
            rows = all_rows(
                conn,
                "SELECT key, reason, raw, quarantined_at, seen FROM quarantine ORDER BY quarantined_at DESC LIMIT ?",
                (limit,),
            )
        return [QuarantinedRecord(str(r[0]), str(r[1]), str(r[2]), float(r[3]), int(r[4])) for r in rows]
