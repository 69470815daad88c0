"""How two writes of one record are ordered: by their stamp, `(version, node)`, compared lexicographically.

A version is the writer's hybrid logical clock (`Database.next_version`); two nodes can mint the same one
(same millisecond, or both clocks dragged to one far-future value by a record they both saw). The id of the
node that minted it breaks the tie, so any two distinct writes are ordered the same way everywhere: in the
hub's Lua scripts (`hub/scripts.py`, which spell the same rule), in the replica's applies and in verify.
A stamp equal in both parts is the same write (a retried push, our own record coming back): never newer.
Rows from before stamps carry the node '' (they compare by version alone, as before).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

Stamp = tuple[int, str]


def stamp_newer(a: Stamp, b: Stamp | None) -> bool:
    """Whether the write stamped `a` is newer than the one stamped `b` (None: there is none yet)."""
    return b is None or a > b


def content_digest(*, deleted: bool, text: str, tags: Sequence[str], sources: Sequence[str], session: str) -> str:
    """What verify compares beside the stamp: a memory's content (a tombstone has none but its flag)."""
    body = [True, "", [], [], ""] if deleted else [False, text, sorted(set(tags)), list(sources), session]
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()[:24]
