"""Pushing the outbox to the hub.

Outbox rows are read in order, each record's current state is sent by a Lua script that writes only a newer
version (so a retry after a crash between the write and the outbox delete adds nothing), and the rows are
deleted only once Redis answered. A session edited on both sides of a partition is settled in Redis: the
losing edit is kept as a conflict record, and a node whose edit lost takes the winner, unless it edited the
session again while the push was in flight: that newer edit stays queued and meets the winner in Redis next.
A clear is pushed like an edit (its tombstone row carries its version and base), so it is no conflict.
A session push retried after a crash between Redis's answer and the outbox delete carries an edit whose base
is its own stamp: the hub took it already, so it is no conflict, and the node takes the hub's later edit.
An edit's base is sent as a whole stamp (the version and the node that minted it), never a version alone,
with the hive epoch it was synced in, so an older edit the hub holds is told apart: a remnant of the base's
history (a restore) is written over, a new edit made into a flushed hub by a node that never saw the base is
a conflict.
On a hive with a key the pusher checks the hub's copy of each session first and sends a digest of it; a copy
changed between that check and the script leaves the edit queued (`SessionPush.COPY_CHANGED`). After Redis
decides against an edit, the node takes the hub's copy only if it is not older than the edit Redis decided
for (an older copy swapped in meanwhile is not taken; the edit stays queued).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text
from hivemind_app.hub.decode import fields_of
from hivemind_app.hub.pull import Puller
from hivemind_app.seed import SESSION_TTL_S
from hivemind_app.store.kinds import RecordKind, SessionPush
from hivemind_app.store.memory_store import MemoryStore
from hivemind_app.store.models import EmbeddingSpace
from hivemind_app.store.replica import OutboxRow

log = logging.getLogger(__name__)

PUSH_BATCH = 500
# The fields of a memory's hash in Redis, in the order the push script writes them.
MEMORY_FIELDS = (
    "text",
    "timestamp",
    "source",
    "sources",
    "tags",
    "session_id",
    "updated_at",
    "origin",
    "deleted",
    "model",
    "dim",
    "vector",
    "id",
    "born",
    "label_stamps",
    "project",
    "occurred_at",  # '' when the time the memory describes is not known
)


# The fields of a session's hash `PUSH_SESSION` reads to decide, in the order its digest takes them.
SESSION_COPY_FIELDS = ("version", "node", "base", "base_node", "epoch", "state", "cleared", "mac", "enc")


def copy_digest(fields: dict[str, bytes]) -> str:
    """The digest of the hub's copy of a session as the pusher checked it (`PUSH_SESSION` recomputes it with
    redis.sha1hex over the copy it holds: a mismatch means the copy changed between the check and the script).
    Each field length-prefixed (its byte length, ':'), an absent one as empty, so no two copies share a digest
    by shifting bytes between fields. sha1 is what Lua in Redis offers; it is compared for equality with a copy
    the pusher read, so a forger would need a second preimage, not a collision."""
    values = [fields.get(name) or b"" for name in SESSION_COPY_FIELDS]
    return hashlib.sha1(b"".join(str(len(v)).encode() + b":" + v for v in values)).hexdigest()


class Pusher:
    def __init__(self, channel: HubChannel, memories: MemoryStore, puller: Puller) -> None:
        self.channel = channel
        self.memories = memories
        self.puller = puller
        self.db = channel.db
        self.replica = channel.replica
        self.keys = channel.keys

    def push(self) -> tuple[int, int]:
        """Drain the outbox; returns (rows pushed, session conflicts found)."""
        pushed = conflicts = 0
        while True:
            rows = self.replica.outbox(PUSH_BATCH)
            if not rows:
                return pushed, conflicts
            found, deferred = self._push_rows(rows)
            conflicts += found
            done = [r.seq for r in rows if not (r.kind == RecordKind.SESSION and r.key in deferred)]
            self.replica.acknowledge(done)
            pushed += len(done)
            self.replica.set_state(last_push=time.time())
            self.channel.announce_changes()
            if deferred:  # their copies changed while they were pushed: checked again next pass, never in a spin
                return pushed, conflicts

    def _push_rows(self, rows: list[OutboxRow]) -> tuple[int, set[str]]:
        """Push these rows; returns (session conflicts found, sessions left queued: their hub copy changed
        between the check and the script)."""
        space = self.memories.active_space()
        seen: set[tuple[RecordKind, str]] = set()
        pipe = self.channel.client().pipeline(transaction=False)
        # (session, stamp sent, the newest outbox row it covers)
        sessions: list[tuple[str, tuple[int, str], int]] = []
        base_epoch = self.replica.state().get("hub_epoch", "")  # the epoch every base here was synced in
        hub = None
        if self.channel.seal is not None:  # the hub's copies checked first, so a changed one decides nothing
            session_ids = list(dict.fromkeys(r.key for r in rows if r.kind == RecordKind.SESSION))
            hub = self._hub_sessions(session_ids) if session_ids else None
        for row in reversed(rows):  # the newest row of a key wins; older duplicates coalesce into it
            if (row.kind, row.key) in seen:
                continue
            seen.add((row.kind, row.key))
            if row.kind == RecordKind.MEMORY:
                self._push_memory(pipe, row.key, space)
            elif row.kind == RecordKind.SESSION:
                sessions.append((row.key, self._push_session(pipe, row.key, base_epoch, hub), row.seq))
            elif row.kind == RecordKind.LEARNING:
                self._push_learning(pipe, int(row.key))
            elif row.kind == RecordKind.TOOLCACHE:
                self._push_tool(pipe, row.key)
        results = pipe.execute()
        session_results = [r for r in results if isinstance(r, list)]  # only the session script answers a list
        return self._settle_sessions(sessions, session_results)

    def _push_memory(self, pipe: Any, memory_id: str, space: EmbeddingSpace | None) -> None:
        fields = self.replica.memory_fields(memory_id, space)
        if fields is None:
            return
        if self.channel.seal is not None:  # hive.encrypt: the content as ciphertext (trust/records.py)
            fields = self.channel.seal.encrypt_memory(memory_id, fields)
        pairs: list[Any] = []
        for name in MEMORY_FIELDS:
            pairs += [name, fields[name]]
        if self.channel.seal is not None:  # trust/records.py: a MAC Redis cannot forge
            pairs += self.channel.seal.memory_pairs(fields)
        self.channel.script(RecordKind.MEMORY)(
            keys=[self.keys.embedding(memory_id), self.keys.memory_embeddings, self.keys.memory_changes],
            args=[
                memory_id,
                fields["version"],
                self.replica.zset_member(fields),
                fields["timestamp"],
                fields["node"],  # the stamp's node as the row has it (a re-pushed pull keeps its own)
                self.db.node_id,  # who pushes it: the feed entry's node, so the stamp's node reads a join
                *pairs,
            ],
            client=pipe,
        )

    def _hub_sessions(self, session_ids: list[str]) -> tuple[str, dict[str, tuple[str, str]]]:
        """On a node with the hive key, before its session pushes: the hive epoch, and for each session what
        this node found in the hub's copy (`PUSH_SESSION`'s check): 'ok:DIGEST' (it verifies), 'bad:DIGEST' (it
        does not: planted, or changed in Redis), 'none' (no copy); and the copy's MAC where it verified."""
        seal = self.channel.seal
        assert seal is not None
        pipe = self.channel.client().pipeline(transaction=False)
        pipe.get(self.keys.hive_epoch)
        for session_id in session_ids:
            pipe.hgetall(self.keys.session(session_id))
        epoch, *copies = pipe.execute()
        checks: dict[str, tuple[str, str]] = {}
        for session_id, raw in zip(session_ids, copies, strict=True):
            fields = fields_of(raw)
            if not fields:
                checks[session_id] = ("none", "")
            elif seal.session_problem(session_id, fields):
                checks[session_id] = ("bad:" + copy_digest(fields), "")
            else:  # its MAC verified: a conflict with it is sealed over it
                checks[session_id] = ("ok:" + copy_digest(fields), (fields.get("mac") or b"").decode("ascii"))
        return ("" if epoch is None else as_text(epoch)), checks

    def _push_session(
        self, pipe: Any, session_id: str, base_epoch: str, hub: tuple[str, dict[str, tuple[str, str]]] | None
    ) -> tuple[int, str]:
        """Queue the session's push (a cleared one as a marker); returns the stamp sent. `base_epoch`: the hive
        epoch this node last reconciled with, the one its base was synced in (`hub/scripts.py`); `hub`: the
        epoch and the check of the hub's copy (`_hub_sessions`), on a node with the hive key."""
        record = self.replica.session_fields(session_id)
        if record is None:  # cleared by a release that deleted the row: a marker based on nothing
            record = {
                "version": self.db.next_version_now(),
                "synced_version": None,
                "synced_node": "",
                "state": None,
                "node": self.db.node_id,
            }
        version, state = int(record["version"]), record["state"]
        base = str(record["synced_version"] or "")
        base_node = str(record["synced_node"]) if base else ""
        seal = self.channel.seal
        state_text = json.dumps(state or {}, ensure_ascii=False)
        pairs = []
        if state is not None:
            content = {
                "context": json.dumps(state["context"], ensure_ascii=False),
                "files": json.dumps(state["files"], ensure_ascii=False),
                "current_task": state["current_task"],
            }
            if seal is not None:  # hive.encrypt: the content as ciphertext, the seed's field names kept
                state_text = seal.encrypt_session_field(session_id, "state", state_text)
                content = {name: seal.encrypt_session_field(session_id, name, value) for name, value in content.items()}
            pairs = ["timestamp", str(state["timestamp"]), *(part for item in content.items() for part in item)]
        # sealed?, epoch to write, the check of the hub's copy, mac, enc, conflict MACs (ours wins, theirs wins)
        sealed = ["", "", "", "", "", "", ""]
        if seal is not None and hub is not None:  # trust/records.py: a MAC over what the script writes
            epoch, checks = hub
            enc = "1" if seal.encrypt and state is not None else ""
            written = {
                "version": str(version),
                "node": str(record["node"]),
                "state": state_text,
                "cleared": "1" if state is None else "",
                "base": base,
                "base_node": base_node,
                "epoch": epoch,
                "enc": enc,
            }
            check, theirs = checks[session_id]
            mac = seal.session_mac(session_id, written)
            won, lost = "", ""
            if theirs:
                won, lost = seal.conflict_mac(session_id, mac, theirs), seal.conflict_mac(session_id, theirs, mac)
            sealed = ["1", epoch, check, mac, enc, won, lost]
        self.channel.script(RecordKind.SESSION)(
            keys=[
                self.keys.session(session_id),
                self.keys.session_conflicts,
                self.keys.memory_changes,
                self.keys.hive_epoch,
            ],
            args=[
                session_id,
                str(version),
                base,
                state_text,
                SESSION_TTL_S,
                record["node"],
                "1" if state is None else "0",
                base_node,
                base_epoch,
                *sealed,
                *pairs,
            ],
            client=pipe,
        )
        return version, str(record["node"])

    def _settle_sessions(
        self, sessions: list[tuple[str, tuple[int, str], int]], results: list[list[Any]]
    ) -> tuple[int, set[str]]:
        """Record what Redis decided for each pushed session; a lost edit is kept as a conflict. Returns (conflicts
        found, sessions whose hub copy changed after this node checked it: left queued, nothing written)."""
        conflicts = 0
        deferred: set[str] = set()
        for (session_id, (version, node), upto_seq), result in zip(sessions, results, strict=True):
            outcome = SessionPush(int(result[0]))
            if outcome is SessionPush.COPY_CHANGED:
                log.warning("session %s changed in the hub while this node pushed it; pushing it again", session_id)
                deferred.add(session_id)
                continue
            if outcome is SessionPush.LOST_CONFLICT or len(result) > 1:
                # theirs is newer: take it; ours is in the conflict record, or (a retried push) the hub took
                # it before and moved on. Unless we edited it again while this push was in flight: that edit
                # meets theirs next push.
                decided = (int(result[1]), as_text(result[2])) if len(result) > 2 else None
                if not self.puller.apply_session(session_id, force=True, pushed_upto=upto_seq, at_least=decided):
                    deferred.add(session_id)  # an older copy swapped in: ours stays queued, never rolled back
                    conflicts += outcome.conflict
                    continue
            else:
                with self.db.write() as conn:
                    self.replica.mark_session_synced(conn, session_id, version, node)
            if outcome.conflict:
                conflicts += 1
                log.warning("session %s was edited on two nodes while apart; kept both (see `conflicts`)", session_id)
        return conflicts, deferred

    def _push_learning(self, pipe: Any, entry_id: int) -> None:
        entry = self.replica.learning_entry(entry_id)
        if entry is None:
            return
        uid = f"{self.db.node_id}:{entry_id}"
        pairs: list[Any] = []
        sent = {**entry, "node": self.db.node_id, "uid": uid}
        if self.channel.seal is not None:  # trust/records.py: encrypted (hive.encrypt), then sealed
            sent = self.channel.seal.encrypt_learning(sent)
            sent["mac"] = self.channel.seal.learning_mac(sent)
        for name, value in sent.items():
            pairs += [name, value]
        self.channel.script(RecordKind.LEARNING)(
            keys=[self.keys.learning_pushed(uid), self.keys.learning_queue],
            args=[self.channel.settings.redis.learning_maxlen, *pairs],
            client=pipe,
        )

    def _push_tool(self, pipe: Any, key: str) -> None:
        tool, _, input_hash = key.partition("\x1f")
        found = self.replica.tool_output(tool, input_hash)
        if found is None:
            return
        output, expires_at = found
        ttl = int(expires_at - time.time())
        if self.channel.seal is not None:  # hive.encrypt: the output as ciphertext (trust/records.py)
            output = self.channel.seal.encrypt_tool_output(tool, input_hash, output)
        if ttl > 0:
            pipe.set(self.keys.tool(tool, input_hash), output, ex=ttl)
