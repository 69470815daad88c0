"""Pulling from the hub: tail the change feed from the cursor kept in SQLite, bootstrap a node new to the hub,
and mirror the hub's session conflicts.

The change feed is a stream with server-assigned ids. Each batch's records are applied and the cursor moved
in one transaction, so a crash never leaves a change applied but the cursor behind it (or the reverse).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text
from hivemind_app.store.kinds import RecordKind
from hivemind_app.store.memory_store import MemoryStore

log = logging.getLogger(__name__)

PULL_BATCH = 1000


class Puller:
    def __init__(self, channel: HubChannel, memories: MemoryStore) -> None:
        self.channel = channel
        self.memories = memories
        self.db = channel.db
        self.replica = channel.replica
        self.keys = channel.keys

    def pull(self) -> int:
        """Apply every change-feed entry after the cursor that another node wrote; returns how many changed."""
        client = self.channel.client()
        applied = 0
        while True:
            cursor = self.replica.state().get("feed_cursor", "0-0")
            answer = client.xread({self.keys.memory_changes: cursor}, count=PULL_BATCH)
            if not answer:
                self.replica.set_state(last_pull=time.time())
                return applied
            entries = answer[0][1]
            memory_ids, session_ids = self._others_writes(entries)
            new_cursor = as_text(entries[-1][0])
            # Sessions first: the cursor moves with the memories' transaction, after everything it covers.
            for session_id in dict.fromkeys(session_ids):
                self.apply_session(session_id)
            applied += self.apply_memories(list(dict.fromkeys(memory_ids)), cursor=new_cursor)
            if not memory_ids:
                self.replica.set_state(feed_cursor=new_cursor)

    def _others_writes(self, entries: list[Any]) -> tuple[list[str], list[str]]:
        """The memory ids and session ids of feed entries written by other nodes (ours come back too)."""
        memory_ids: list[str] = []
        session_ids: list[str] = []
        for _, data in entries:
            fields = {as_text(k): as_text(v) for k, v in data.items()}
            if fields.get("node") == self.db.node_id:
                continue  # our own write coming back
            (memory_ids if fields.get("kind") == RecordKind.MEMORY else session_ids).append(fields.get("id", ""))
        return memory_ids, session_ids

    def first_contact(self) -> None:
        """A node new to this hub pushes its whole history, then bootstraps from what the hub holds."""
        client = self.channel.client()
        self.replica.enqueue_all_memories()
        last = client.xrevrange(self.keys.memory_changes, count=1)
        cursor = as_text(last[0][0]) if last else "0-0"
        # every record, tombstones included (the ZSET holds live memories only): a node that joins with
        # old copies of memories deleted meanwhile must learn of those deletes too
        prefix_len = len(self.keys.embedding(""))
        ids = [as_text(k)[prefix_len:] for k in client.scan_iter(match=self.keys.embedding_pattern, count=1000)]
        for start in range(0, len(ids), PULL_BATCH):
            self.apply_memories(ids[start : start + PULL_BATCH])
        prefix = self.keys.session("")
        for key in client.scan_iter(match=prefix + "*", count=1000):
            self.apply_session(as_text(key)[len(prefix) :])
        self.replica.set_state(feed_cursor=cursor)

    def apply_memories(self, ids: list[str], cursor: str | None = None) -> int:
        """Read these memories from the hub and apply them (and move the cursor) in one transaction."""
        if not ids:
            return 0
        pipe = self.channel.client().pipeline(transaction=False)
        for memory_id in ids:
            pipe.hgetall(self.keys.embedding(memory_id))
        records = pipe.execute()
        space = self.memories.active_space()
        applied = 0
        failed = 0
        with self.db.write() as conn:
            for raw in records:
                if not raw:
                    continue
                record = {as_text(k): (v if as_text(k) == "vector" else as_text(v)) for k, v in raw.items()}
                try:
                    outcome = self.replica.apply_memory(conn, record, space)
                except (KeyError, ValueError) as exc:
                    failed += 1
                    log.warning("could not apply memory %s from the hub: %s", record.get("id"), exc)
                    continue
                applied += outcome.changed
            if cursor is not None:
                self.replica.set_state(conn, feed_cursor=cursor)
        if failed:
            self.replica.bump("failed_applies", failed)
        return applied

    def apply_session(self, session_id: str, force: bool = False) -> None:
        """Take the hub's copy of a session (`force`: Redis decided against our edit, which it keeps as a conflict)."""
        raw = {as_text(k): as_text(v) for k, v in self.channel.client().hgetall(self.keys.session(session_id)).items()}
        if not raw:
            return
        version = int(raw["version"])
        state = None if raw.get("cleared") == "1" else json.loads(raw.get("state") or "{}")
        with self.db.write() as conn:
            if force:
                self.replica.drop_pending(conn, RecordKind.SESSION, session_id)
            self.replica.apply_session(conn, session_id, version, state, force=force)

    def mirror_conflicts(self) -> None:
        """Copy the hub's conflict records into the mirror exactly (resolved ones disappear)."""
        raw = self.channel.client().hgetall(self.keys.session_conflicts)
        conflicts = {}
        for key, value in raw.items():
            record = json.loads(as_text(value))
            conflicts[as_text(key)] = {
                "winner": {
                    "version": record["winner_version"],
                    "node": record["winner_node"],
                    "state": json.loads(record["winner"] or "{}"),
                },
                "loser": {
                    "version": record["loser_version"],
                    "node": record["loser_node"],
                    "state": json.loads(record["loser"] or "{}"),
                },
            }
        self.replica.set_conflicts(conflicts)
