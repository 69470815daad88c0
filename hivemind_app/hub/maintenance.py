"""Keeping what sync holds bounded: the change feed is trimmed, and what sync no longer needs is pruned.

Every full pass reports this node's feed cursor (`Keys.node_cursors`). At most once per
`redis.maintenance_interval_s` a node also:

- trims the change feed to `feed_max_len` entries and to `feed_max_age_s`, but never past the lowest cursor a
  node reported within `node_keep_s`: every live node can resume from where it was, and the entry at its
  cursor stays (`hub/epoch.py` looks for it). A node away longer finds the feed trimmed past its cursor and
  re-bootstraps by itself; reports older than `node_keep_s` are dropped;
- prunes tombstones deleted more than `tombstone_keep_s` ago whose delete this node has pushed (every node
  mirrors every memory, so each node prunes the ones it holds; no scan of Redis): first in Redis (only a hash
  that is still that old tombstone, `scripts.PRUNE_TOMBSTONE`), then here;
- prunes this node's learning-queue entries older than `learning_keep_s` that Redis acknowledged;
- drops the conflict records of sessions gone from Redis (expired after the session TTL, or never there):
  nothing is left to resolve.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text
from hivemind_app.hub.decode import hub_json
from hivemind_app.hub.scripts import PRUNE_TOMBSTONE
from hivemind_app.store.local_state import LocalState

log = logging.getLogger(__name__)

_BATCH = 1000


@dataclass(frozen=True)
class Maintenance:
    trimmed: int = 0
    """Change-feed entries trimmed."""
    hub_tombstones: int = 0
    local_tombstones: int = 0
    learning: int = 0
    conflicts: int = 0


def report_cursor(channel: HubChannel) -> None:
    """Tell the hub how far this node has read the feed (the trim never passes it for `node_keep_s`)."""
    cursor = channel.replica.state().get("feed_cursor", "0-0")
    record = json.dumps({"cursor": cursor, "at": time.time()})
    channel.client().hset(channel.keys.node_cursors, channel.db.node_id, record)


def _entry(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _live_cursors(channel: HubChannel, now: float) -> list[str]:
    """The cursors nodes reported within `node_keep_s` (older reports are dropped)."""
    client = channel.client()
    keep_s = channel.settings.redis.node_keep_s
    cursors = []
    for node, raw in client.hgetall(channel.keys.node_cursors).items():
        try:
            report: Any = hub_json(as_text(raw))
            cursor, at = str(report["cursor"]), float(report["at"])
            _entry(cursor)
        except (ValueError, KeyError, TypeError):
            client.hdel(channel.keys.node_cursors, node)
            continue
        if now - at > keep_s:
            client.hdel(channel.keys.node_cursors, node)
        else:
            cursors.append(cursor)
    return cursors


def trim_feed(channel: HubChannel, now: float) -> int:
    """Trim the change feed by length and age, never past a live node's cursor; returns entries trimmed."""
    client = channel.client()
    settings = channel.settings.redis
    feed = channel.keys.memory_changes
    floor = (int((now - settings.feed_max_age_s) * 1000), 0)
    length = int(client.xlen(feed))
    if length > settings.feed_max_len:
        kept = client.xrevrange(feed, count=settings.feed_max_len)
        floor = max(floor, _entry(as_text(kept[-1][0])))
    for cursor in _live_cursors(channel, now):
        floor = min(floor, _entry(cursor))
    if floor <= (0, 0):
        return 0
    return int(client.xtrim(feed, minid=f"{floor[0]}-{floor[1]}", approximate=False))


def prune_tombstones(channel: HubChannel, before: float) -> tuple[int, int]:
    """Prune the tombstones older than `before` in Redis, then here; returns (pruned in Redis, here)."""
    client = channel.client()
    script = client.register_script(PRUNE_TOMBSTONE)
    with channel.db.read() as conn:
        ids = channel.replica.rows.old_tombstones(conn, before)
    in_hub = here = 0
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        pipe = client.pipeline(transaction=False)
        for memory_id in chunk:
            script(keys=[channel.keys.embedding(memory_id)], args=[before], client=pipe)
        in_hub += sum(int(r) for r in pipe.execute())
        with channel.db.write() as conn:
            here += channel.replica.rows.forget_tombstones(conn, chunk, before)
    return in_hub, here


def prune_conflicts(channel: HubChannel) -> int:
    """Drop the conflict records of sessions no longer in Redis."""
    client = channel.client()
    sessions = [as_text(s) for s in client.hkeys(channel.keys.session_conflicts)]
    gone = [s for s in sessions if not client.exists(channel.keys.session(s))]
    if gone:
        client.hdel(channel.keys.session_conflicts, *gone)
    return len(gone)


def maintain(channel: HubChannel, now: float | None = None) -> Maintenance:
    """Trim and prune now (see the module's docstring); returns what went."""
    now = time.time() if now is None else now
    settings = channel.settings.redis
    tombstones_before = now - settings.tombstone_keep_s
    trimmed = trim_feed(channel, now)
    hub_tombstones, local_tombstones = prune_tombstones(channel, tombstones_before)
    learning = LocalState(channel.db).prune_learning(now - settings.learning_keep_s)
    conflicts = prune_conflicts(channel)
    channel.replica.set_state(last_maintenance=now)
    done = Maintenance(trimmed, hub_tombstones, local_tombstones, learning, conflicts)
    if done != Maintenance():
        log.info("sync maintenance: %s", done)
    return done


def maintenance_due(channel: HubChannel, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    last = float(channel.replica.state().get("last_maintenance", "0") or 0)
    return now - last >= channel.settings.redis.maintenance_interval_s
