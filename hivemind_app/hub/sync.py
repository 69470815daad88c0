"""Sync of the local mirror with the hub: push the outbox, pull the change feed, settle session conflicts.

Push: outbox rows are read in order, each record's current state is sent by a Lua script that writes only
a newer version (so a retry after a crash between the write and the outbox delete adds nothing), and the
rows are deleted only once Redis answered. Pull: the change feed (a stream with server-assigned ids) is read
from the cursor stored in SQLite; each record is applied and the cursor moved in one transaction.

Offline: a failed connection is reported once, not once per call; the next attempt waits a capped,
jittered, growing backoff that is kept in SQLite, so short-lived CLI processes respect it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from hivemind_app.config import Settings
from hivemind_app.errors import HubError
from hivemind_app.hub.connection import connect, describe_endpoint, explain
from hivemind_app.hub.keys import HEARTBEAT_TTL_BEATS, SESSION_TTL_S, Keys
from hivemind_app.hub.scripts import PUSH_LEARNING, PUSH_MEMORY, PUSH_SESSION
from hivemind_app.store.database import Database
from hivemind_app.store.memory_store import MemoryStore
from hivemind_app.store.replica import OutboxRow, Replica

log = logging.getLogger(__name__)

PUSH_BATCH = 500
PULL_BATCH = 1000
MAX_BACKOFF_S = 10.0


@dataclass
class SyncReport:
    online: bool
    pushed: int = 0
    pulled: int = 0
    conflicts: int = 0
    error: str | None = None
    repaired: dict[str, int] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class HubSync:
    def __init__(self, settings: Settings, db: Database, memories: MemoryStore) -> None:
        if settings.redis.url is None:
            raise HubError("No hub configured: set redis.url.")
        self.settings = settings
        self.db = db
        self.memories = memories
        self.replica = Replica(db)
        self.keys = Keys(settings.redis.prefix)
        self.url = settings.redis.url.get_secret_value()
        self.endpoint = describe_endpoint(self.url)
        self._client: Any = None
        self._pubsub: Any = None
        self._scripts: dict[str, Any] = {}

    # -- connection and offline state -----------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.settings.redis, self.url)
            self._scripts = {
                "memory": self._client.register_script(PUSH_MEMORY),
                "session": self._client.register_script(PUSH_SESSION),
                "learning": self._client.register_script(PUSH_LEARNING),
            }
        return self._client

    def retarget(self, url: str) -> None:
        """Talk to the hub at another URL from now on (a test's partition, a moved NAS)."""
        self.close()
        self.url = url
        self.endpoint = describe_endpoint(url)
        self.replica.set_state(retry_at=0)

    def close(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _went_offline(self, exc: Exception) -> str:
        import redis

        reason = explain(exc, self.url, self.settings.redis.connect_timeout_s)
        state = self.replica.state()
        failures = int(state.get("consecutive_failures", "0")) + 1
        backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** min(failures, 8)) * random.uniform(0.8, 1.2)
        if state.get("online", "1") == "1":
            log.warning("%s Working offline: writes are kept locally and pushed when it is back.", reason)
        self.replica.set_state(
            online=0,
            offline_since=state.get("offline_since") if state.get("online") == "0" else time.time(),
            retry_at=time.time() + backoff,
            consecutive_failures=failures,
            last_error=reason,
        )
        self.replica.bump("failed_syncs")
        if isinstance(exc, redis.AuthenticationError):
            self.close()
        return reason

    def _came_online(self) -> None:
        state = self.replica.state()
        if state.get("online") == "0":
            log.warning("Redis at %s is back; catching up.", self.endpoint)
        if state.get("online") != "1" or state.get("consecutive_failures", "0") != "0":
            self.replica.set_state(online=1, consecutive_failures=0, retry_at=0, last_error="")

    def should_try(self) -> bool:
        return float(self.replica.state().get("retry_at", "0")) <= time.time()

    # -- one pass -------------------------------------------------------------------------------------

    def sync_once(self, push: bool = True, pull: bool = True, force: bool = False) -> SyncReport:
        """Push the outbox, pull the feed. Never raises for connectivity: the report says what happened."""
        import redis

        if not force and not self.should_try():
            return SyncReport(online=False, error=self.replica.state().get("last_error") or "waiting to retry")
        report = SyncReport(online=True)
        try:
            client = self.client()
            client.ping()
            if pull and "feed_cursor" not in self.replica.state():
                self._first_contact()  # a push-only pass (after a write, in a hook) never bootstraps
            if push:
                report.pushed, report.conflicts = self.push()
            if pull:
                report.pulled = self.pull()
                if push and self.replica.outbox_depth():  # merges made while applying go out at once
                    pushed, conflicts = self.push()
                    report.pushed += pushed
                    report.conflicts += conflicts
            self._mirror_conflicts()
        except redis.RedisError as exc:
            report.online = False
            report.error = self._went_offline(exc)
            return report
        self._came_online()
        return report

    def _first_contact(self) -> None:
        """A node new to this hub pushes its whole history, then bootstraps from what the hub holds."""
        client = self.client()
        self.replica.enqueue_all_memories()
        last = client.xrevrange(self.keys.memory_changes, count=1)
        cursor = _text(last[0][0]) if last else "0-0"
        # every record, tombstones included (the ZSET holds live memories only): a node that joins with
        # old copies of memories deleted meanwhile must learn of those deletes too
        prefix_len = len(self.keys.embedding(""))
        ids = [_text(k)[prefix_len:] for k in client.scan_iter(match=self.keys.embedding_pattern, count=1000)]
        for start in range(0, len(ids), PULL_BATCH):
            self._apply_memories(ids[start : start + PULL_BATCH])
        prefix = self.keys.session("")
        for key in client.scan_iter(match=prefix + "*", count=1000):
            self._apply_session_from_hub(client, _text(key)[len(prefix) :])
        self.replica.set_state(feed_cursor=cursor)

    # -- push -----------------------------------------------------------------------------------------

    def push(self) -> tuple[int, int]:
        pushed = conflicts = 0
        while True:
            rows = self.replica.outbox(PUSH_BATCH)
            if not rows:
                return pushed, conflicts
            conflicts += self._push_rows(rows)
            self.replica.acknowledge([r.seq for r in rows])
            pushed += len(rows)
            self.replica.set_state(last_push=time.time())
            self.client().publish(self.keys.events, json.dumps({"kind": "changes", "node": self.db.node_id}))

    def _push_rows(self, rows: list[OutboxRow]) -> int:
        client = self.client()
        space = self.memories.active_space()
        seen: set[tuple[str, str]] = set()
        pipe = client.pipeline(transaction=False)
        sessions: list[tuple[str, int]] = []
        for row in reversed(rows):  # the newest row of a key wins; older duplicates coalesce into it
            if (row.kind, row.key) in seen:
                continue
            seen.add((row.kind, row.key))
            if row.kind == "memory":
                self._push_memory(pipe, row.key, space)
            elif row.kind == "session":
                version = self._push_session(pipe, row.key)
                if version is not None:
                    sessions.append((row.key, version))
            elif row.kind == "learning":
                self._push_learning(pipe, int(row.key))
            elif row.kind == "toolcache":
                self._push_tool(pipe, row.key)
        results = pipe.execute()
        session_results = [r for r in results if isinstance(r, list)]
        return self._settle_sessions(sessions, session_results)

    def _push_memory(self, pipe: Any, memory_id: str, space: Any) -> None:
        fields = self.replica.memory_fields(memory_id, space)
        if fields is None:
            return
        pairs: list[Any] = []
        for name in (
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
        ):
            pairs += [name, fields[name]]
        self._scripts["memory"](
            keys=[self.keys.embedding(memory_id), self.keys.memory_embeddings, self.keys.memory_changes],
            args=[
                memory_id,
                fields["version"],
                self.replica.zset_member(fields),
                fields["timestamp"],
                self.db.node_id,
                *pairs,
            ],
            client=pipe,
        )

    def _push_session(self, pipe: Any, session_id: str) -> int | None:
        record = self.replica.session_fields(session_id)
        cleared = record is None
        if cleared:
            version = self.db.next_version_now()
            state: dict[str, Any] = {}
            base = ""
        else:
            assert record is not None
            version = int(record["version"])
            state = record["state"]
            base = str(record["synced_version"] or "")
        pairs: list[Any] = []
        if not cleared:
            pairs = [
                "timestamp",
                str(state["timestamp"]),
                "context",
                json.dumps(state["context"], ensure_ascii=False),
                "files",
                json.dumps(state["files"], ensure_ascii=False),
                "current_task",
                state["current_task"],
            ]
        self._scripts["session"](
            keys=[self.keys.session(session_id), self.keys.session_conflicts, self.keys.memory_changes],
            args=[
                session_id,
                str(version),
                base,
                json.dumps(state, ensure_ascii=False),
                SESSION_TTL_S,
                self.db.node_id,
                "1" if cleared else "0",
                *pairs,
            ],
            client=pipe,
        )
        return version

    def _settle_sessions(self, sessions: list[tuple[str, int]], results: list[list[Any]]) -> int:
        """Record what Redis decided for each pushed session; a lost edit is kept as a conflict."""
        conflicts = 0
        client = self.client()
        for (session_id, version), result in zip(sessions, results, strict=True):
            outcome = int(result[0])
            if outcome == 3:  # theirs is newer: take it, ours is in the conflict record
                self._apply_session_from_hub(client, session_id, force=True)
            else:
                with self.db.write() as conn:
                    self.replica.mark_session_synced(conn, session_id, version)
            if outcome in (2, 3):
                conflicts += 1
                log.warning("session %s was edited on two nodes while apart; kept both (see `conflicts`)", session_id)
        return conflicts

    def _push_learning(self, pipe: Any, entry_id: int) -> None:
        entry = self.replica.learning_entry(entry_id)
        if entry is None:
            return
        uid = f"{self.db.node_id}:{entry_id}"
        pairs: list[Any] = []
        for name, value in {**entry, "node": self.db.node_id, "uid": uid}.items():
            pairs += [name, value]
        self._scripts["learning"](
            keys=[self.keys.learning_pushed(uid), self.keys.learning_queue],
            args=[self.settings.redis.learning_maxlen, *pairs],
            client=pipe,
        )

    def _push_tool(self, pipe: Any, key: str) -> None:
        tool, _, input_hash = key.partition("\x1f")
        found = self.replica.tool_output(tool, input_hash)
        if found is None:
            return
        output, expires_at = found
        ttl = int(expires_at - time.time())
        if ttl > 0:
            pipe.set(self.keys.tool(tool, input_hash), output, ex=ttl)

    # -- pull -----------------------------------------------------------------------------------------

    def pull(self) -> int:
        client = self.client()
        applied = 0
        while True:
            cursor = self.replica.state().get("feed_cursor", "0-0")
            answer = client.xread({self.keys.memory_changes: cursor}, count=PULL_BATCH)
            if not answer:
                self.replica.set_state(last_pull=time.time())
                return applied
            entries = answer[0][1]
            memory_ids: list[str] = []
            session_ids: list[str] = []
            for _, data in entries:
                fields = {_text(k): _text(v) for k, v in data.items()}
                if fields.get("node") == self.db.node_id:
                    continue  # our own write coming back
                (memory_ids if fields.get("kind") == "memory" else session_ids).append(fields.get("id", ""))
            new_cursor = _text(entries[-1][0])
            # Sessions first: the cursor moves with the memories' transaction, after everything it covers.
            for session_id in dict.fromkeys(session_ids):
                self._apply_session_from_hub(client, session_id)
            applied += self._apply_memories(list(dict.fromkeys(memory_ids)), cursor=new_cursor)
            if not memory_ids:
                self.replica.set_state(feed_cursor=new_cursor)

    def _apply_memories(self, ids: list[str], cursor: str | None = None) -> int:
        if not ids:
            return 0
        client = self.client()
        pipe = client.pipeline(transaction=False)
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
                record = {_text(k): (v if _text(k) == "vector" else _text(v)) for k, v in raw.items()}
                try:
                    outcome = self.replica.apply_memory(conn, record, space)
                except (KeyError, ValueError) as exc:
                    failed += 1
                    log.warning("could not apply memory %s from the hub: %s", record.get("id"), exc)
                    continue
                applied += outcome in ("applied", "deleted", "merged")
            if cursor is not None:
                self.replica.set_state(conn, feed_cursor=cursor)
        if failed:
            self.replica.bump("failed_applies", failed)
        return applied

    def _apply_session_from_hub(self, client: Any, session_id: str, force: bool = False) -> None:
        raw = {_text(k): _text(v) for k, v in client.hgetall(self.keys.session(session_id)).items()}
        if not raw:
            return
        version = int(raw["version"])
        state = None if raw.get("cleared") == "1" else json.loads(raw.get("state") or "{}")
        with self.db.write() as conn:
            if force:
                conn.execute("DELETE FROM outbox WHERE kind = 'session' AND key = ?", (session_id,))
            self.replica.apply_session(conn, session_id, version, state, force=force)

    def _mirror_conflicts(self) -> None:
        raw = self.client().hgetall(self.keys.session_conflicts)
        conflicts = {}
        for key, value in raw.items():
            record = json.loads(_text(value))
            conflicts[_text(key)] = {
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

    # -- heartbeats -----------------------------------------------------------------------------------

    def heartbeat(self, info: dict[str, Any], beat_s: float) -> None:
        """Refresh this node in nodes:active, its expiring heartbeat key, and its model in models:active."""
        client = self.client()
        node_id = self.db.node_id
        pipe = client.pipeline(transaction=True)
        pipe.sadd(self.keys.nodes_active, node_id)
        pipe.set(
            self.keys.node_heartbeat(node_id),
            json.dumps({**info, "at": time.time()}),
            px=int(beat_s * HEARTBEAT_TTL_BEATS * 1000),
        )
        if info.get("model"):
            pipe.hset(self.keys.models_active, info.get("name", node_id), str(info["model"]))
        pipe.execute()

    def outbox_depth(self) -> int:
        return self.replica.outbox_depth()

    def wait_for_nudge(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` for another node's change announcement on channel:events."""
        if self._pubsub is None:
            self._pubsub = self.client().pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(self.keys.events)
        message = self._pubsub.get_message(timeout=timeout_s)
        if not message:
            return False
        try:
            event = json.loads(_text(message["data"]))
        except (ValueError, TypeError):
            return False
        return bool(event.get("node") != self.db.node_id)

    def drop_nudges(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                self._pubsub.close()
            self._pubsub = None

    def live_nodes(self) -> list[dict[str, Any]]:
        """Nodes whose heartbeat key has not expired; stale members of nodes:active are dropped."""
        client = self.client()
        members = [_text(m) for m in client.smembers(self.keys.nodes_active)]
        beats = client.mget([self.keys.node_heartbeat(m) for m in members]) if members else []
        alive = []
        for member, beat in zip(members, beats, strict=True):
            if beat is None:
                client.srem(self.keys.nodes_active, member)
            else:
                alive.append({"node_id": member, **json.loads(_text(beat))})
        return alive

    # -- conflicts, reads, status ---------------------------------------------------------------------

    def resolve_conflict(self, session_id: str, keep: str) -> dict[str, Any]:
        """Keep A (the winner, already everywhere) or B (the loser: written again as the newest edit)."""
        conflicts = self.replica.conflicts()
        if session_id not in conflicts:
            raise HubError(f"Session {session_id!r} has no conflict to resolve.")
        record = conflicts[session_id]
        if keep == "B":
            loser = record["loser"]["state"]
            from hivemind_app.store.local_state import LocalState

            LocalState(self.db).replace_session(session_id, loser)
            self.sync_once(pull=False, force=True)
        self.client().hdel(self.keys.session_conflicts, session_id)
        self._mirror_conflicts()
        return record

    def get_tool_output(self, tool: str, input_hash: str) -> str | None:
        value = self.client().get(self.keys.tool(tool, input_hash))
        return None if value is None else _text(value)

    def verify(self, repair: bool = True) -> dict[str, int]:
        """Anti-entropy: compare every memory's version here and in Redis; repair what differs."""
        client = self.client()
        local = self.replica.memory_versions()
        remote: dict[str, int] = {}
        pattern = self.keys.embedding_pattern
        prefix_len = len(pattern) - 1
        keys = [_text(k) for k in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            pipe = client.pipeline(transaction=False)
            chunk = keys[start : start + 1000]
            for key in chunk:
                pipe.hget(key, "version")
            for key, version in zip(chunk, pipe.execute(), strict=True):
                if version is not None:
                    remote[key[prefix_len:]] = int(_text(version))
        push = [i for i, v in local.items() if i not in remote or v > remote[i]]
        pull = [i for i, v in remote.items() if i not in local or v > local[i]]
        digest_local = hashlib.sha256(json.dumps(sorted(local.items())).encode()).hexdigest()[:16]
        digest_remote = hashlib.sha256(json.dumps(sorted(remote.items())).encode()).hexdigest()[:16]
        result = {
            "local": len(local),
            "remote": len(remote),
            "to_push": len(push),
            "to_pull": len(pull),
            "in_sync": int(digest_local == digest_remote),
        }
        if repair and (push or pull):
            with self.db.write() as conn:
                for memory_id in push:
                    self.db.enqueue(conn, "memory", memory_id)
            self.push()
            for start in range(0, len(pull), PULL_BATCH):
                self._apply_memories(pull[start : start + PULL_BATCH])
            log.warning("anti-entropy repaired drift: pushed %d, pulled %d memories", len(push), len(pull))
        self.replica.set_state(last_verify=time.time(), last_verify_result=json.dumps(result))
        return result

    def status(self) -> dict[str, Any]:
        state = self.replica.state()
        queue_len = None
        if state.get("online", "1") == "1" and self._client is not None:
            with contextlib.suppress(Exception):
                queue_len = int(self._client.xlen(self.keys.learning_queue))
        return {
            "configured": True,
            "endpoint": self.endpoint,
            "online": state.get("online", "1") == "1",
            "outbox": self.replica.outbox_depth(),
            "feed_cursor": state.get("feed_cursor"),
            "last_push": float(state["last_push"]) if state.get("last_push") else None,
            "last_pull": float(state["last_pull"]) if state.get("last_pull") else None,
            # how stale this mirror may be: seconds since it last read the change feed
            "lag_s": round(time.time() - float(state["last_pull"]), 1) if state.get("last_pull") else None,
            "offline_since": float(state["offline_since"]) if state.get("online") == "0" else None,
            "last_error": state.get("last_error") or None,
            "failed_syncs": int(state.get("failed_syncs", "0")),
            "failed_applies": int(state.get("failed_applies", "0")),
            "conflicts": len(self.replica.conflicts()),
            "learning_queue_len": queue_len,
            "last_verify": json.loads(state["last_verify_result"]) if state.get("last_verify_result") else None,
        }
