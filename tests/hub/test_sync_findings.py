"""Minimal reproductions of what the sync model (tests/hub/test_sync_model.py) found, one test per finding, on
a real redis-server: each states what should hold and fails while the bug is there."""

from __future__ import annotations

import time

import pytest

from hivemind_app.hive import Hive
from tests.hub.conftest import NodeFactory, closed_port_url
from tests.support.redis_server import RedisServer


def go_offline(hive: Hive, url: str | None = None) -> None:
    assert hive.parts.hub is not None
    hive.parts.hub.retarget(url or closed_port_url())


def run_clock_ahead(hive: Hive, seconds: float) -> None:
    """The node's hybrid logical clock stands `seconds` ahead of the wall clock (a clock that ran ahead)."""
    ahead = str(int((time.time() + seconds) * 1000) << 16)
    with hive.parts.db.write() as conn:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('hlc', ?)", (ahead,))


def test_a_node_that_missed_a_delete_does_not_bring_the_memory_back_when_it_embeds_it_later(
    make_node: NodeFactory,
) -> None:
    a, b = make_node("a"), make_node("b")
    doomed = a.store_memory("deleted on a while b never heard of it").memory.id
    b.sync()  # b has stored nothing yet, so it has no embedding space: it applies a's memory without a vector
    a.delete_memory(doomed)
    b.store_memory("anything")  # the store's backfill embeds the memory and publishes it as a newer version
    a.sync()
    assert a.get_memory(doomed).deleted, "the backfill on b resurrected a memory a had deleted"


def test_tags_a_delete_removed_do_not_come_back_when_a_node_that_missed_it_applies_a_later_store(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b, c = make_node("a"), make_node("b"), make_node("c")
    memory_id = a.store_memory("the deploy key rotates every 90 days", tags=["ops"]).memory.id
    b.sync()
    c.sync()
    go_offline(a)  # a misses the delete and the store that follows it
    b.delete_memory(memory_id)
    c.sync()
    c.store_memory("the deploy key rotates every 90 days", tags=["security"])  # stored again, after the delete
    go_offline(a, redis_server.url)
    for node in (a, b, c, a, b, c):
        node.sync(force=True)
    for node in (a, b, c):
        assert node.get_memory(memory_id).tags == ("security",), node.settings.node.name


@pytest.mark.parametrize(
    "seam",
    [
        "acknowledge",  # Redis took the batch, the outbox rows were not deleted
        "mark_session_synced",  # ... and not even the answer was recorded
    ],
)
def test_a_session_push_retried_after_a_pusher_crash_is_not_a_conflict(
    seam: str, make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    go_offline(a)
    a.set_context("s1", {"current_task": "written on a"})
    go_offline(a, redis_server.url)
    replica = a.parts.hub.replica  # type: ignore[union-attr]

    def crash(*args: object) -> None:
        raise KeyboardInterrupt(f"the pusher dies after Redis took the batch, in {seam}")

    setattr(replica, seam, crash)
    try:
        a.sync(force=True)
    except KeyboardInterrupt:
        pass
    finally:
        delattr(replica, seam)
    b.sync()
    b.set_context("s1", {"current_task": "b carried on from a's edit"})  # based on a's edit: no divergence
    a.sync(force=True)  # a retries the edit it never recorded as pushed
    assert redis_server.client().hlen("hive:sessions:conflicts") == 0, "a's retry was taken for a lost edit"
    assert a.get_context("s1").current_task == "b carried on from a's edit"


def test_a_memory_damaged_in_place_in_redis_is_repaired_by_the_anti_entropy_of_a_node_that_holds_it(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    memory_id = a.store_memory("only a and the hub hold this one").memory.id
    r = redis_server.client()
    r.hset(f"hive:embedding:{memory_id}", "tags", "null")  # damaged, its version and node unchanged
    r.xadd("hive:memory:changes", {"kind": "memory", "id": memory_id, "version": "1", "node": "rogue"})
    b.sync()  # quarantined on b: b does not have the memory
    assert a.verify_sync(repair=True)["in_sync"] == 0  # a sees the drift and pushes its copy...
    assert r.hget(f"hive:embedding:{memory_id}", "tags") != b"null", "...which the push script refuses (same stamp)"
    b.sync()
    assert b.get_memory(memory_id).text == "only a and the hub hold this one"


def test_verify_does_not_say_in_sync_while_the_hub_holds_a_memory_this_node_refused(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    memory_id = a.store_memory("b cannot read the hub's copy of this").memory.id
    redis_server.client().hset(f"hive:embedding:{memory_id}", "tags", "null")
    b.sync()
    assert b.status().sync.quarantined == 1
    assert b.verify_sync(repair=False)["in_sync"] == 0, "b lacks a memory the hub holds, yet verify says in sync"


def test_a_reconcile_after_a_feed_trim_does_not_take_a_superseded_session_edit_for_a_conflict(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    b.set_context("s1", {"current_task": "written on b"})
    b.sync()
    a.sync()
    a.set_context("s1", {"current_task": "a carried on from b's edit"})  # based on b's edit: no divergence
    r = redis_server.client()
    r.xtrim("hive:memory:changes", maxlen=0, approximate=False)  # b's cursor is trimmed away
    a.store_memory("a write after the trim")
    b.sync()  # b reconciles: its whole history is queued again, s1 at the version a's edit replaced
    assert r.hlen("hive:sessions:conflicts") == 0, "the reconcile's re-push of b's old edit was taken for a lost edit"
    assert b.get_context("s1").current_task == "a carried on from b's edit"


def test_a_session_conflict_stays_flagged_after_the_hub_is_flushed_and_reconciled(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    a.sync()
    b.sync()
    a.set_context("s1", {"current_task": "edited on a"})
    b.set_context("s1", {"current_task": "edited on b, not having seen a's edit"})  # b's push loses: a conflict
    for node in (a, b):
        node.sync()
        assert list(node.conflicts(sync=False)) == ["s1"]
    redis_server.client().flushall()
    for node in (a, b, a, b):
        node.sync()  # each notices the new epoch and reconciles its history
    for node in (a, b):
        assert list(node.conflicts(sync=False)) == ["s1"], "a's lost edit is no longer flagged anywhere"


def test_a_node_whose_unread_feed_entries_were_all_trimmed_away_reconciles(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    b.sync()
    go_offline(b)
    memory_id = a.store_memory("written while b was away").memory.id
    redis_server.client().xtrim("hive:memory:changes", maxlen=0, approximate=False)  # the feed is now empty
    go_offline(b, redis_server.url)
    b.sync(force=True)
    assert b.get_memory(memory_id).text == "written while b was away", "an empty feed hid the trim"


def test_labels_a_delete_removed_do_not_come_back_when_a_node_that_missed_the_delete_stores_the_memory_again(
    make_node: NodeFactory,
) -> None:
    a, b = make_node("a"), make_node("b")
    memory_id = a.store_memory("the deploy key rotates every 90 days", tags=["ops"]).memory.id
    b.sync()
    b.delete_memory(memory_id)  # removes 'ops'
    a.store_memory("the deploy key rotates every 90 days", tags=["security"])  # a has not pulled the delete
    for node in (a, b, a, b):
        node.sync()
    for node in (a, b):
        assert node.get_memory(memory_id).tags == ("security",), node.settings.node.name


def test_an_edit_pushed_into_a_flushed_hub_is_not_overwritten_silently_by_a_node_whose_clock_runs_ahead(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    a.set_context("s1", {"current_task": "where both began"})
    a.sync()
    b.sync()
    run_clock_ahead(b, 600)
    b.set_context("s1", {"current_task": "b's edit, stamped ahead"})  # pushed; a never pulls it
    redis_server.client().flushall()
    a.set_context("s1", {"current_task": "a's edit, made after the flush"})  # a reconciles and pushes it
    b.sync()  # b reconciles: its edit meets a's, which it has never seen
    a.sync()
    for node in (a, b):
        assert list(node.conflicts(sync=False)) == ["s1"], f"{node.settings.node.name}: a's edit was dropped unflagged"
        assert node.get_context("s1").current_task == "b's edit, stamped ahead"


def test_an_edit_a_node_had_synced_before_two_flushes_is_not_dropped_silently_for_a_later_edit_that_never_saw_it(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    b, c = make_node("b"), make_node("c")
    c.set_context("s1", {"current_task": "where both began"})
    b.sync()
    go_offline(b)
    r = redis_server.client()
    r.flushall()
    c.set_context("s1", {"current_task": "c's edit, pushed into the flushed hub"})
    c.sync()
    b.set_context("s1", {"current_task": "b's edit, offline, on the first version"})
    r.flushall()  # the hub loses c's edit too: only c holds it, as synced
    go_offline(b, redis_server.url)
    b.sync(force=True)  # b reconciles first: its edit goes into the empty hub
    c.sync()  # c publishes its synced edit again: it meets b's, which never saw it
    b.sync()
    for node in (b, c):
        assert list(node.conflicts(sync=False)) == ["s1"], f"{node.settings.node.name}: c's edit was dropped unflagged"
