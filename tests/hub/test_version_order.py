"""Writes of one record are ordered by stamp, (version, node), everywhere: ties have one winner, and verify
compares content, not versions alone."""

from __future__ import annotations

import time

from hivemind_app.hive import Hive
from hivemind_app.store.kinds import RecordKind
from tests.hub.conftest import NodeFactory, closed_port_url
from tests.support.redis_server import RedisServer


def set_clock(node: Hive, version: int) -> None:
    with node.parts.db.write() as conn:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('hlc', ?)", (str(version),))


def row(node: Hive, memory_id: str) -> tuple[int, int, str, list[str]]:
    """The memory's version, deleted flag, session and tags as the node holds them."""
    with node.parts.db.read() as conn:
        found = conn.execute(
            "SELECT rowid, version, deleted, coalesce(session_id, '') FROM memories WHERE id = ?", (memory_id,)
        ).fetchone()
        tags = sorted(r[0] for r in conn.execute("SELECT tag FROM memory_tags WHERE memory_rowid = ?", (found[0],)))
    return int(found[1]), int(found[2]), str(found[3]), tags


def test_two_nodes_writing_one_memory_at_the_same_version_converge_on_one_winner_on_both_nodes_and_the_hub(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    assert a.parts.hub is not None and b.parts.hub is not None
    a.sync()
    b.sync()
    a.parts.hub.retarget(closed_port_url())
    ahead = (int(time.time() * 1000) + 60_000) << 16  # both clocks dragged to one value: one version minted
    set_clock(a, ahead)
    set_clock(b, ahead)
    memory_id = a.store_memory("The build cache lives on the NAS", tags=["from-a"]).memory.id
    a.delete_memory(memory_id)  # A's copy: a tombstone at ahead + 2
    set_clock(b, ahead + 1)
    b.store_memory("The build cache lives on the NAS", tags=["from-b"])  # B's: live, at ahead + 2 too
    assert row(a, memory_id)[0] == row(b, memory_id)[0] == ahead + 2
    a.parts.hub.retarget(redis_server.url)
    for node in (a, b, a, b):
        node.sync(force=True)

    hub = redis_server.client().hgetall(f"hive:embedding:{memory_id}")
    a_wins = a.parts.db.node_id > b.parts.db.node_id
    assert row(a, memory_id) == row(b, memory_id)
    assert row(a, memory_id)[1] == (1 if a_wins else 0)
    assert hub[b"deleted"] == (b"1" if a_wins else b"0")
    assert hub[b"node"].decode() == (a.parts.db.node_id if a_wins else b.parts.db.node_id)
    assert a.parts.hub.verify(repair=False)["in_sync"] == b.parts.hub.verify(repair=False)["in_sync"] == 1


def test_verify_finds_and_repairs_a_memory_whose_content_differs_at_the_same_version(make_node: NodeFactory) -> None:
    a, b = make_node("a"), make_node("b")
    memory_id = a.store_memory("Backups run at 03:00", tags=["ops"], session_id="s-real").memory.id
    b.sync()
    with b.parts.db.write() as conn:  # drift that leaves the version alone
        conn.execute("UPDATE memories SET session_id = 's-drifted' WHERE id = ?", (memory_id,))
    assert b.parts.hub is not None

    report = b.parts.hub.verify(repair=False)
    assert report["differ"] == 1 and report["to_push"] == report["to_pull"] == 0 and report["in_sync"] == 0
    b.parts.hub.verify()
    assert row(b, memory_id)[2] == "s-real"
    assert b.parts.hub.verify(repair=False)["in_sync"] == 1


def test_a_push_retried_at_the_same_stamp_with_nothing_changed_writes_nothing_and_adds_no_feed_entry(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a = make_node("a")
    memory_id = a.store_memory("pushed once, then retried").memory.id
    r = redis_server.client()
    before, feed = r.hgetall(f"hive:embedding:{memory_id}"), r.xlen("hive:memory:changes")
    with a.parts.db.write() as conn:
        a.parts.db.enqueue(conn, RecordKind.MEMORY, memory_id)  # as if the outbox delete never happened
    a.sync(force=True)
    assert r.hgetall(f"hive:embedding:{memory_id}") == before and r.xlen("hive:memory:changes") == feed


def test_a_same_stamp_repair_from_a_node_without_the_vector_keeps_the_hubs_vector_and_leaves_the_quarantine(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    memory_id = a.store_memory("b applies this without a vector of its own").memory.id
    b.sync()  # b has no embedding space yet: its copy has no vector
    r = redis_server.client()
    key = f"hive:embedding:{memory_id}"
    vector = r.hget(key, "vector")
    r.hset(key, "tags", "null")  # damaged in place, its stamp unchanged
    report = b.verify_sync(repair=True)
    assert report["unreadable"] == 1 and report["in_sync"] == 0
    assert r.hget(key, "tags") == b"[]" and r.hget(key, "vector") == vector and vector
    assert b.status().sync.quarantined == 0
    assert b.verify_sync(repair=False)["in_sync"] == 1


def test_a_session_edit_at_the_version_of_the_hubs_base_minted_by_another_node_is_kept_as_a_conflict(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b, c = make_node("a"), make_node("b"), make_node("c")
    assert a.parts.hub is not None and b.parts.hub is not None
    for node in (a, b, c):
        node.sync()
    b.parts.hub.retarget(closed_port_url())
    ahead = (int(time.time() * 1000) + 60_000) << 16  # both clocks dragged to one value: one version minted
    set_clock(a, ahead)
    set_clock(b, ahead)
    a.set_context("s1", {"current_task": "edited on A"})  # (ahead + 1, A)
    b.set_context("s1", {"current_task": "edited on B"})  # (ahead + 1, B), never synced: based on nothing
    a.sync(force=True)
    c.sync(force=True)
    c.set_context("s1", {"current_task": "edited on C on top of A"})  # the hub: C's edit, based on A's
    c.sync(force=True)
    session = redis_server.client().hgetall("hive:session:s1")
    assert session[b"base"] == str(ahead + 1).encode()

    b.parts.hub.retarget(redis_server.url)
    b.sync(force=True)  # B's edit has A's version, but A minted that one: B's is no edit the hub took

    conflicts = b.parts.hub.replica.conflicts()
    assert list(conflicts) == ["s1"], "B's edit was dropped without a conflict"
    assert conflicts["s1"]["loser"]["state"]["current_task"] == "edited on B"
    assert conflicts["s1"]["winner"]["state"]["current_task"] == "edited on C on top of A"
    assert b.get_context("s1").current_task == "edited on C on top of A"
