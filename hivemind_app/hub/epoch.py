"""Whether the hub still holds what this node last synced with, and the reconcile when it does not.

Redis keeps a hive epoch (`Keys.hive_epoch`, a random id written once with SET NX). A node remembers the
epoch it last reconciled with, its change-feed cursor, and the feed's newest entry at the end of its last pass
(its high-water mark). Before every pass it checks, in this order:

- no epoch remembered: this node never reconciled with this hub (first contact, or an upgrade from before
  epochs);
- another epoch: a different Redis, or one flushed (the epoch went with everything else) and started afresh;
- the feed was trimmed past the cursor: the entry at the cursor is gone, the feed's first entry is later, and
  the feed has dropped entries (XINFO's entries-added exceeds its length): the node was away longer than the
  feed keeps, so entries it never read are gone (a trim takes the oldest first, so while the entry at the
  cursor is there, nothing after it was trimmed);
- the entry at the high-water mark is gone though it is not older than the feed's first entry (or the feed is
  gone): the hub was restored from a snapshot older than what this node saw, so writes made since (this
  node's included) are lost from it.

Any of these makes the node reconcile by itself: it queues its whole history (`Replica.enqueue_history`, once
per reconcile), which the push scripts take only where it is newer than the hub's, and bootstraps from every
record the hub holds;
then it remembers the epoch, and the time and reason (shown by `sync --status`). It warns once per reconcile,
never for a first contact. A push-only pass (a hook) queues and pushes the history but leaves the bootstrap,
and the epoch, to the next full pass.
"""

from __future__ import annotations

import logging
import time
import uuid

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text

log = logging.getLogger(__name__)

FIRST_CONTACT = "first contact with this hub"


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
        return f"the hub's epoch changed ({known} -> {epoch}): it is a new or flushed Redis"
    client = channel.client()
    feed = channel.keys.memory_changes
    cursor = state.get("feed_cursor", "0-0")
    high_water = state.get("feed_high_water", "0-0")
    info = client.xinfo_stream(feed) if client.exists(feed) else None
    first_entry = info.get("first-entry") if info else None
    first = as_text(first_entry[0]) if first_entry else None

    def missing(entry_id: str) -> bool:
        return entry_id == "0-0" or not client.xrange(feed, entry_id, entry_id)

    if (
        info is not None
        and first is not None
        and int(info.get("entries-added", 0)) > int(info["length"])
        and _id(cursor) < _id(first)
        and missing(cursor)
    ):
        return (
            f"the change feed was trimmed past this node's cursor ({cursor}, first entry {first}): it was away too long"
        )
    if high_water != "0-0" and (first is None or _id(high_water) >= _id(first)) and missing(high_water):
        return f"the change feed lacks entry {high_water}, which this node saw: the hub was restored from an older copy"
    return None


def queue_history(channel: HubChannel, epoch: str, reason: str) -> None:
    """Queue this node's whole history for pushing, once per reconcile (push-only passes before the full
    pass that completes it do not queue it again)."""
    marker = f"{epoch}|{reason}"
    if channel.replica.state().get("history_queued") != marker:
        channel.replica.enqueue_history()
        channel.replica.set_state(history_queued=marker)


def remember(channel: HubChannel, epoch: str, reason: str) -> None:
    """The reconcile is done: remember the epoch, when and why (a warning, once, unless it was first contact)."""
    if reason != FIRST_CONTACT:
        log.warning("reconciled this node's whole history with the hub at %s: %s", channel.endpoint, reason)
    channel.replica.set_state(hub_epoch=epoch, last_reconcile=time.time(), last_reconcile_reason=reason)


def mark_high_water(channel: HubChannel) -> None:
    """After a pass: the feed's newest entry is this node's high-water mark (what a restore would lose)."""
    last = channel.client().xrevrange(channel.keys.memory_changes, count=1)
    channel.replica.set_state(feed_high_water=as_text(last[0][0]) if last else "0-0")
