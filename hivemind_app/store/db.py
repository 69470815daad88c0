"""Opening the SQLite file: apsw (its own SQLite, able to load extensions), sqlite-vec, WAL, 0600."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from hivemind_app.errors import ExtensionLoadError, StoreBusyError, StoreError

# How often a writer retries BEGIN IMMEDIATE after the busy timeout ran out. Each try already waited
# busy_timeout_ms, so this only matters when several processes write flat out at once.
_WRITE_RETRIES = 5


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def load_sqlite_vec(conn: apsw.Connection) -> str:
    """Load sqlite-vec into `conn`; returns its version."""
    try:
        import sqlite_vec

        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        conn.enable_load_extension(False)
        row = conn.execute("SELECT vec_version()").fetchone()
    except (ImportError, apsw.Error, OSError) as exc:
        raise ExtensionLoadError(
            f"sqlite-vec could not be loaded ({exc}); reinstall hivemind-app so the sqlite-vec wheel is present."
        ) from exc
    assert row is not None
    return str(row[0])


def connect(path: Path, busy_timeout_ms: int) -> apsw.Connection:
    """An open connection with sqlite-vec loaded, WAL journal, foreign keys on."""
    if str(path) != ":memory:":
        _create_private_file(path)
    try:
        conn = apsw.Connection(str(path))
    except apsw.Error as exc:
        raise StoreError(f"Cannot open the store at {path}: {exc}. Check the path and its permissions.") from exc
    conn.setbusytimeout(busy_timeout_ms)
    # Double-quoted strings are identifiers only: catches typos SQLite would otherwise accept silently.
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    load_sqlite_vec(conn)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except apsw.BusyError as exc:
        raise StoreBusyError(f"The store at {path} stayed locked by another process; try again.") from exc
    except apsw.Error as exc:
        raise StoreError(f"The store at {path} is not a usable SQLite database: {exc}.") from exc
    return conn


@contextmanager
def write_transaction(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

    IMMEDIATE takes the write lock up front: a deferred transaction that upgrades from read to write can
    fail with SQLITE_BUSY at once, without waiting, which is what leaks "database is locked" to users.
    """
    for attempt in range(_WRITE_RETRIES + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except apsw.BusyError as exc:
            if attempt == _WRITE_RETRIES:
                raise StoreBusyError(
                    "Another hivemind-app process kept the store locked too long; try again in a moment."
                ) from exc
            time.sleep(random.uniform(0.01, 0.1) * (attempt + 1))
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


Row = tuple[Any, ...]


def maybe_one(conn: apsw.Connection, sql: str, params: Any = ()) -> Row | None:
    """The first row of a query, or None. Typed loosely on purpose: SQLite values are checked by the caller."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else tuple(row)


def one(conn: apsw.Connection, sql: str, params: Any = ()) -> Row:
    """The first row of a query that always returns one (an aggregate, a row known to exist)."""
    row = maybe_one(conn, sql, params)
    if row is None:
        raise StoreError(f"Expected a row from: {sql[:60]}")
    return row


def all_rows(conn: apsw.Connection, sql: str, params: Any = ()) -> list[Row]:
    return [tuple(r) for r in conn.execute(sql, params).fetchall()]
