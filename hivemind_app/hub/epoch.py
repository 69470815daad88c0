"""Whether the hub still holds what this node last synced with, and the reconcile when it does not.

Redis keeps a hive epoch (`Keys.hive_epoch`, a random id written once with SET NX). A node remembers the
epoch it last reconciled with, its change-feed cursor, and the feed's newest entry at the end of its last pass
(its high-water mark). Before every pass it checks, in this order:

- no epoch remembered: this node never reconciled with this hub (first contact, or an upgrade from before
  epochs);
- another epoch: a different Redis, or one flushed (the epoch went with everything else) and started afresh;
- the feed was trimmed past the cursor: the feed has dropped entries (XINFO's entries-added exceeds its
  length), and either the entry at the cursor is gone and the feed's first entry is later, or the feed is empty
  (trimmed to nothing) and its last generated id is later than the cursor: the node was away longer than the
  feed keeps, so entries it never read are gone (a trim takes the oldest first, so while the entry at the
  cursor is there, nothing after it was trimmed; XTRIM leaves max-deleted-entry-id alone, so that field tells
  nothing). A bootstrap from an empty feed puts the cursor at its last generated id, so entries trimmed
  before it never count;
- the entry at the high-water mark is gone though it is not older than the feed's first entry (or the feed is
  gone): the hub was restored from a snapshot older than what this node saw, so writes made since (this
  node's included) are lost from it.

Any of these makes the node reconcile by itself: it queues its whole history (`Replica.enqueue_history`, once
per reconcile), which the push scripts take only where it is newer than the hub's, and bootstraps from every
record the hub holds. Where the hub lost records (a new epoch, or a restore) it also writes the session
conflicts it holds back into the hub (`republish_conflicts`, HSETNX: a conflict the hub records already is
kept), in the same once-per-reconcile step and before the pass mirrors the hub's conflicts, so a conflict
recorded before a flush stays flagged on every node (a trim loses feed entries only, so it publishes none: a
conflict resolved meanwhile stays resolved);
then it remembers the epoch, and the time and reason (shown by `sync --status`). It warns once per reconcile,
never for a first contact. A push-only pass (a hook) queues and pushes the history but leaves the bootstrap,
and the epoch, to the next full pass.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text

log = logging.getLogger(__name__)

FIRST_CONTACT = "first contact with this hub"
EPOCH_CHANGED = "the hub's epoch changed"
RESTORED = "the hub was restored from an older copy"


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def hub_epoch(channel: HubChannel) -> str:
    """The hive's epoch, written now if this Redis has none (a new or flushed hub)."""
    client = channel.client()
    client.set(channel.keys.hive_epoch, uuid.uuid4().hex[:16], nx=True)
    return as_text(client.get(channel.keys.hive_epoch))


def why_reconcile(channel: HubChannel, epoch: str) -> str | None:
    """Why this node must reconcile its whole history with the hub now (None: it need not)."""
    state = channel.replica.state()
    known = state.get("hub_epoch")
    if known is None:
        return FIRST_CONTACT
    if known != epoch:
        return f"{EPOCH_CHANGED} ({known} -> {epoch}): it is a new or flushed Redis"
    client = channel.client()
    feed = channel.keys.memory_changes
    cursor = state.get("feed_cursor", "0-0")
    high_water = state.get("feed_high_water", "0-0")
    info = client.xinfo_stream(feed) if client.exists(feed) else None
    first_entry = info.get("first-entry") if info else None
    first = as_text(first_entry[0]) if first_entry else None

    def missing(entry_id: str) -> bool:
        return entry_id == "0-0" or not client.xrange(feed, entry_id, entry_id)

    trimmed = info is not None and int(info.get("entries-added", 0)) > int(info["length"])
    last_generated = as_text(info.get("last-generated-id") or "0-0") if info else "0-0"
    if trimmed and first is None and _id(cursor) < _id(last_generated):  # trimmed to nothing
        return (
            f"the change feed was trimmed past this node's cursor ({cursor}, every entry up to {last_generated} "
            "is gone): it was away too long"
        )
    if trimmed and first is not None and _id(cursor) < _id(first) and missing(cursor):
        return (
            f"the change feed was trimmed past this node's cursor ({cursor}, first entry {first}): it was away too long"
        )
    if high_water != "0-0" and (first is None or _id(high_water) >= _id(first)) and missing(high_water):
        return f"the change feed lacks entry {high_water}, which this node saw: {RESTORED}"
    return None


def hub_lost_records(reason: str) -> bool:
    """Whether the hub lost records this node saw (a new, flushed or restored hub), not merely feed entries."""
    return reason.startswith(EPOCH_CHANGED) or reason.endswith(RESTORED)


def queue_history(channel: HubChannel, epoch: str, reason: str) -> None:
    """Queue this node's whole history for pushing, once per reconcile (push-only passes before the full
    pass that completes it do not queue it again); where the hub lost records, publish again the session
    conflicts this node holds, before any pass mirrors the hub's (now empty) conflicts over them."""
    marker = f"{epoch}|{reason}"
    if channel.replica.state().get("history_queued") != marker:
        channel.replica.enqueue_history()
        if hub_lost_records(reason):
            republish_conflicts(channel)
        channel.replica.set_state(history_queued=marker)


def republish_conflicts(channel: HubChannel) -> int:
    """Write each session conflict this node holds back into the hub's conflicts hash unless the hub records
    one for that session already (HSETNX: a conflict found since is kept); returns how many were written."""
    conflicts = channel.replica.conflicts(with_hub_record=True)
    if not conflicts:
        return 0
    pipe = channel.client().pipeline(transaction=False)
    for session_id, record in conflicts.items():
        if record.get("hub_record"):  # as the hub held it, its sides' MACs with it (trust/records.py)
            pipe.hsetnx(channel.keys.session_conflicts, session_id, record["hub_record"])
            continue
        fields: dict[str, Any] = {}
        for side in ("winner", "loser"):
            fields[f"{side}_version"] = str(record[side]["version"])
            fields[f"{side}_node"] = record[side]["node"]
            fields[side] = json.dumps(record[side]["state"], ensure_ascii=False)
        pipe.hsetnx(channel.keys.session_conflicts, session_id, json.dumps(fields, ensure_ascii=False))
    return sum(int(written) for written in pipe.execute())


def remember(channel: HubChannel, epoch: str, reason: str) -> None:
    """The reconcile is done: remember the epoch, when and why (a warning, once, unless it was first contact)."""
    if reason != FIRST_CONTACT:
        log.warning("reconciled this node's whole history with the hub at %s: %s", channel.endpoint, reason)
    channel.replica.set_state(hub_epoch=epoch, last_reconcile=time.time(), last_reconcile_reason=reason)


def mark_high_water(channel: HubChannel) -> None:
    """After a pass: the feed's newest entry is this node's high-water mark (what a restore would lose)."""
    last = channel.client().xrevrange(channel.keys.memory_changes, count=1)
    channel.replica.set_state(feed_high_water=as_text(last[0][0]) if last else "0-0")
