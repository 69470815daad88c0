"""This store's node id, and the check that it still belongs to this machine and this file.

A node skips the change-feed entries written under its own id (they are its own writes coming back). So
two stores with one id, a `hive.db` restored from a backup onto a second machine or copied into a second
data dir, would each ignore the other's writes for ever, silently. Beside the id the store keeps a
fingerprint of where it was made: the machine (`/etc/machine-id` where there is one, else the MAC address
`uuid.getnode()` reads, never its random stand-in) and the file's resolved path (not the host name, which
a laptop's changes with the network). A store that opens with another fingerprint
is a copy: it takes a new id (keeping the old ones in `meta.previous_node_ids`) and says so once. Nothing
else changes, and nothing is lost: its memories, sessions and outbox stay, and the writes it makes from now
on are told apart from the original's.

Invariants: a store's id changes only when its fingerprint changes or on `reset_node_id` (the deliberate
case: `hivemind-app node reset-id`); the id is 12 lowercase hex digits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import apsw

from hivemind_app.store.db import maybe_one

log = logging.getLogger(__name__)

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


@dataclass(frozen=True)
class NodeIdentity:
    node_id: str
    rekeyed_from: str | None = None  # the id this store had before it found it was a copy


def new_node_id() -> str:
    return uuid.uuid4().hex[:12]


def machine_fingerprint(db_path: Path) -> str:
    machine = ""
    for candidate in MACHINE_ID_FILES:
        try:
            machine = candidate.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if machine:
            break
    if not machine:
        mac = uuid.getnode()
        # a MAC with the multicast bit set is uuid's random stand-in, new in every process: no machine id at all
        machine = "" if mac & (1 << 40) else f"mac-{mac:012x}"
    # not the host name: a laptop's changes with the network it joins
    made_at = json.dumps([machine, str(db_path.resolve())])
    return hashlib.sha256(made_at.encode()).hexdigest()[:32]


def _meta(conn: apsw.Connection, key: str) -> str | None:
    row = maybe_one(conn, "SELECT value FROM meta WHERE key = ?", (key,))
    return None if row is None else str(row[0])


def _set_meta(conn: apsw.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


def current_identity(conn: apsw.Connection, db_path: Path) -> NodeIdentity | None:
    """The node id when it is made and belongs here (no write needed), else None."""
    node_id = _meta(conn, "node_id")
    if node_id is None or _meta(conn, "node_fingerprint") != machine_fingerprint(db_path):
        return None
    return NodeIdentity(node_id)


def ensure_identity(conn: apsw.Connection, db_path: Path) -> NodeIdentity:
    """The node id, made on first open, re-keyed when the store turns out to be a copy (inside a write
    transaction the caller holds)."""
    fingerprint = machine_fingerprint(db_path)
    node_id = _meta(conn, "node_id")
    if node_id is None:
        node_id = new_node_id()
        _set_meta(conn, "node_id", node_id)
        _set_meta(conn, "node_fingerprint", fingerprint)
        return NodeIdentity(node_id)
    recorded = _meta(conn, "node_fingerprint")
    if recorded is None:  # a store from before fingerprints: this is where it lives
        _set_meta(conn, "node_fingerprint", fingerprint)
        return NodeIdentity(node_id)
    if recorded == fingerprint:
        return NodeIdentity(node_id)
    new_id = _rekey(conn, node_id, fingerprint)
    log.warning(
        "%s was made on another machine or at another path (a restored backup or a copy), so it shared node id "
        "%s with the original and the two would ignore each other's writes; this copy is node %s from now on. "
        "Nothing was lost.",
        db_path,
        node_id,
        new_id,
    )
    return NodeIdentity(new_id, rekeyed_from=node_id)


def reset_node_id(conn: apsw.Connection, db_path: Path) -> NodeIdentity:
    """A new id for this store, deliberately (inside a write transaction the caller holds)."""
    old = _meta(conn, "node_id")
    new_id = _rekey(conn, old, machine_fingerprint(db_path))
    return NodeIdentity(new_id, rekeyed_from=old)


def _rekey(conn: apsw.Connection, old: str | None, fingerprint: str) -> str:
    previous = json.loads(_meta(conn, "previous_node_ids") or "[]")
    if old is not None and old not in previous:
        previous.append(old)
    new_id = new_node_id()
    _set_meta(conn, "node_id", new_id)
    _set_meta(conn, "node_fingerprint", fingerprint)
    _set_meta(conn, "previous_node_ids", json.dumps(previous))
    return new_id
