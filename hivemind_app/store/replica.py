"""The store's side of sync: reading the outbox, reading records to push, applying records pulled from the
hub, the feed cursor and sync counters. Every apply runs in the caller's write transaction, together with
the cursor move, so a crash never leaves a change applied but unrecorded (or the reverse)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import apsw

from hivemind_app.store.database import Database
from hivemind_app.store.db import all_rows, maybe_one
from hivemind_app.store.kinds import ApplyOutcome, RecordKind
from hivemind_app.store.local_state import make_tombstone, write_session_row
from hivemind_app.store.memory_rows import MemoryRows, labels_of
from hivemind_app.store.models import EmbeddingSpace
from hivemind_app.store.quarantine import Quarantine
from hivemind_app.store.remote import RemoteMemory, RemoteSession
from hivemind_app.store.versions import Stamp, content_digest, stamp_newer


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    kind: RecordKind
    key: str


_HUB_RECORD = "_hub_record"


class Replica:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.rows = MemoryRows(db)
        self.quarantine = Quarantine(db)

    # -- outbox and state -----------------------------------------------------------------------------

    def outbox(self, limit: int) -> list[OutboxRow]:
        with self.db.read() as conn:
            rows = all_rows(conn, "SELECT seq, kind, key FROM outbox ORDER BY seq LIMIT ?", (limit,))
        return [OutboxRow(int(r[0]), RecordKind(str(r[1])), str(r[2])) for r in rows]

    def outbox_depth(self) -> int:
        with self.db.read() as conn:
            row = maybe_one(conn, "SELECT count(*) FROM outbox")
        return int(row[0]) if row else 0

    def acknowledge(self, seqs: list[int]) -> None:
        """Delete outbox rows Redis has acknowledged (never before)."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))", (json.dumps(seqs),))

    def enqueue_history(self) -> int:
        """Queue every memory and session, tombstones included, for pushing: a node that meets a hub (for the
        first time, or one flushed or restored since) pushes its whole history; the hub's scripts keep only
        what is newer than theirs. Returns how many rows were queued."""
        queued = 0
        with self.db.write() as conn:
            for kind, query in (
                (RecordKind.MEMORY, "SELECT id AS key FROM memories"),
                (RecordKind.SESSION, "SELECT session_id AS key FROM sessions"),
            ):
                conn.execute(
                    f"INSERT INTO outbox(kind, key, created_at) SELECT ?, k.key, ? FROM ({query}) AS k "
                    "WHERE k.key NOT IN (SELECT key FROM outbox WHERE kind = ?)",
                    (kind.value, time.time(), kind.value),
                )
                queued += int(conn.changes())
        return queued

    def state(self) -> dict[str, str]:
        with self.db.read() as conn:
            return {str(k): str(v) for k, v in all_rows(conn, "SELECT key, value FROM sync_state")}

    def set_state(self, conn: apsw.Connection | None = None, **values: object) -> None:
        def write(c: apsw.Connection) -> None:
            for key, value in values.items():
                c.execute("INSERT OR REPLACE INTO sync_state(key, value) VALUES (?, ?)", (key, str(value)))

        if conn is not None:
            write(conn)
        else:
            with self.db.write() as c:
                write(c)

    def raise_floor(self, key: str, value: int) -> int:
        """Raise the whole number kept as `key` to `value` (never lower it, whichever process writes first);
        returns the number kept now."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO sync_state(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value "
                "WHERE CAST(excluded.value AS INTEGER) > CAST(sync_state.value AS INTEGER)",
                (key, str(value)),
            )
            row = maybe_one(conn, "SELECT value FROM sync_state WHERE key = ?", (key,))
        return int(row[0]) if row else value

    def bump(self, counter: str, by: int = 1) -> None:
        with self.db.write() as conn:
            row = maybe_one(conn, "SELECT value FROM sync_state WHERE key = ?", (counter,))
            self.set_state(conn, **{counter: int(row[0]) + by if row else by})

    # -- memories -------------------------------------------------------------------------------------

    def memory_fields(self, memory_id: str, space: EmbeddingSpace | None) -> dict[str, Any] | None:
        """The memory as the hub stores it: the seed's fields plus what sync needs."""
        with self.db.read() as conn:
            row = maybe_one(
                conn,
                "SELECT rowid, id, text, session_id, created_at, updated_at, origin_node, version, deleted, "
                "version_node, born_version, born_node, project, occurred_at FROM memories WHERE id = ?",
                (memory_id,),
            )
            if row is None:
                return None
            rowid = int(row[0])
            tag_stamps, source_stamps = labels_of(conn, rowid)
            vector = None
            if space is not None and not row[8]:
                found = maybe_one(conn, f"SELECT embedding FROM {space.table} WHERE rowid = ?", (rowid,))
                vector = bytes(found[0]) if found else None
        return {
            "id": str(row[1]),
            "text": str(row[2]),
            "session_id": row[3] or "",
            "timestamp": float(row[4]),
            "updated_at": float(row[5]),
            "origin": str(row[6]),
            "version": str(row[7]),
            "node": str(row[9]),
            "born": f"{int(row[10])}:{row[11]}" if row[10] else "",
            "project": row[12] or "",
            "occurred_at": "" if row[13] is None else repr(float(row[13])),
            "deleted": "1" if row[8] else "0",
            "tags": json.dumps(list(tag_stamps)),
            "sources": json.dumps(list(source_stamps)),
            "source": next(iter(source_stamps), ""),
            "label_stamps": json.dumps(
                {
                    "tags": {tag: f"{v}:{n}" for tag, (v, n) in tag_stamps.items()},
                    "sources": {source: f"{v}:{n}" for source, (v, n) in source_stamps.items()},
                }
            ),
            "vector": vector or b"",
            "model": space.model if (space and vector) else "",
            "dim": str(space.dim) if (space and vector) else "",
        }

    @staticmethod
    def zset_member(fields: dict[str, Any]) -> str:
        """The seed's "{embedding_hash}:{text_hash}" ('' for a tombstone, which leaves the ZSET)."""
        if fields["deleted"] == "1":
            return ""
        embedding_hash = hashlib.sha256(fields["vector"]).hexdigest() if fields["vector"] else "none"
        return f"{embedding_hash}:{fields['id']}"

    def apply_memory(
        self, conn: apsw.Connection, remote: RemoteMemory, space: EmbeddingSpace | None, force: bool = False
    ) -> ApplyOutcome:
        """Apply a memory pulled from the hub if its stamp is newer than ours (`MemoryRows.apply`)."""
        return self.rows.apply(conn, remote, space, force=force)

    def memory_stamps(self) -> dict[str, tuple[Stamp, str]]:
        """Every memory's stamp and content digest (`store/versions.py`), as verify compares them."""
        with self.db.read() as conn:
            tags: dict[int, list[str]] = {}
            for rowid, tag in all_rows(conn, "SELECT memory_rowid, tag FROM memory_tags"):
                tags.setdefault(int(rowid), []).append(str(tag))
            sources: dict[int, list[str]] = {}
            for rowid, source in all_rows(
                conn, "SELECT memory_rowid, source FROM memory_sources ORDER BY memory_rowid, position"
            ):
                sources.setdefault(int(rowid), []).append(str(source))
            rows = all_rows(conn, "SELECT rowid, id, version, version_node, deleted, text, session_id FROM memories")
        return {
            str(r[1]): (
                (int(r[2]), str(r[3])),
                content_digest(
                    deleted=bool(r[4]),
                    text=str(r[5]),
                    tags=tags.get(int(r[0]), []),
                    sources=sources.get(int(r[0]), []),
                    session=str(r[6] or ""),
                ),
            )
            for r in rows
        }

    # -- sessions -------------------------------------------------------------------------------------

    def session_fields(self, session_id: str) -> dict[str, Any] | None:
        """The session as pushed: its version, the hub's stamp it was based on (`synced_version`, `synced_node`),
        its state (None: cleared)."""
        with self.db.read() as conn:
            row = maybe_one(
                conn,
                "SELECT context, files, current_task, updated_at, version, closed_at, synced_version, cleared, "
                "version_node, synced_node "
                "FROM sessions WHERE session_id = ?",
                (session_id,),
            )
        if row is None:
            return None
        if row[7]:
            return {
                "version": int(row[4]),
                "synced_version": row[6],
                "synced_node": str(row[9]),
                "state": None,
                "node": str(row[8]),
            }
        state = {
            "context": json.loads(row[0]),
            "files": json.loads(row[1]),
            "current_task": row[2],
            "timestamp": row[3],
            "closed_at": row[5],
        }
        return {
            "version": int(row[4]),
            "synced_version": row[6],
            "synced_node": str(row[9]),
            "state": state,
            "node": str(row[8]),
        }

    def has_pending(self, conn: apsw.Connection, kind: RecordKind, key: str) -> bool:
        return maybe_one(conn, "SELECT 1 FROM outbox WHERE kind = ? AND key = ?", (kind.value, key)) is not None

    def drop_pending(self, conn: apsw.Connection, kind: RecordKind, key: str, upto_seq: int) -> None:
        """Forget our edits of a record that went out in a push Redis decided against (the conflict record keeps
        ours): the outbox rows up to `upto_seq`, never an edit made while that push was in flight."""
        conn.execute("DELETE FROM outbox WHERE kind = ? AND key = ? AND seq <= ?", (kind.value, key, upto_seq))

    def apply_session(
        self,
        conn: apsw.Connection,
        session_id: str,
        remote: RemoteSession,
        force: bool = False,
    ) -> ApplyOutcome:
        """Take the hub's session (state None: cleared there) when its stamp is newer than ours
        (`store/versions.py`) and we have no unpushed edit.

        `force`: Redis decided against our edit; take its session whatever the stamps.
        """
        version, state, node = remote.version, remote.state, remote.node
        self.db.observe(conn, version)
        if self.has_pending(conn, RecordKind.SESSION, session_id):
            return ApplyOutcome.PENDING  # our push will meet theirs in Redis and settle it there
        row = maybe_one(conn, "SELECT version, version_node FROM sessions WHERE session_id = ?", (session_id,))
        if row is not None and not force and not stamp_newer((version, node), (int(row[0]), str(row[1]))):
            conn.execute(
                "UPDATE sessions SET synced_version = ?, synced_node = ? WHERE session_id = ?",
                (version, node, session_id),
            )
            return ApplyOutcome.OLDER
        if state is None:  # the tombstone keeps the hub's version as the base of a later edit here
            if row is None:
                write_session_row(
                    conn,
                    session_id,
                    {},
                    updated_at=time.time(),
                    version=version,
                    synced_version=version,
                    version_node=node,
                    synced_node=node,
                )
            make_tombstone(conn, session_id, version=version, version_node=node, synced=(version, node))
            return ApplyOutcome.CLEARED
        write_session_row(
            conn,
            session_id,
            state,
            updated_at=float(state.get("timestamp") or time.time()),
            version=version,
            synced_version=version,
            version_node=node,
            synced_node=node,
        )
        return ApplyOutcome.APPLIED

    def mark_session_synced(self, conn: apsw.Connection, session_id: str, version: int, node: str) -> None:
        """The hub holds our push of the session, stamped (`version`, `node`): the base of our next edit."""
        conn.execute(
            "UPDATE sessions SET synced_version = ?, synced_node = ? WHERE session_id = ?",
            (version, node, session_id),
        )

    # -- conflicts ------------------------------------------------------------------------------------

    def set_conflicts(self, conflicts: dict[str, dict[str, Any]]) -> None:
        """Mirror the hub's conflict records exactly (resolved ones disappear). A record's `hub_record`, the text
        the hub held (its sides' MACs with it), is kept with its winner, to publish again as it was."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM session_conflicts")
            for session_id, record in conflicts.items():
                winner = dict(record["winner"])
                if record.get("hub_record"):
                    winner[_HUB_RECORD] = record["hub_record"]
                conn.execute(
                    "INSERT INTO session_conflicts(session_id, winner, loser, detected_at) VALUES (?, ?, ?, ?)",
                    (session_id, json.dumps(winner), json.dumps(record["loser"]), time.time()),
                )

    def conflicts(self, with_hub_record: bool = False) -> dict[str, dict[str, Any]]:
        """The mirrored conflict records, {winner, loser, detected_at} (and `hub_record`, where kept, if asked)."""
        with self.db.read() as conn:
            rows = all_rows(conn, "SELECT session_id, winner, loser, detected_at FROM session_conflicts")
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            winner = json.loads(r[1])
            hub_record = winner.pop(_HUB_RECORD, None)
            out[str(r[0])] = {"winner": winner, "loser": json.loads(r[2]), "detected_at": float(r[3])}
            if with_hub_record and hub_record:
                out[str(r[0])]["hub_record"] = hub_record
        return out

    # -- learning queue and tool cache --------------------------------------------------------------

    def learning_entry(self, entry_id: int) -> dict[str, str] | None:
        with self.db.read() as conn:
            row = maybe_one(
                conn,
                "SELECT user_query, tool_used, tool_input, result, success, session_id, timestamp "
                "FROM learning_queue WHERE entry_id = ?",
                (entry_id,),
            )
        if row is None:
            return None
        return {
            "user_query": str(row[0]),
            "tool_used": str(row[1]),
            "tool_input": str(row[2]),
            "result": str(row[3]),
            "success": "1" if row[4] else "0",
            "session_id": str(row[5] or ""),
            "timestamp": str(row[6]),
        }

    def tool_output(self, tool: str, input_hash: str) -> tuple[str, float] | None:
        with self.db.read() as conn:
            row = maybe_one(
                conn, "SELECT output, expires_at FROM tool_cache WHERE tool = ? AND input_hash = ?", (tool, input_hash)
            )
        return None if row is None else (str(row[0]), float(row[1]))
