"""A model of hive sync under faults: three nodes (Hive objects, each with its own data dir) on one real
redis-server, the operations and faults that can happen to them, and the invariants that must hold once
every node is healed and has synced. `tests/hub/test_sync_model.py` drives it with hypothesis;
`bench/chaos.py` drives it with a seeded random walk for a given time.

What it keeps (the model): every acknowledged write, i.e. every call that returned, with the version the
node gave it (read from the node's own store right after the write, before its push). For a memory the
system's order is the version: the write with the highest version decides whether it is live, and its
tags and sources are those of the stores newer than its newest delete. For a session each edit also keeps
the version the node held before it (its parent): the edit with the highest version must be everywhere,
and an edit outside the winner's ancestry whose state differs from the winner's (a divergence) must be
flagged as a conflict on every node; a session whose edits form one line must not be.

The invariants (`World.check`, after `World.heal_and_sync`: Redis up, every node back on it, each syncing
until its outbox is empty, twice around and on until a round pushes and pulls nothing; after a record was
damaged in place, each node also runs its anti-entropy pass, the only part of sync that can see such drift):

- drained: every sync pass returns (no exception), every outbox empties, and syncing comes to rest;
- converged: each node holds exactly the hub's memories (ids, tombstones, text, tags, sources, version);
- no-lost-write / no-resurrection: a memory whose newest write is a store is live everywhere and in the hub,
  one whose newest write is a delete is live nowhere;
- labels: a live memory's tags and sources are those the model expects (stores after the newest delete);
- sessions-converged: every node and the hub hold the newest edit of every session;
- divergence-flagged / no-spurious-conflict: as above, on every node and in the hub;
- verify-truthful: `hub/verify.py`'s `verify(repair=False)` says in sync exactly when the node's memories
  and the hub's agree: the same ids, the same content and version, and no hub record that fails validation;
- poison-contained: a record planted in Redis by no node is never applied, and every node that pulled past
  it holds it in quarantine.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from hivemind_app.config import Settings
from hivemind_app.content import text_hash
from hivemind_app.errors import NotFoundError
from hivemind_app.hive import Hive
from hivemind_app.hub.connection import as_text
from hivemind_app.hub.decode import BadRecord, parse_memory, parse_session
from hivemind_app.hub.keys import Keys
from hivemind_app.hub.sync import HubSync
from hivemind_app.hub.verify import verify
from hivemind_app.store.replica import Replica
from hivemind_app.store.versions import Stamp
from tests.support.hash_embedder import HashEmbedder
from tests.support.redis_server import RedisServer, free_port

NODES = ("a", "b", "c")
TEXTS = tuple(f"memory {k}: the staging service listens on port {5430 + k}" for k in range(6))
IDS = tuple(text_hash(t) for t in TEXTS)
SESSIONS = ("s1", "s2", "s3")
TAGS = ("ops", "infra", "db", "ci")
SOURCES = ("notes", "chat", None)
TASKS = ("deploy", "review", "debug")
FILES = ("app.py", "db.py", "ci.yml")
POISONS = ("tags-null", "bad-utf8", "absurd-version", "missing-fields", "seed-session")
PREFIX = "hive"
# Rounds of syncs (every node in turn) a heal may take: a merge published in one round reaches the nodes
# that synced before it in the next, so a quiet round can take a few.
MAX_ROUNDS = 8

# Every kind of fault the model injects (bench/chaos.py --faults picks some).
FAULTS = frozenset(
    {
        "partition",
        "kill-redis",
        "flushall",
        "trim-feed",
        "clock-jump",
        "poison",
        "damage",
        "concurrent",
        "tied-versions",
        "no-hub-write",
        "pusher-crash",
        "node-restart",
    }
)


class DurableRedis(RedisServer):
    """The fixture's redis-server (AOF on) with `appendfsync always`, so every write Redis acknowledged
    survives a kill -9 (the fixture's `everysec` may lose the last second)."""

    def start(self) -> None:
        super().start()
        client = self.client()
        try:
            client.config_set("appendfsync", "always")
            assert client.config_get("appendonly")["appendonly"] == "yes"
        finally:
            client.close()


class PusherCrash(BaseException):
    """Raised where the pusher would delete its outbox rows: the process dies between Redis and SQLite."""


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.detail}"


@dataclass(frozen=True)
class MemoryWrite:
    node: str
    op: str  # "store" or "delete"
    version: Stamp  # (version, node id): the order the system gives writes (store/versions.py)
    tags: frozenset[str] = frozenset()
    source: str | None = None


SessionState = tuple[str, tuple[str, ...], str] | None  # (task, files, context JSON); None: cleared


@dataclass(frozen=True)
class SessionEdit:
    node: str
    version: Stamp
    parent: Stamp | None  # the stamp of the row the node held before the edit (None: no row)
    state: SessionState


@dataclass
class Rogue:
    key: str
    kind: str  # "memory" or "session"
    record_id: str
    reachable: bool = True  # its feed entry is still there for every node to pull (no FLUSHALL or trim since)


@dataclass(frozen=True)
class MemoryRecord:
    deleted: bool
    text: str
    tags: tuple[str, ...]
    sources: tuple[str, ...]
    version: Stamp


def session_state(state: dict[str, Any] | None) -> SessionState:
    if state is None:
        return None
    return (
        str(state.get("current_task") or ""),
        tuple(state.get("files") or ()),
        json.dumps(state.get("context") or {}, sort_keys=True),
    )


def step(method: Callable[..., Any]) -> Callable[..., Any]:
    """A step of the model: written to `World.log` (the outermost call only) so a failing run can be replayed."""

    @functools.wraps(method)
    def logged(self: World, *args: Any) -> Any:
        self.depth += 1
        try:
            return method(self, *args)
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.log.append(f"{method.__name__}({', '.join(repr(a) for a in args)})")

    return logged


def row_stamp(replica: Replica, memory_id: str) -> Stamp:
    """The stamp of the node's row of a memory."""
    fields = replica.memory_fields(memory_id, None)
    assert fields is not None
    return int(fields["version"]), str(fields["node"])


def show(stamp: Stamp | None) -> str:
    return "-" if stamp is None else f"{stamp[0]}/{stamp[1][:4]}"


def wall_version(at: float) -> int:
    return int(at * 1000) << 16


def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@dataclass
class World:
    """Three nodes on one redis-server, the model of what they were told, and the faults done to them."""

    root: Path
    hives: dict[str, Hive] = field(default_factory=dict)
    partitioned: set[str] = field(default_factory=set)
    redis_alive: bool = True
    operations: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    memory_writes: dict[str, list[MemoryWrite]] = field(default_factory=dict)
    session_edits: dict[str, list[SessionEdit]] = field(default_factory=dict)
    rogues: dict[str, Rogue] = field(default_factory=dict)
    damaged: set[str] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    depth: int = 0

    def __post_init__(self) -> None:
        self.keys = Keys(PREFIX)
        self.server = DurableRedis(self.root / "redis")
        self.server.start()
        self.admin = self.server.client()
        for name in NODES:
            self.open_node(name)
        for name in NODES:  # every node meets the hub once (bootstrap) before anything happens
            self.hives[name].sync(force=True)

    # -- nodes ------------------------------------------------------------------------------------------

    def settings(self, name: str, hub: bool = True) -> Settings:
        return Settings(
            data_dir=self.root / name,
            node={"name": name, "port": 0},
            embedding={"model": HashEmbedder.model_name},
            redis={"url": self.server.url if hub else None, "prefix": PREFIX, "connect_timeout_s": 0.5},
        )

    def open_node(self, name: str) -> Hive:
        hive = Hive(self.settings(name), embedder=HashEmbedder(), sync_on_read=False)
        self.hives[name] = hive
        if name in self.partitioned:
            self.hub(name).retarget(closed_port_url())
        else:
            self.hub(name).replica.set_state(retry_at=0)
        return hive

    def hub(self, name: str) -> HubSync:
        hub = self.hives[name].parts.hub
        assert hub is not None
        return hub

    @step
    def restart_node(self, name: str) -> None:
        """The node's process stops and starts again on the same data dir."""
        self.injected["node-restart"] += 1
        self.hives[name].close()
        self.open_node(name)

    def close(self) -> None:
        for hive in self.hives.values():
            with contextlib.suppress(Exception):
                hive.close()
        with contextlib.suppress(Exception):
            self.admin.close()
        self.server.stop()

    @contextlib.contextmanager
    def before_push(self, name: str, capture: Callable[[], None]) -> Iterator[None]:
        """Run `capture` after the write landed in SQLite and before the push that follows it."""
        sync = self.hives[name].parts.sync
        original = sync.after_write

        def after_write() -> None:
            capture()
            original()

        sync.after_write = after_write  # type: ignore[method-assign]
        try:
            yield
        finally:
            del sync.after_write

    # -- memories ---------------------------------------------------------------------------------------

    def _version_of(self, name: str, memory_id: str) -> Stamp:
        return row_stamp(self.hub(name).replica, memory_id)

    @step
    def store(self, name: str, k: int, tags: tuple[str, ...] = (), source: str | None = None) -> None:
        """Store memory k on a node (a tag or a source added when it is there already)."""
        memory_id = IDS[k]
        seen: list[int] = []
        with self.before_push(name, lambda: seen.append(self._version_of(name, memory_id))):
            self.hives[name].store_memory(TEXTS[k], tags=list(tags), source=source)
        self.memory_writes.setdefault(memory_id, []).append(
            MemoryWrite(name, "store", seen[0], frozenset(tags), source)
        )
        self.operations["store"] += 1

    @step
    def delete(self, name: str, k: int) -> bool:
        """Delete memory k on a node that holds it live; False when it does not."""
        memory_id = IDS[k]
        try:
            if self.hives[name].get_memory(memory_id).deleted:
                return False
        except NotFoundError:
            return False
        seen: list[int] = []
        with self.before_push(name, lambda: seen.append(self._version_of(name, memory_id))):
            self.hives[name].delete_memory(memory_id)
        self.memory_writes.setdefault(memory_id, []).append(MemoryWrite(name, "delete", seen[0]))
        self.operations["delete"] += 1
        return True

    @step
    def concurrent_store(self, first: str, second: str, k: int, tags: tuple[str, str], tied: bool) -> None:
        """Two nodes store memory k with different tags, neither having pulled the other's write; `tied`:
        their clocks stand at the same value, so both mint the same version."""
        self.injected["tied-versions" if tied else "concurrent"] += 1
        if tied:
            self._tie_clocks(first, second)
        self.store(first, k, (tags[0],))
        self.store(second, k, (tags[1],))

    @step
    def write_without_hub(self, name: str, k: int, tag: str) -> None:
        """The node runs for a while with no hub configured (redis.url unset), stores memory k, and gets its
        hub back."""
        self.injected["no-hub-write"] += 1
        self.hives[name].close()
        alone = Hive(self.settings(name, hub=False), embedder=HashEmbedder(), sync_on_read=False)
        try:
            alone.store_memory(TEXTS[k], tags=[tag])
            version = row_stamp(Replica(alone.parts.db), IDS[k])
        finally:
            alone.close()
        self.memory_writes.setdefault(IDS[k], []).append(MemoryWrite(name, "store", version, frozenset({tag})))
        self.operations["store"] += 1
        self.open_node(name)

    # -- sessions ---------------------------------------------------------------------------------------

    def _session_row(self, name: str, session_id: str) -> dict[str, Any] | None:
        return self.hub(name).replica.session_fields(session_id)

    def _edit_session(self, name: str, session_id: str, write: Callable[[Hive], None]) -> None:
        before = self._session_row(name, session_id)
        seen: list[dict[str, Any]] = []

        def capture() -> None:
            row = self._session_row(name, session_id)
            assert row is not None
            seen.append(row)

        with self.before_push(name, capture):
            write(self.hives[name])
        edit = SessionEdit(
            name,
            (int(seen[0]["version"]), str(seen[0]["node"])),
            None if before is None else (int(before["version"]), str(before["node"])),
            session_state(seen[0]["state"]),
        )
        self.session_edits.setdefault(session_id, []).append(edit)

    @step
    def edit_session(self, name: str, session_id: str, task: str, file: str, note: int) -> None:
        update = {"current_task": task, "files": [file], "note": note}

        def write(hive: Hive) -> None:
            hive.set_context(session_id, update)

        self._edit_session(name, session_id, write)
        self.operations["session-edit"] += 1

    @step
    def clear_session(self, name: str, session_id: str) -> bool:
        """Clear a session the node holds; False when it holds none."""
        if self.hives[name].get_context(session_id).updated_at is None:
            return False
        self._edit_session(name, session_id, lambda hive: hive.clear_session(session_id))
        self.operations["session-clear"] += 1
        return True

    @step
    def concurrent_session_edit(self, first: str, second: str, session_id: str, tasks: tuple[str, str]) -> None:
        """Two nodes edit a session, neither having pulled the other's edit."""
        self.injected["concurrent"] += 1
        self.edit_session(first, session_id, tasks[0], FILES[0], 1)
        self.edit_session(second, session_id, tasks[1], FILES[1], 2)

    # -- sync, as the nodes do it ------------------------------------------------------------------------

    @step
    def sync(self, name: str) -> None:
        self.operations["sync"] += 1
        self.hives[name].sync(force=True)

    @step
    def anti_entropy(self, name: str) -> None:
        """The node's periodic verify pass, with repair (a no-op while it cannot reach the hub)."""
        self.operations["anti-entropy"] += 1
        with contextlib.suppress(redis.RedisError):
            self.hives[name].verify_sync(repair=True)

    # -- faults -----------------------------------------------------------------------------------------

    @step
    def partition(self, name: str) -> None:
        """Cut the node off: it talks to a closed port, its writes land in its outbox."""
        self.injected["partition"] += 1
        self.partitioned.add(name)
        self.hub(name).retarget(closed_port_url())

    @step
    def heal(self, name: str) -> None:
        self.partitioned.discard(name)
        self.hub(name).retarget(self.server.url)

    @step
    def kill_redis(self) -> None:
        self.injected["kill-redis"] += 1
        self.server.kill()
        self.redis_alive = False

    @step
    def restart_redis(self) -> None:
        """Start it again on the same port and dir: it replays its AOF. The nodes' backoff is over."""
        self.server.start()
        self.admin = self.server.client()
        self.redis_alive = True
        for name in NODES:
            if name not in self.partitioned:
                self.hub(name).replica.set_state(retry_at=0)

    @step
    def flushall(self) -> None:
        """Redis loses everything (FLUSHALL, or a fresh server restored from nothing)."""
        self.injected["flushall"] += 1
        self.admin.flushall()
        for rogue in self.rogues.values():
            rogue.reachable = False
        self.damaged.clear()

    @step
    def trim_feed(self, keep: int) -> None:
        """The change feed keeps only its last `keep` entries."""
        self.injected["trim-feed"] += 1
        self.admin.xtrim(self.keys.memory_changes, maxlen=keep, approximate=False)
        for rogue in self.rogues.values():
            rogue.reachable = False

    @step
    def clock_jump(self, name: str, seconds: float) -> None:
        """The node's clock jumps ahead by `seconds` (under the day the others accept): its hybrid logical
        clock holds that time from now on, as after a wall clock that ran ahead. A wall clock stepping back
        has no seam to inject it (the store reads time.time() directly)."""
        self.injected["clock-jump"] += 1
        db = self.hives[name].parts.db
        with db.write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'hlc'").fetchone()
            ahead = max(int(row[0]) if row else 0, wall_version(time.time() + seconds))
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('hlc', ?)", (str(ahead),))

    def _tie_clocks(self, *names: str) -> None:
        ahead = wall_version(time.time() + 120)
        for name in names:
            db = self.hives[name].parts.db
            with db.write() as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'hlc'").fetchone()
                ahead = max(ahead, int(row[0]) if row else 0)
        for name in names:
            with self.hives[name].parts.db.write() as conn:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('hlc', ?)", (str(ahead),))

    @step
    def plant_poison(self, kind: str, n: int) -> None:
        """A record no node wrote, announced in the change feed, in one of the shapes decode.py refuses."""
        self.injected["poison"] += 1
        now = time.time()
        if kind == "seed-session":
            session_id = f"rogue-session-{n}"
            key = self.keys.session(session_id)
            self.admin.hset(key, mapping={"timestamp": str(now), "context": "{}", "files": "[]", "current_task": "x"})
            self.admin.xadd(self.keys.memory_changes, {"kind": "session", "id": session_id, "version": "1"})
            self.rogues[key] = Rogue(key, "session", session_id)
            return
        rogue_id = hashlib.sha256(f"rogue {n}".encode()).hexdigest()
        record: dict[str, Any] = {
            "id": rogue_id,
            "text": "forged",
            "timestamp": str(now),
            "updated_at": str(now),
            "origin": "rogue",
            "deleted": "0",
            "tags": "[]",
            "sources": "[]",
            "source": "",
            "session_id": "",
            "model": "",
            "dim": "",
            "vector": b"",
            "version": str(wall_version(now)),
            "zmember": "",
        }
        parse_memory(rogue_id, record)  # the shape is a good one before it is poisoned
        if kind == "tags-null":
            record["tags"] = "null"
        elif kind == "bad-utf8":
            record["text"] = b"\xff\xfe\x00binary"
        elif kind == "absurd-version":
            record["version"] = str((1 << 63) - 1)
        elif kind == "missing-fields":
            del record["id"], record["deleted"]
        key = self.keys.embedding(rogue_id)
        self.admin.delete(key)
        self.admin.hset(key, mapping=record)
        self.admin.xadd(self.keys.memory_changes, {"kind": "memory", "id": rogue_id, "version": "1", "node": "rogue"})
        self.rogues[key] = Rogue(key, "memory", rogue_id)

    @step
    def damage(self, k: int) -> bool:
        """A node's memory k in Redis is damaged in place (tags null, same version) and announced again."""
        key = self.keys.embedding(IDS[k])
        if not self.admin.exists(key):
            return False
        self.injected["damage"] += 1
        self.admin.hset(key, "tags", "null")
        self.admin.xadd(self.keys.memory_changes, {"kind": "memory", "id": IDS[k], "version": "1", "node": "rogue"})
        self.damaged.add(IDS[k])
        return True

    @step
    def pusher_crash(self, name: str) -> None:
        """The node's pusher dies after Redis took a batch and before the outbox rows are deleted; the node's
        process starts again."""
        self.injected["pusher-crash"] += 1
        replica = self.hub(name).replica

        def crash(seqs: list[int]) -> None:
            raise PusherCrash

        replica.acknowledge = crash  # type: ignore[method-assign]
        try:
            self.hives[name].sync(force=True)
        except PusherCrash:
            pass
        finally:
            del replica.acknowledge
        self.restart_node(name)
        self.injected["node-restart"] -= 1  # counted as the crash

    # -- heal, then check -------------------------------------------------------------------------------

    @step
    def heal_and_sync(self) -> list[Violation]:
        """Redis up, every node back on it, each syncing until its outbox is empty, twice around and then until
        a round moves nothing (a merge published in one round reaches the nodes that synced before it in the
        next)."""
        self.operations["heal"] += 1
        out: list[Violation] = []
        if not self.redis_alive:
            self.restart_redis()
        for name in NODES:
            if name in self.partitioned:
                self.heal(name)
            self.hub(name).replica.set_state(retry_at=0)
        last_stamps: list[Any] = []
        for round_ in range(1, MAX_ROUNDS + 1):
            moved = 0
            for name in NODES:
                if self.damaged:  # drift only the periodic anti-entropy pass can see: the node runs it
                    with contextlib.suppress(redis.RedisError):
                        self.hives[name].verify_sync(repair=True)
                for _attempt in range(6):
                    try:
                        report = self.hives[name].sync(force=True)
                    except Exception as exc:  # a sync pass must never raise
                        out.append(Violation("drained", f"node {name}: sync raised {exc!r}"))
                        return out
                    if report is not None:
                        moved += report.pushed + report.pulled
                    if report is not None and report.online and self.hub(name).outbox_depth() == 0:
                        break
                else:
                    out.append(Violation("drained", f"node {name}: outbox still {self.hub(name).outbox_depth()} rows"))
                    return out
            stamps = [self.hub(name).replica.memory_stamps() for name in NODES]
            if round_ >= 2 and not moved and stamps == last_stamps:  # (anti-entropy's repairs are no report's)
                return out
            last_stamps = stamps
        out.append(Violation("drained", f"still pushing or pulling after {MAX_ROUNDS} rounds of syncs"))
        return out

    def node_memories(self, name: str) -> dict[str, MemoryRecord]:
        replica = self.hub(name).replica
        out = {}
        for memory_id in replica.memory_stamps():
            fields = replica.memory_fields(memory_id, None)
            assert fields is not None
            version = (int(fields["version"]), str(fields["node"]))
            out[memory_id] = MemoryRecord(
                fields["deleted"] == "1",
                fields["text"],
                tuple(sorted(json.loads(fields["tags"]))),
                tuple(json.loads(fields["sources"])),
                version,
            )
        return out

    def hub_memories(self) -> tuple[dict[str, MemoryRecord], dict[str, str]]:
        """The hub's readable memory records, and the ids of those that fail validation (with the reason)."""
        good: dict[str, MemoryRecord] = {}
        bad: dict[str, str] = {}
        for key in self.admin.scan_iter(match=self.keys.embedding_pattern, count=1000):
            memory_id = self.keys.embedding_id(as_text(key))
            try:
                record = parse_memory(memory_id, self.admin.hgetall(key))
            except BadRecord as exc:
                bad[memory_id] = str(exc)
                continue
            good[memory_id] = MemoryRecord(
                record.deleted,
                record.text,
                tuple(sorted(record.tags)),
                tuple(record.sources),
                (record.version, record.node),
            )
        return good, bad

    def hub_session(self, session_id: str) -> tuple[bool, SessionState]:
        raw = self.admin.hgetall(self.keys.session(session_id))
        if not raw:
            return True, None
        try:
            return True, session_state(parse_session(raw).state)
        except BadRecord:
            return False, None

    def expected_memory(self, memory_id: str) -> tuple[bool, frozenset[str], frozenset[str]] | None:
        """(live, tags, sources) the model expects, None when the newest version is tied between writes that
        disagree (the system gives no order to check against)."""
        writes = sorted(self.memory_writes[memory_id], key=lambda w: w.version)
        newest = writes[-1]
        tied = [w for w in writes if w.version == newest.version]
        if len({w.op for w in tied}) > 1:
            return None
        if newest.op == "delete":
            return False, frozenset(), frozenset()
        last_delete = max((w.version for w in writes if w.op == "delete"), default=(0, ""))
        after = [w for w in writes if w.op == "store" and w.version > last_delete]
        tags = frozenset(t for w in after for t in w.tags)
        sources = frozenset(w.source for w in after if w.source)
        return True, tags, sources

    def check(self) -> list[Violation]:
        out: list[Violation] = []
        hub_good, hub_bad = self.hub_memories()
        nodes = {name: self.node_memories(name) for name in NODES}
        quarantined = {name: {q.key for q in self.hub(name).replica.quarantine.records(10_000)} for name in NODES}
        rogue_ids = {r.record_id for r in self.rogues.values() if r.kind == "memory"}

        # converged
        for name, mine in nodes.items():
            for memory_id in sorted(set(mine) | set(hub_good) | (set(hub_bad) - rogue_ids)):
                here, there = mine.get(memory_id), hub_good.get(memory_id)
                if memory_id in hub_bad:
                    key = self.keys.embedding(memory_id)
                    if here is None or key not in quarantined[name]:
                        out.append(
                            Violation(
                                "converged",
                                f"hub holds an unreadable record of {memory_id[:8]} ({hub_bad[memory_id]}) that "
                                f"node {name} {'lacks' if here is None else 'has not quarantined'}",
                            )
                        )
                    continue
                if here != there:
                    out.append(
                        Violation(
                            "converged",
                            f"{memory_id[:8]}: node {name} has {here}, the hub {there} (writes "
                            f"{self._writes(memory_id)})",
                        )
                    )

        # no-lost-write, no-resurrection, labels
        for memory_id in sorted(self.memory_writes):
            expected = self.expected_memory(memory_id)
            if expected is None:
                continue
            live, tags, sources = expected
            for holder, record in [(f"node {n}", nodes[n].get(memory_id)) for n in NODES] + [
                ("the hub", hub_good.get(memory_id))
            ]:
                if memory_id in hub_bad and holder == "the hub":
                    continue
                is_live = record is not None and not record.deleted
                if live and not is_live:
                    out.append(
                        Violation(
                            "no-lost-write",
                            f"{memory_id[:8]} was last stored (writes {self._writes(memory_id)}) but {holder} "
                            f"has {record}",
                        )
                    )
                elif not live and is_live:
                    out.append(
                        Violation(
                            "no-resurrection",
                            f"{memory_id[:8]} was last deleted (writes {self._writes(memory_id)}) but {holder} "
                            f"has it live: {record}",
                        )
                    )
                elif live and record is not None and (set(record.tags), set(record.sources)) != (tags, sources):
                    out.append(
                        Violation(
                            "labels",
                            f"{memory_id[:8]} on {holder}: tags {sorted(record.tags)} sources "
                            f"{list(record.sources)}, expected {sorted(tags)} / {sorted(sources)} "
                            f"(writes {self._writes(memory_id)})",
                        )
                    )

        # sessions
        hub_conflicts = {as_text(k) for k in self.admin.hkeys(self.keys.session_conflicts)}
        node_conflicts = {name: set(self.hub(name).replica.conflicts()) for name in NODES}
        for session_id, edits in sorted(self.session_edits.items()):
            ordered = sorted(edits, key=lambda e: e.version)
            winner = ordered[-1]
            holders: list[tuple[str, SessionState]] = []
            for name in NODES:
                row = self._session_row(name, session_id)
                holders.append((f"node {name}", None if row is None else session_state(row["state"])))
            readable, in_hub = self.hub_session(session_id)
            holders.append(("the hub", in_hub if readable else ("<unreadable>", (), "")))
            for holder, state in holders:
                if state != winner.state:
                    out.append(
                        Violation(
                            "sessions-converged",
                            f"{session_id}: {holder} has {state}, the newest edit is {winner} "
                            f"(edits {self._edits(session_id)})",
                        )
                    )
            by_version = {e.version: e for e in ordered}
            line: set[int] = set()
            cursor: SessionEdit | None = winner
            while cursor is not None and cursor.version not in line:
                line.add(cursor.version)
                cursor = by_version.get(cursor.parent) if cursor.parent is not None else None
            lost = [e for e in ordered if e.version not in line]
            flagged = {h for h, seen in [*node_conflicts.items(), ("hub", hub_conflicts)] if session_id in seen}
            everyone = {*NODES, "hub"}
            if any(e.state != winner.state for e in lost) and flagged != everyone:
                out.append(
                    Violation(
                        "divergence-flagged",
                        f"{session_id}: edits {lost} lost to {winner} but only {sorted(flagged)} flag a conflict "
                        f"(edits {self._edits(session_id)})",
                    )
                )
            if not lost and flagged:
                out.append(
                    Violation(
                        "no-spurious-conflict",
                        f"{session_id}: its edits form one line but {sorted(flagged)} flag a conflict "
                        f"(edits {self._edits(session_id)})",
                    )
                )

        # verify-truthful
        for name, mine in nodes.items():
            agree = not hub_bad and mine == hub_good  # a record that fails validation agrees with nothing
            hub = self.hub(name)
            reported = verify(hub.channel, hub.pusher, hub.puller, repair=False)
            if bool(reported["in_sync"]) != agree:
                out.append(
                    Violation(
                        "verify-truthful",
                        f"node {name}: verify says in_sync={reported['in_sync']} ({reported}) but the contents "
                        f"{'agree' if agree else 'differ'}: "
                        + "; ".join(
                            f"{i[:8]} here {mine.get(i)}, hub {hub_good.get(i) or hub_bad.get(i)} "
                            f"(writes {self._writes(i)})"
                            for i in sorted(set(mine) | set(hub_good) | set(hub_bad))
                            if i in hub_bad or mine.get(i) != hub_good.get(i)
                        ),
                    )
                )

        # poison-contained
        for rogue in self.rogues.values():
            for name in NODES:
                if rogue.kind == "memory":
                    applied = rogue.record_id in nodes[name]
                else:
                    applied = self._session_row(name, rogue.record_id) is not None
                if applied:
                    out.append(Violation("poison-contained", f"node {name} applied the planted {rogue.key}"))
                exists = self.admin.exists(rogue.key)
                if rogue.reachable and exists and rogue.key not in quarantined[name]:
                    out.append(Violation("poison-contained", f"node {name} pulled past {rogue.key} unquarantined"))
        return out

    def _writes(self, memory_id: str) -> str:
        writes = sorted(self.memory_writes.get(memory_id, ()), key=lambda w: w.version)
        text = ", ".join(
            f"{w.op}@{w.node}:{show(w.version)}"
            + (f"{sorted(w.tags)}" if w.tags else "")
            + (f"<{w.source}>" if w.source else "")
            for w in writes
        )
        return text + (" [versions tie]" if len({w.version[0] for w in writes}) < len(writes) else "")

    def _edits(self, session_id: str) -> str:
        edits = sorted(self.session_edits[session_id], key=lambda e: e.version)
        text = ", ".join(f"{e.node}:{show(e.version)}<-{show(e.parent)}" for e in edits)
        return text + (" [versions tie]" if len({e.version[0] for e in edits}) < len(edits) else "")
