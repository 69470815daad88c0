"""What sync keeps stays bounded: the change feed is trimmed (never past a live node's cursor), and tombstones,
acknowledged learning entries and the conflicts of expired sessions are pruned (`hub/maintenance.py`)."""

from __future__ import annotations

import json
import time

from hivemind_app.hive import Hive
from hivemind_app.hub import maintenance
from hivemind_app.hub.sync import HubSync
from tests.hub.conftest import NodeFactory
from tests.support.redis_server import RedisServer

FEED = "hive:memory:changes"


def hub(node: Hive) -> HubSync:
    assert node.parts.hub is not None
    return node.parts.hub


def live_ids(hive: Hive) -> set[str]:
    return {m.id for m in hive.recent_memories(100_000)}


def test_the_feed_is_trimmed_to_its_length_but_never_past_the_cursor_of_a_node_still_reporting(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    a.sync()
    b.sync()
    hub(a).channel.settings.redis.feed_max_len = 100
    r = redis_server.client()
    for n in range(150):
        a.store_memory(f"feed entry {n}")
    maintenance.maintain(hub(a).channel)
    assert r.xlen(FEED) >= 150  # b has read none of them: all kept for it

    for node in (a, b):  # both read the feed to its end
        report = node.sync()
        assert report is not None and report.reconciled is None
    maintenance.maintain(hub(a).channel)
    assert 100 <= r.xlen(FEED) < 110
    a.store_memory("one more after the trim")
    report = b.sync()
    assert report is not None and report.reconciled is None and len(live_ids(b)) == 151


def test_a_node_away_longer_than_node_keep_s_finds_the_feed_trimmed_and_bootstraps_by_itself(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    a.sync()
    b.sync()
    hub(a).channel.settings.redis.feed_max_len = 100
    for n in range(150):
        a.store_memory(f"written while b was away {n}")
    a.sync()
    r = redis_server.client()
    away = json.loads(r.hget("hive:memory:cursors", b.parts.db.node_id))
    long_ago = time.time() - hub(a).channel.settings.redis.node_keep_s - 60
    r.hset("hive:memory:cursors", b.parts.db.node_id, json.dumps({**away, "at": long_ago}))
    maintenance.maintain(hub(a).channel)
    assert r.xlen(FEED) < 110 and not r.hexists("hive:memory:cursors", b.parts.db.node_id)

    report = b.sync()
    assert report is not None and report.reconciled and "trimmed past this node's cursor" in report.reconciled
    assert live_ids(b) == live_ids(a) and len(live_ids(b)) == 150
    assert b.status().sync.last_reconcile_reason == report.reconciled


def test_tombstones_past_their_retention_are_pruned_here_and_in_redis_and_recent_ones_kept(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a = make_node("a")
    old = a.store_memory("deleted long ago").memory.id
    recent = a.store_memory("deleted just now").memory.id
    a.delete_memory(old)
    a.sync()
    later = time.time() + hub(a).channel.settings.redis.tombstone_keep_s / 2
    a.delete_memory(recent)
    with a.parts.db.write() as conn:  # the second delete happens half a retention later
        conn.execute("UPDATE memories SET updated_at = ? WHERE id = ?", (later, recent))
    redis_server.client().hset(f"hive:embedding:{recent}", "updated_at", str(later))

    done = maintenance.maintain(hub(a).channel, now=later + hub(a).channel.settings.redis.tombstone_keep_s / 2 + 60)
    assert done.hub_tombstones == 1 and done.local_tombstones == 1
    r = redis_server.client()
    assert not r.exists(f"hive:embedding:{old}") and r.hget(f"hive:embedding:{recent}", "deleted") == b"1"
    with a.parts.db.read() as conn:
        kept = [row[0] for row in conn.execute("SELECT id FROM memories")]
    assert kept == [recent]


def test_learning_entries_redis_acknowledged_are_pruned_after_their_retention_and_unpushed_ones_kept(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a = make_node("a")
    a.add_to_learning_queue({"user_query": "pushed", "tool_used": "grep", "success": True})
    a.sync()
    hub(a).retarget("redis://127.0.0.1:1/0")  # offline: the next entry stays in the outbox
    a.add_to_learning_queue({"user_query": "not pushed yet", "tool_used": "grep", "success": True})
    hub(a).retarget(redis_server.url)

    done = maintenance.maintain(hub(a).channel, now=time.time() + hub(a).channel.settings.redis.learning_keep_s + 60)
    assert done.learning == 1
    assert [e.user_query for e in a.learning_entries()] == ["not pushed yet"]


def test_the_conflict_record_of_a_session_gone_from_redis_is_dropped(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a = make_node("a")
    a.set_context("live", {"current_task": "x"})
    r = redis_server.client()
    record = json.dumps(
        {
            "winner_version": "1",
            "winner_node": "n",
            "winner": "{}",
            "loser_version": "1",
            "loser_node": "m",
            "loser": "{}",
        }
    )
    r.hset("hive:sessions:conflicts", mapping={"live": record, "expired": record})

    assert maintenance.maintain(hub(a).channel).conflicts == 1
    assert r.hkeys("hive:sessions:conflicts") == [b"live"]
