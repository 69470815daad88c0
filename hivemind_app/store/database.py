"""One open store file shared by the memory, session and queue stores of a process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw

from hivemind_app.store.db import connect, maybe_one, write_transaction
from hivemind_app.store.identity import NodeIdentity, current_identity, ensure_identity, reset_node_id
from hivemind_app.store.kinds import RecordKind
from hivemind_app.store.migrations import migrate

log = logging.getLogger(__name__)

# Versions are hybrid-logical-clock integers: milliseconds since the epoch shifted left by VERSION_SHIFT bits,
# plus a counter below. SQLite's INTEGER is a signed 64-bit number, so no version may pass VERSION_CAP.
VERSION_SHIFT = 16
VERSION_CAP = (1 << 63) - 1
# The clock restarts from the wall clock rather than count past this (only a clock dragged there by a record
# from before versions were bounded can get near it).
VERSION_LIMIT = VERSION_CAP - (1 << 32)
# How far ahead of this node's wall clock a version may be and still be taken from another node.
MAX_AHEAD_S = 86_400.0


def wall_version(now: float) -> int:
    """The smallest version of the millisecond `now` (unix seconds)."""
    return int(now * 1000) << VERSION_SHIFT


def version_ceiling(now: float | None = None) -> int:
    """The newest version this node accepts from another node, or keeps on its clock: a day ahead of its wall
    clock, and never past what SQLite can store (so minting the next one never overflows)."""
    return min(VERSION_LIMIT, wall_version((time.time() if now is None else now) + MAX_AHEAD_S))


def version_newer(a: int | str, b: int | str | None) -> bool:
    """Whether version `a` is newer than `b` (None: there is none yet)."""
    return b is None or int(a) > int(b)


class Database:
    """A connection, the lock that serialises its use across threads, and the node's clock.

    apsw connections may be shared between threads but not used by two at once; the lock makes each
    read or write transaction atomic with respect to the others in this process. Other processes are
    kept in order by SQLite's own locking (WAL, busy timeout, IMMEDIATE writes).
    """

    def __init__(self, path: Path, *, node_name: str, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.node_name = node_name
        self.lock = threading.RLock()
        self.conn = connect(path, busy_timeout_ms)
        self.memory_writes = 0
        """Memory writes through this connection (`MemoryRows`), counted so that a cache of what the memories
        hold sees them: `PRAGMA data_version` moves only for other connections' commits."""
        self.applied_now = migrate(self.conn)
        # the common case reads two meta rows; only a new store or a copy takes the write lock
        identity = current_identity(self.conn, path)
        if identity is None:
            with self.write() as conn:
                identity = ensure_identity(conn, path)
        self.identity = identity
        self.node_id = identity.node_id

    def reset_node_id(self) -> NodeIdentity:
        """A new node id for this store (`hivemind-app node reset-id`); see store/identity.py."""
        with self.write() as conn:
            self.identity = reset_node_id(conn, self.path)
        self.node_id = self.identity.node_id
        return self.identity

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def write(self) -> Iterator[apsw.Connection]:
        with self.lock, write_transaction(self.conn) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[apsw.Connection]:
        """A read transaction, so that several statements see one snapshot."""
        with self.lock:
            if not self.conn.in_transaction:
                self.conn.execute("BEGIN")
                try:
                    yield self.conn
                finally:
                    self.conn.execute("COMMIT")
            else:
                yield self.conn

    def ensure_meta(self, key: str, make: Callable[[], str]) -> str:
        with self.lock:
            row = maybe_one(self.conn, "SELECT value FROM meta WHERE key = ?", (key,))
            if row:
                return str(row[0])
            with self.write() as conn:
                conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, make()))
                row = maybe_one(conn, "SELECT value FROM meta WHERE key = ?", (key,))
        assert row is not None
        return str(row[0])

    def enqueue(self, conn: apsw.Connection, kind: RecordKind, key: str) -> None:
        """Record a write for the hub, inside the caller's write transaction, whether or not a hub is configured
        (an MCP server or hook run without one still writes what the next sync pushes). A record has at most one
        row: the push sends its current state, so an older row of the same record is replaced by this one (after
        the insert, so the new row's seq is past every row a push in flight holds, as `drop_pending` needs)."""
        conn.execute("INSERT INTO outbox(kind, key, created_at) VALUES (?, ?, ?)", (str(kind), key, time.time()))
        conn.execute(
            "DELETE FROM outbox WHERE kind = ? AND key = ? AND seq < ?", (str(kind), key, conn.last_insert_rowid())
        )

    def observe(self, conn: apsw.Connection, remote_version: int) -> None:
        """Move this node's clock past a version seen from another node (inside a write transaction).

        A version beyond `version_ceiling` never moves it: the hub's records are refused before that
        (`hub/decode.py`), and this keeps even a direct apply from dragging the clock towards overflow.
        """
        if remote_version > version_ceiling():
            return
        row = maybe_one(conn, "SELECT value FROM meta WHERE key = 'hlc'")
        if row is None or int(row[0]) < remote_version:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('hlc', ?)", (str(remote_version),))

    def next_version_now(self) -> int:
        """A fresh version in a transaction of its own (for a write that has no row to carry it)."""
        with self.write() as conn:
            return self.next_version(conn)

    def next_version(self, conn: apsw.Connection) -> int:
        """Hybrid logical clock: milliseconds in the high bits, a counter below, never going back.

        Called inside a write transaction, so concurrent processes still get distinct, increasing values.
        A wall clock that steps back changes nothing (the counter carries on from the last version). A clock
        found at `VERSION_LIMIT` (dragged near overflow by a hub record before versions were bounded) restarts
        from the wall clock instead of overflowing SQLite's INTEGER.
        """
        row = maybe_one(conn, "SELECT value FROM meta WHERE key = 'hlc'")
        last = int(row[0]) if row else 0
        now = time.time()
        if last >= VERSION_LIMIT:
            log.warning("this node's clock held version %d, next to overflow; restarting from the wall clock", last)
            last = 0
        version = max(wall_version(now), last + 1)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('hlc', ?)", (str(version),))
        return version
