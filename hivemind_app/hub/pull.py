"""Pulling from the hub: tail the change feed from the cursor kept in SQLite, bootstrap a node new to the hub,
and mirror the hub's session conflicts.

The change feed is a stream with server-assigned ids. Each batch's records are applied and the cursor moved
in one transaction, so a crash never leaves a change applied but the cursor behind it (or the reverse).

Every record read from Redis (feed entries, memory and session hashes, conflict records) passes through
`hub/decode.py` first. One that fails is quarantined (`store/quarantine.py`: key, raw value, reason, time) in
the same transaction as the cursor move, and the rest applies: a bad record never stops the feed or a
bootstrap. Each memory applies inside a savepoint, so one that fails half-way leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import apsw

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text
from hivemind_app.hub.decode import BadRecord, fields_of, parse_conflict, parse_feed_entry, parse_memory, parse_session
from hivemind_app.store.kinds import RecordKind
from hivemind_app.store.memory_store import MemoryStore

log = logging.getLogger(__name__)

PULL_BATCH = 1000
# (key, raw fields, reason) of a record refused before its transaction began
Refusal = tuple[str, dict[str, bytes], str]


class Puller:
    def __init__(self, channel: HubChannel, memories: MemoryStore) -> None:
        self.channel = channel
        self.memories = memories
        self.db = channel.db
        self.replica = channel.replica
        self.keys = channel.keys
        self.quarantine = channel.replica.quarantine

    def refuse(self, conn: apsw.Connection, key: str, raw: dict[str, bytes], reason: str) -> None:
        """Quarantine a record that failed validation (warned about once, however often it is read)."""
        if self.quarantine.add(conn, key, raw, reason):
            log.warning(
                "quarantined %s from the hub: %s (see `hivemind-app sync --quarantined`)", key, reason.rstrip(".")
            )

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
            memory_ids, session_ids, refused = self._others_writes(entries)
            new_cursor = as_text(entries[-1][0])
            # Sessions first: the cursor moves with the memories' transaction, after everything it covers.
            for session_id in dict.fromkeys(session_ids):
                self.apply_session(session_id)
            applied += self.apply_memories(list(dict.fromkeys(memory_ids)), cursor=new_cursor, refused=refused)

    def _others_writes(self, entries: list[Any]) -> tuple[list[str], list[str], list[Refusal]]:
        """The memory ids and session ids of feed entries written by other nodes (ours come back too), and
        the entries that are not feed entries at all."""
        memory_ids: list[str] = []
        session_ids: list[str] = []
        refused: list[Refusal] = []
        for entry_id, data in entries:
            try:
                kind, record_id, node = parse_feed_entry(data)
            except BadRecord as exc:
                key = self.keys.entry(self.keys.memory_changes, as_text(entry_id))
                refused.append((key, fields_of(data), f"a change-feed entry: {exc}"))
                continue
            if node == self.db.node_id:
                continue  # our own write coming back
            (memory_ids if kind == RecordKind.MEMORY else session_ids).append(record_id)
        return memory_ids, session_ids, refused

    def bootstrap(self) -> None:
        """Apply every record the hub holds and start the cursor at the feed's end (a reconcile, `hub/epoch.py`,
        queues this node's whole history for the push that follows)."""
        client = self.channel.client()
        last = client.xrevrange(self.keys.memory_changes, count=1)
        cursor = as_text(last[0][0]) if last else "0-0"
        if not last and client.exists(self.keys.memory_changes):  # an empty feed: past every trimmed entry
            cursor = as_text(client.xinfo_stream(self.keys.memory_changes).get("last-generated-id") or "0-0")
        # every record, tombstones included (the ZSET holds live memories only): a node that joins with
        # old copies of memories deleted meanwhile must learn of those deletes too
        keys = self.keys
        ids = [keys.embedding_id(as_text(k)) for k in client.scan_iter(match=keys.embedding_pattern, count=1000)]
        for start in range(0, len(ids), PULL_BATCH):
            self.apply_memories(ids[start : start + PULL_BATCH])
        for key in client.scan_iter(match=keys.session_pattern, count=1000):
            self.apply_session(keys.session_id(as_text(key)))
        self.replica.set_state(feed_cursor=cursor)

    def apply_memories(
        self,
        ids: list[str],
        cursor: str | None = None,
        refused: list[Refusal] | None = None,
        force: bool = False,
    ) -> int:
        """Read these memories from the hub and apply them (quarantining the bad ones, with `refused`, and moving
        the cursor) in one transaction; returns how many changed the mirror (`force`: take the hub's copy at an
        equal stamp too, as verify does where the contents differ)."""
        if not ids and cursor is None and not refused:
            return 0
        records: list[Any] = []
        if ids:
            pipe = self.channel.client().pipeline(transaction=False)
            for memory_id in ids:
                pipe.hgetall(self.keys.embedding(memory_id))
            records = pipe.execute()
        space = self.memories.active_space()
        applied = 0
        failed = 0
        with self.db.write() as conn:
            for key, raw, reason in refused or []:
                self.refuse(conn, key, raw, reason)
            for memory_id, raw in zip(ids, records, strict=True):
                if not raw:
                    continue
                key = self.keys.embedding(memory_id)
                fields = fields_of(raw)
                try:
                    record = parse_memory(memory_id, fields, self.channel.seal)
                except BadRecord as exc:
                    self.refuse(conn, key, fields, f"a memory: {exc}")
                    continue
                try:
                    with conn:  # a savepoint: a record that fails half-way leaves nothing of itself behind
                        applied += self.replica.apply_memory(conn, record, space, force=force).changed
                        self.quarantine.release(conn, key)
                except (KeyError, ValueError, TypeError) as exc:
                    failed += 1
                    self.refuse(conn, key, fields, f"a memory that could not be applied: {exc}")
            if cursor is not None:
                self.replica.set_state(conn, feed_cursor=cursor)
        if failed:
            self.replica.bump("failed_applies", failed)
        return applied

    def apply_session(
        self, session_id: str, force: bool = False, pushed_upto: int = 0, at_least: tuple[int, str] | None = None
    ) -> bool:
        """Take the hub's copy of a session (`force`: Redis decided against our edit pushed with the outbox rows up
        to `pushed_upto`, which it keeps as a conflict; an edit queued after those is kept). `at_least`: the stamp
        of the edit Redis decided for; a copy older than that (an older edit put in its place in Redis since) is
        not taken, and False says so: the caller keeps its edit queued. Returns whether it was taken."""
        key = self.keys.session(session_id)
        fields = fields_of(self.channel.client().hgetall(key))
        if not fields:
            return at_least is None
        with self.db.write() as conn:
            try:
                session = parse_session(fields, self.channel.seal, session_id)
            except BadRecord as exc:
                self.refuse(conn, key, fields, f"a session: {exc}")
                return at_least is None
            if at_least is not None and (session.version, session.node) < at_least:
                log.warning(
                    "session %s: the hub's copy (stamp %d) is older than the edit Redis decided for (%d), an "
                    "older edit put back in Redis: not taken; this node's edit stays queued",
                    session_id,
                    session.version,
                    at_least[0],
                )
                return False
            if force:
                self.replica.drop_pending(conn, RecordKind.SESSION, session_id, pushed_upto)
            self.replica.apply_session(conn, session_id, session, force=force)
            self.quarantine.release(conn, key)
        return True

    def mirror_conflicts(self) -> None:
        """Copy the hub's conflict records into the mirror exactly (resolved ones disappear, bad ones are
        quarantined: on a node with the hive key, one whose sides' MACs do not verify is never shown)."""
        raw = self.channel.client().hgetall(self.keys.session_conflicts)
        conflicts = {}
        refused: list[Refusal] = []
        for field, value in raw.items():
            session_id = as_text(field)
            try:
                conflicts[session_id] = parse_conflict(value, self.channel.seal, session_id)
                conflicts[session_id]["hub_record"] = as_text(value)  # as the hub held it: its MACs, to publish again
            except BadRecord as exc:
                key = self.keys.entry(self.keys.session_conflicts, session_id)
                refused.append((key, {"value": value if isinstance(value, bytes) else str(value).encode()}, str(exc)))
        self.replica.set_conflicts(conflicts)
        if refused:
            with self.db.write() as conn:
                for key, fields, reason in refused:
                    self.refuse(conn, key, fields, f"a session conflict record: {reason}")
