"""What the hub and its nodes look like from here: this node's sync state, its heartbeat, the live nodes."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text
from hivemind_app.hub.decode import BadRecord, hub_json
from hivemind_app.hub.keys import HEARTBEAT_TTL_BEATS
from hivemind_app.records.status import QUARANTINE_SHOWN


def heartbeat(channel: HubChannel, info: dict[str, Any], beat_s: float) -> None:
    """Refresh this node in nodes:active, its expiring heartbeat key, and its model in models:active."""
    keys = channel.keys
    node_id = channel.db.node_id
    pipe = channel.client().pipeline(transaction=True)
    pipe.sadd(keys.nodes_active, node_id)
    pipe.set(
        keys.node_heartbeat(node_id),
        json.dumps({**info, "at": time.time()}),
        px=int(beat_s * HEARTBEAT_TTL_BEATS * 1000),
    )
    if info.get("model"):
        pipe.hset(keys.models_active, info.get("name", node_id), str(info["model"]))
    pipe.execute()


def live_nodes(channel: HubChannel) -> list[dict[str, Any]]:
    """Nodes whose heartbeat key has not expired; stale members of nodes:active are dropped."""
    client = channel.client()
    keys = channel.keys
    members = [as_text(m) for m in client.smembers(keys.nodes_active)]
    beats = client.mget([keys.node_heartbeat(m) for m in members]) if members else []
    alive = []
    for member, beat in zip(members, beats, strict=True):
        if beat is None:
            client.srem(keys.nodes_active, member)
            continue
        try:
            info = hub_json(as_text(beat))
        except BadRecord:
            info = None
        if isinstance(info, dict):  # a heartbeat that is not ours to read hides only itself
            alive.append({"node_id": member, **info})
    return alive


def _seconds(state: dict[str, str], key: str) -> float | None:
    return float(state[key]) if state.get(key) else None


def sync_status(channel: HubChannel) -> dict[str, Any]:
    """This node's sync state, from SQLite (and the learning queue's length when the hub is connected)."""
    replica = channel.replica
    state = replica.state()
    online = state.get("online", "1") == "1"
    queue_len = None
    if online and channel.connected:
        with contextlib.suppress(Exception):
            queue_len = int(channel.client().xlen(channel.keys.learning_queue))
    last_pull = _seconds(state, "last_pull")
    return {
        "configured": True,
        "endpoint": channel.endpoint,
        "online": online,
        "tried": "online" in state,  # set by the first pass that reached the hub, or failed to
        "outbox": replica.outbox_depth(),
        "feed_cursor": state.get("feed_cursor"),
        "last_push": _seconds(state, "last_push"),
        "last_pull": last_pull,
        # how stale this mirror may be: seconds since it last read the change feed
        "lag_s": round(time.time() - last_pull, 1) if last_pull is not None else None,
        "offline_since": float(state["offline_since"]) if state.get("online") == "0" else None,
        "last_error": state.get("last_error") or None,
        "failed_syncs": int(state.get("failed_syncs", "0")),
        "failed_applies": int(state.get("failed_applies", "0")),
        "conflicts": len(replica.conflicts()),
        "learning_queue_len": queue_len,
        "last_verify": json.loads(state["last_verify_result"]) if state.get("last_verify_result") else None,
        "quarantined": replica.quarantine.count(),
        "quarantine": replica.quarantine.records(QUARANTINE_SHOWN),
        "hub_epoch": state.get("hub_epoch"),
        "last_reconcile": _seconds(state, "last_reconcile"),
        "last_reconcile_reason": state.get("last_reconcile_reason"),
    }
