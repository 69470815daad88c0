"""The seed's session context, learning queue and tool cache, kept in the local store.

A cleared session stays as a tombstone row (`cleared = 1`, its context, files and task emptied) that no reader
returns: it keeps the version of the clear and the version last seen in Redis (`synced_version`), so the clear
is pushed with the right base, and a session written again after it starts from that base too.
"""

from __future__ import annotations

import json
import time
from typing import Any

import apsw

from hivemind_app.errors import NotFoundError
from hivemind_app.records.learning import LearningEntry
from hivemind_app.records.sessions import Session
from hivemind_app.seed import SESSION_TTL_S
from hivemind_app.store.database import Database
from hivemind_app.store.db import all_rows, maybe_one
from hivemind_app.store.kinds import RecordKind


def write_session_row(
    conn: apsw.Connection,
    session_id: str,
    state: dict[str, Any],
    *,
    updated_at: float,
    version: int,
    synced_version: int | None,
    version_node: str,
    synced_node: str,
) -> None:
    """The one way a whole session row is written: by a local edit, a conflict resolution, or sync
    (`version_node`: the node that minted `version`, the tie-break of `store/versions.py`; `synced_node`: the
    one that minted `synced_version`, so the base is pushed as a whole stamp)."""
    conn.execute(
        "INSERT OR REPLACE INTO sessions(session_id, context, files, current_task, updated_at, version, "
        "closed_at, synced_version, version_node, synced_node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            json.dumps(state.get("context") or {}, ensure_ascii=False),
            json.dumps(state.get("files") or [], ensure_ascii=False),
            str(state.get("current_task") or ""),
            updated_at,
            version,
            state.get("closed_at"),
            synced_version,
            version_node,
            synced_node,
        ),
    )


def make_tombstone(
    conn: apsw.Connection,
    session_id: str,
    *,
    version: int,
    version_node: str,
    synced: tuple[int, str] | None = None,
) -> None:
    """Turn the session's row into a tombstone at `version` minted by `version_node` (`synced`: the hub's
    stamp, for a clear pulled from it; None keeps the row's own base)."""
    synced_version, synced_node = synced if synced is not None else (None, None)
    conn.execute(
        "UPDATE sessions SET cleared = 1, context = '{}', files = '[]', current_task = '', closed_at = NULL, "
        "summarised_at = NULL, updated_at = ?, version = ?, version_node = ?, "
        "synced_version = coalesce(?, synced_version), synced_node = coalesce(?, synced_node) WHERE session_id = ?",
        (time.time(), version, version_node, synced_version, synced_node, session_id),
    )


class LocalState:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- sessions -----------------------------------------------------------------------------------

    def get_session(self, session_id: str) -> Session | None:
        with self.db.read() as conn:
            row = maybe_one(
                conn,
                "SELECT session_id, context, files, current_task, updated_at, version, closed_at "
                "FROM sessions WHERE session_id = ? AND updated_at > ? AND cleared = 0",
                (session_id, time.time() - SESSION_TTL_S),
            )
        if row is None:
            return None
        return Session(
            session_id=str(row[0]),
            context=json.loads(row[1]),
            files=tuple(json.loads(row[2])),
            current_task=str(row[3]),
            updated_at=float(row[4]),
            version=int(row[5]),
            closed_at=row[6],
        )

    def update_session(
        self,
        session_id: str,
        *,
        context: dict[str, Any] | None = None,
        files: list[str] | None = None,
        current_task: str | None = None,
        closed: bool = False,
    ) -> Session:
        """Merge into the session (creating it): context keys are merged, files added, the task replaced."""
        with self.db.write() as conn:
            row = maybe_one(
                conn,
                "SELECT context, files, current_task, closed_at, synced_version, synced_node FROM sessions "
                "WHERE session_id = ?",
                (session_id,),
            )
            merged_context: dict[str, Any] = json.loads(row[0]) if row else {}
            merged_files: list[str] = json.loads(row[1]) if row else []
            task = str(row[2]) if row else ""
            if context:
                merged_context.update(context)
            for path in files or []:
                if path not in merged_files:
                    merged_files.append(path)
            if current_task is not None:
                task = current_task
            now = time.time()
            # Claude Code sends Stop after every reply: any later activity reopens the session, and
            # rewriting the row also clears summarised_at, so its summary is redone when it closes again.
            closed_at = now if closed else None
            write_session_row(
                conn,
                session_id,
                {"context": merged_context, "files": merged_files, "current_task": task, "closed_at": closed_at},
                updated_at=now,
                version=self.db.next_version(conn),
                synced_version=row[4] if row else None,
                version_node=self.db.node_id,
                synced_node=str(row[5]) if row else "",
            )
            self.db.enqueue(conn, RecordKind.SESSION, session_id)
        session = self.get_session(session_id)
        assert session is not None
        return session

    def replace_session(self, session_id: str, state: dict[str, Any]) -> None:
        """Write a whole session state as the newest edit (resolving a conflict in favour of the other side)."""
        with self.db.write() as conn:
            row = maybe_one(
                conn, "SELECT synced_version, synced_node FROM sessions WHERE session_id = ?", (session_id,)
            )
            write_session_row(
                conn,
                session_id,
                state,
                updated_at=time.time(),
                version=self.db.next_version(conn),
                synced_version=row[0] if row else None,
                version_node=self.db.node_id,
                synced_node=str(row[1]) if row else "",
            )
            self.db.enqueue(conn, RecordKind.SESSION, session_id)

    def clear_session(self, session_id: str) -> None:
        """Clear a session: its row becomes a tombstone with a new version, pushed like any other edit."""
        with self.db.write() as conn:
            if maybe_one(conn, "SELECT 1 FROM sessions WHERE session_id = ? AND cleared = 0", (session_id,)) is None:
                raise NotFoundError(f"No session {session_id!r} to clear.")
            make_tombstone(conn, session_id, version=self.db.next_version(conn), version_node=self.db.node_id)
            self.db.enqueue(conn, RecordKind.SESSION, session_id)

    def sessions_to_summarise(self, idle_s: float, limit: int = 10) -> list[Session]:
        """Sessions closed for at least `idle_s` and not summarised since, oldest first."""
        with self.db.read() as conn:
            ids = [
                str(r[0])
                for r in all_rows(
                    conn,
                    "SELECT session_id FROM sessions WHERE closed_at IS NOT NULL AND closed_at <= ? "
                    "AND summarised_at IS NULL ORDER BY closed_at LIMIT ?",
                    (time.time() - idle_s, limit),
                )
            ]
        return [s for s in (self.get_session(i) for i in ids) if s is not None]

    def mark_summarised(self, session_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE sessions SET summarised_at = ? WHERE session_id = ?", (time.time(), session_id))

    def session_entries(self, session_id: str, limit: int = 200) -> list[LearningEntry]:
        """The session's newest `limit` tool uses, oldest first (a long session's digest tells how it ends)."""
        with self.db.read() as conn:
            rows = all_rows(
                conn,
                "SELECT * FROM (SELECT entry_id, user_query, tool_used, tool_input, result, success, session_id, "
                "timestamp FROM learning_queue WHERE session_id = ? ORDER BY entry_id DESC LIMIT ?) ORDER BY entry_id",
                (session_id, limit),
            )
            rows = [r[1:] for r in rows]
        return [LearningEntry(str(r[0]), str(r[1]), str(r[2]), str(r[3]), bool(r[4]), r[5], float(r[6])) for r in rows]

    def list_sessions(self, limit: int = 100) -> list[Session]:
        with self.db.read() as conn:
            ids = [
                str(r[0])
                for r in conn.execute(
                    "SELECT session_id FROM sessions WHERE updated_at > ? AND cleared = 0 "
                    "ORDER BY updated_at DESC LIMIT ?",
                    (time.time() - SESSION_TTL_S, limit),
                )
            ]
        return [s for s in (self.get_session(i) for i in ids) if s is not None]

    # -- learning queue -----------------------------------------------------------------------------

    def add_learning(self, entry: LearningEntry) -> int:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO learning_queue(user_query, tool_used, tool_input, result, success, session_id, "
                "timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.user_query,
                    entry.tool_used,
                    entry.tool_input,
                    entry.result,
                    int(entry.success),
                    entry.session_id,
                    entry.timestamp,
                ),
            )
            entry_id = int(conn.last_insert_rowid())
            self.db.enqueue(conn, RecordKind.LEARNING, str(entry_id))
            return entry_id

    def prune_learning(self, before: float) -> int:
        """Forget learning entries made before `before` (unix seconds) that Redis has acknowledged (no outbox row
        left); entries not yet pushed are always kept. Returns how many."""
        with self.db.write() as conn:
            conn.execute(
                "DELETE FROM learning_queue WHERE timestamp < ? "
                "AND CAST(entry_id AS TEXT) NOT IN (SELECT key FROM outbox WHERE kind = ?)",
                (before, RecordKind.LEARNING.value),
            )
            return int(conn.changes())

    def learning_entries(self, limit: int = 100) -> list[LearningEntry]:
        with self.db.read() as conn:
            rows = all_rows(
                conn,
                "SELECT user_query, tool_used, tool_input, result, success, session_id, timestamp "
                "FROM learning_queue ORDER BY entry_id DESC LIMIT ?",
                (limit,),
            )
        return [LearningEntry(str(r[0]), str(r[1]), str(r[2]), str(r[3]), bool(r[4]), r[5], float(r[6])) for r in rows]

    # -- tool cache ---------------------------------------------------------------------------------

    def get_tool_output(self, tool: str, input_hash: str) -> str | None:
        with self.db.read() as conn:
            row = maybe_one(
                conn,
                "SELECT output FROM tool_cache WHERE tool = ? AND input_hash = ? AND expires_at > ?",
                (tool, input_hash, time.time()),
            )
        return None if row is None else str(row[0])

    def put_tool_output(self, tool: str, input_hash: str, output: str, ttl_s: float) -> None:
        now = time.time()
        with self.db.write() as conn:
            conn.execute("DELETE FROM tool_cache WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT OR REPLACE INTO tool_cache(tool, input_hash, output, expires_at) VALUES (?, ?, ?, ?)",
                (tool, input_hash, output, now + ttl_s),
            )
            self.db.enqueue(conn, RecordKind.TOOLCACHE, f"{tool}\x1f{input_hash}")
