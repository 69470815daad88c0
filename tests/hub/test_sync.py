"""Sync between node mirrors through a real redis-server (started per test, AOF on, loopback only)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any

import pytest

from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.hub.push import Pusher
from hivemind_app.hub.sync import HubSync
from hivemind_app.store.local_state import LocalState
from hivemind_app.store.replica import Replica
from tests.hub.conftest import NodeFactory, closed_port_url
from tests.support.redis_server import RedisServer


def live_ids(hive: Hive) -> set[str]:
    return {m.id for m in hive.recent_memories(100_000)}


def go_offline(hive: Hive, url: str | None = None) -> None:
    """Point a node at a closed port (its side of a partition) or back at `url`."""
    assert hive.parts.hub is not None
    hive.parts.hub.retarget(url or closed_port_url())


def test_the_seeds_keys_have_the_seeds_types_and_ttls(make_node: NodeFactory, redis_server: RedisServer) -> None:
    node = make_node("laptop")
    stored = node.store_memory("Staging Postgres listens on 5433", tags=["infra"], source="notes")
    node.set_context("s1", {"current_task": "check ports", "files": ["db.py"]})
    node.add_to_learning_queue({"user_query": "last commit?", "tool_used": "git_diff", "success": True})
    node.set_tool_cache("grep", "TODO", "3 matches")
    assert node.parts.hub is not None
    node.parts.hub.heartbeat({"name": "laptop", "model": "SmolLM2-135M", "roles": []}, beat_s=2.0)
    r = redis_server.client()
    memory_id = stored.memory.id
    expected = {
        "hive:session:s1": "hash",
        "hive:memory:embeddings": "zset",
        f"hive:embedding:{memory_id}": "hash",
        "hive:learning:queue": "stream",
        "hive:memory:changes": "stream",
        "hive:models:active": "hash",
        "hive:nodes:active": "set",
        f"hive:node:{node.parts.db.node_id}:heartbeat": "string",
    }
    tool_keys = [k.decode() for k in r.keys("hive:tool:grep:*")]
    assert len(tool_keys) == 1 and r.type(tool_keys[0]) == b"string"
    for key, kind in expected.items():
        assert r.type(key).decode() == kind, key
    assert 6 * 86400 < r.ttl("hive:session:s1") <= 7 * 86400
    assert 3500 < r.ttl(tool_keys[0]) <= 3600
    assert 0 < r.pttl(f"hive:node:{node.parts.db.node_id}:heartbeat") <= 6000
    assert r.ttl(f"hive:embedding:{memory_id}") == -1 and r.ttl("hive:memory:embeddings") == -1
    record = r.hgetall(f"hive:embedding:{memory_id}")
    assert record[b"text"] == b"Staging Postgres listens on 5433" and record[b"source"] == b"notes"
    assert len(record[b"vector"]) == 4 * 32  # float32 blob
    member = r.zrange("hive:memory:embeddings", 0, -1)[0].decode()
    embedding_hash, text_hash = member.split(":")
    assert text_hash == memory_id and len(embedding_hash) == 64
    entry = r.xrange("hive:learning:queue")[0][1]
    assert {b"user_query", b"tool_used", b"result", b"success", b"timestamp"} <= set(entry)
    assert json.loads(r.hget("hive:session:s1", "files")) == ["db.py"]
    assert r.hget("hive:models:active", "laptop") == b"SmolLM2-135M"


def test_two_and_three_nodes_converge_after_interleaved_writes_and_deletes(make_node: NodeFactory) -> None:
    a, b, c = make_node("a"), make_node("b"), make_node("c")
    for n in range(30):
        (a, b, c)[n % 3].store_memory(f"note {n} from node {'abc'[n % 3]}", tags=[f"t{n % 2}"])
    doomed = next(m for m in a.recent_memories(100) if m.text == "note 0 from node a")
    b.sync()
    b.delete_memory(doomed.id)
    c.store_memory("note 1 from node b", tags=["merged-from-c"])  # the same text as b's: one memory
    for node in (a, b, c, a, b, c):
        node.sync()
    assert live_ids(a) == live_ids(b) == live_ids(c)
    assert len(live_ids(a)) == 29
    assert a.get_memory(doomed.id).deleted and c.get_memory(doomed.id).deleted
    merged = {next(m for m in n.recent_memories(100) if m.text == "note 1 from node b").tags for n in (a, b, c)}
    assert merged == {("merged-from-c", "t1")}  # tags added on two nodes at once are both kept
    found = a.search_memory("note 7", mode="keyword", limit=1)
    assert found.hits and found.hits[0].memory.text == "note 7 from node b"


def test_a_node_that_missed_a_thousand_writes_catches_up(make_node: NodeFactory, redis_server: RedisServer) -> None:
    a, b = make_node("a"), make_node("b")
    b.sync()
    go_offline(b)
    a.store_memories([MemoryDraft(f"while b was away: note {n}") for n in range(1000)])
    report = b.sync()
    assert report is not None and not report.online and "unreachable" in (report.error or "")
    assert len(live_ids(b)) == 0
    go_offline(b, redis_server.url)
    report = b.sync(force=True)
    assert report is not None and report.online and report.pulled == 1000
    assert live_ids(b) == live_ids(a) and len(live_ids(b)) == 1000
    assert b.search_memory("while b was away note 512", mode="keyword", limit=1).hits


def test_writes_made_offline_are_kept_and_pushed_on_return(make_node: NodeFactory, redis_server: RedisServer) -> None:
    a, b = make_node("a"), make_node("b")
    go_offline(a)
    for n in range(20):
        a.store_memory(f"offline note {n}")  # never an error, never lost
    a.set_context("s-off", {"current_task": "written offline"})
    status = a.status().sync
    assert status.online is False and status.outbox == 21 and "unreachable" in (status.last_error or "")
    go_offline(a, redis_server.url)
    assert a.sync(force=True).online  # type: ignore[union-attr]
    assert a.status().sync.outbox == 0
    b.sync()
    assert len(live_ids(b)) == 20 and b.get_context("s-off").current_task == "written offline"


@pytest.mark.slow
def test_kill_9_of_redis_mid_push_then_restart_from_aof_leaves_every_memory_exactly_once(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    drafts = [MemoryDraft(f"bulk note {n}: deploy step {n * 7}") for n in range(5000)]
    killed = threading.Event()

    def kill_soon() -> None:
        time.sleep(0.5)
        redis_server.kill()
        killed.set()

    threading.Thread(target=kill_soon).start()
    for start in range(0, 5000, 100):
        a.store_memories(drafts[start : start + 100])  # offline mid-way: no error, the outbox grows
    assert killed.wait(10)
    redis_server.start()  # same dir, same port: Redis replays its AOF
    assert a.sync(force=True).online  # type: ignore[union-attr]
    assert a.parts.hub is not None
    repair = a.parts.hub.verify()  # anti-entropy: anything acknowledged but lost with the last second of AOF
    assert repair["local"] == 5000
    b.sync()
    r = redis_server.client()
    assert r.zcard("hive:memory:embeddings") == 5000
    assert len(list(r.scan_iter(match="hive:embedding:*", count=1000))) == 5000
    assert len(live_ids(a)) == len(live_ids(b)) == 5000
    assert a.parts.hub.verify(repair=False)["in_sync"] == 1


def test_a_pusher_that_crashes_after_redis_wrote_does_not_duplicate(
    make_node: NodeFactory, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_node("a")
    r = redis_server.client()
    go_offline(a)
    a.store_memories([MemoryDraft(f"crash test {n}") for n in range(50)])
    a.add_to_learning_queue({"user_query": "q", "tool_used": "grep", "success": True})
    go_offline(a, redis_server.url)

    def crash(self: Replica, seqs: list[int]) -> None:
        raise KeyboardInterrupt("pusher killed between the Redis write and the outbox delete")

    monkeypatch.setattr(Replica, "acknowledge", crash)
    with pytest.raises(KeyboardInterrupt):
        a.sync(force=True)
    feed, zset, queue = r.xlen("hive:memory:changes"), r.zcard("hive:memory:embeddings"), r.xlen("hive:learning:queue")
    assert (zset, queue) == (50, 1)
    monkeypatch.undo()
    assert a.status().sync.outbox == 51  # nothing was acknowledged
    a.sync(force=True)
    assert a.status().sync.outbox == 0
    assert (r.xlen("hive:memory:changes"), r.zcard("hive:memory:embeddings"), r.xlen("hive:learning:queue")) == (
        feed,
        zset,
        queue,
    )


def test_a_session_edited_on_both_sides_of_a_partition_has_one_winner_and_one_flagged_conflict(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    a.set_context("s1", {"current_task": "start", "files": ["x.py"]})
    b.sync()
    assert b.get_context("s1").current_task == "start"

    go_offline(a)
    a.set_context("s1", {"current_task": "edited on A while apart"})
    time.sleep(0.01)
    b.set_context("s1", {"current_task": "edited on B while apart"})  # later: B wins last-writer-wins
    go_offline(a, redis_server.url)
    a.sync(force=True)
    b.sync(force=True)

    assert a.get_context("s1").current_task == b.get_context("s1").current_task == "edited on B while apart"
    for node in (a, b):
        conflicts = node.parts.hub.replica.conflicts()  # type: ignore[union-attr]
        assert list(conflicts) == ["s1"]
        assert conflicts["s1"]["loser"]["state"]["current_task"] == "edited on A while apart"
        assert node.status().sync.conflicts == 1

    assert a.parts.hub is not None
    a.parts.hub.resolve_conflict("s1", keep="B")  # keep the losing edit after all
    b.sync(force=True)
    assert a.get_context("s1").current_task == b.get_context("s1").current_task == "edited on A while apart"
    assert b.parts.hub is not None and b.parts.hub.replica.conflicts() == {}


def test_two_nodes_editing_a_session_with_the_same_version_number_make_a_conflict_won_by_the_larger_node_id(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    a.set_context("s1", {"current_task": "start"})
    b.sync()
    go_offline(a)
    # Both clocks ahead of the wall clock by the same amount: each node's next version is that value + 1.
    ahead = str((int(time.time() * 1000) + 60_000) << 16)
    for node in (a, b):
        with node.parts.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('hlc', ?)", (ahead,))
    a.set_context("s1", {"current_task": "edited on A"})
    b.set_context("s1", {"current_task": "edited on B"})
    go_offline(a, redis_server.url)
    a.sync(force=True)
    b.sync(force=True)

    a.sync(force=True)  # a winning push from A reaches B through the feed
    winner, loser = ("A", "B") if a.parts.db.node_id > b.parts.db.node_id else ("B", "A")
    assert a.get_context("s1").current_task == b.get_context("s1").current_task == f"edited on {winner}"
    conflicts = a.parts.hub.replica.conflicts()  # type: ignore[union-attr]
    assert conflicts["s1"]["loser"]["state"]["current_task"] == f"edited on {loser}"
    assert conflicts["s1"]["winner"]["version"] == conflicts["s1"]["loser"]["version"]


def test_clearing_a_session_clears_it_on_every_node(make_node: NodeFactory) -> None:
    a, b = make_node("a"), make_node("b")
    a.set_context("s1", {"current_task": "x"})
    b.sync()
    a.clear_session("s1")
    b.sync()
    assert b.get_context("s1").updated_at is None


def test_the_tool_cache_is_shared_through_redis(make_node: NodeFactory) -> None:
    a, b = make_node("a"), make_node("b")
    a.set_tool_cache("grep", '{"q": "TODO"}', "3 matches")
    assert b.get_tool_cache("grep", '{"q": "TODO"}') == "3 matches"


def test_anti_entropy_finds_and_repairs_drift(make_node: NodeFactory, redis_server: RedisServer) -> None:
    a = make_node("a")
    a.store_memories([MemoryDraft(f"drift {n}") for n in range(10)])
    r = redis_server.client()
    victim = next(iter(r.scan_iter(match="hive:embedding:*")))
    r.delete(victim)  # drift: Redis lost a record behind everyone's back
    assert a.parts.hub is not None
    report = a.parts.hub.verify()
    assert report["to_push"] == 1 and report["in_sync"] == 0
    hub = a.parts.hub
    assert hub.verify(repair=False) == {**hub.verify(repair=False), "to_push": 0, "to_pull": 0, "in_sync": 1}
    assert r.exists(victim)


def test_hubs_with_different_prefixes_share_one_redis_without_mixing(make_node: NodeFactory) -> None:
    home, lab = make_node("home", prefix="home"), make_node("lab", prefix="lab")
    home.store_memory("home only")
    lab.sync()
    assert live_ids(lab) == set()


@pytest.mark.parametrize("case", ["wrong password", "unreachable", "not redis"])
def test_connection_problems_give_one_clear_line_without_the_password(
    case: str,
    make_node: NodeFactory,
    tmp_path,
    not_redis_port: int,  # type: ignore[no-untyped-def]
) -> None:
    if case == "wrong password":
        server = RedisServer(tmp_path / "auth-redis", password="right-secret")
        server.start()
        url, expected = f"redis://:wrong-secret@127.0.0.1:{server.port}/0", "refused the password"
    elif case == "unreachable":
        server, url, expected = None, closed_port_url(), "is unreachable"
    else:
        server, url, expected = None, f"redis://127.0.0.1:{not_redis_port}/0", "not Redis"
    try:
        node = make_node("n", url=url)
        stored = node.store_memory("kept locally whatever Redis says")
        assert stored.created
        report = node.sync(force=True)
        assert report is not None and not report.online
        assert expected in (report.error or "") and "secret" not in (report.error or "")
        assert expected in node.status().sync.last_error
    finally:
        if server:
            server.stop()


def test_going_offline_is_reported_once_not_per_call(make_node: NodeFactory, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    node = make_node("n", url=closed_port_url())
    with caplog.at_level(logging.WARNING, logger="hivemind_app"):
        for n in range(5):
            node.store_memory(f"note {n}")
            assert node.parts.hub is not None
            node.parts.hub.replica.set_state(retry_at=0)
    assert sum("Working offline" in r.getMessage() for r in caplog.records) == 1
    assert isinstance(node.parts.hub, HubSync) and node.parts.hub.replica.outbox_depth() == 5


def test_tags_added_to_one_memory_on_both_sides_of_a_partition_are_all_kept(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    b, c = make_node("b"), make_node("c")
    b.store_memory("The deploy key rotates every 90 days", tags=["ops"])
    c.sync()
    go_offline(b)
    b.store_memory("The deploy key rotates every 90 days", tags=["security"])  # older edit, made offline
    time.sleep(0.01)
    c.store_memory("The deploy key rotates every 90 days", tags=["compliance"])  # newer edit, pushed at once
    go_offline(b, redis_server.url)
    for node in (b, c, b, c):
        node.sync(force=True)
    for node in (b, c):
        memory = node.recent_memories(10)[0]
        assert memory.tags == ("compliance", "ops", "security"), node.settings.node.name


def test_a_vector_added_by_a_backfill_reaches_the_hub_and_the_other_nodes(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    down = make_node("a", embedder=None)  # the model cannot be loaded: stored without a vector
    memory_id = down.store_memory("stored while the model was down").memory.id
    r = redis_server.client()
    assert r.hget(f"hive:embedding:{memory_id}", "vector") == b""
    up = make_node("a")  # the same node, its model back
    assert up.backfill_embeddings() == 1
    up.sync()
    record = r.hgetall(f"hive:embedding:{memory_id}")
    assert len(record[b"vector"]) == 4 * 32 and record[b"model"] == b"test-hash-embedder"
    b = make_node("b")
    b.store_memory("b has an embedding space of its own")
    b.sync()
    assert b.status().memories.embedded == 2 and b.status().memories.pending_embeddings == 0


def test_a_prefix_with_glob_characters_bootstraps_and_verifies_only_its_own_keys(make_node: NodeFactory) -> None:
    glob = "hive[1]*?:"
    a = make_node("a", prefix=glob)
    a.store_memories([MemoryDraft(f"in the globbed hive {n}") for n in range(3)])
    a.set_context("s1", {"current_task": "globbed"})
    other = make_node("other", prefix="hive1-other:")  # what the unescaped pattern hive[1]*?::embedding:* matches
    other.store_memories([MemoryDraft(f"in the other hive {n}") for n in range(2)])
    other.set_context("s2", {"current_task": "other"})
    fresh = make_node("fresh", prefix=glob)
    fresh.sync()
    assert live_ids(fresh) == live_ids(a) and len(live_ids(fresh)) == 3
    assert fresh.get_context("s1").current_task == "globbed" and fresh.get_context("s2").updated_at is None
    assert fresh.parts.hub is not None
    assert fresh.parts.hub.verify(repair=False) == {
        "local": 3,
        "remote": 3,
        "to_push": 0,
        "to_pull": 0,
        "differ": 0,
        "unreadable": 0,
        "in_sync": 1,
    }


def test_clearing_a_session_is_no_conflict_whichever_node_clears_it_nor_is_writing_it_again(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    a.set_context("s1", {"current_task": "written on a"})
    b.set_context("s2", {"current_task": "written on b"})
    a.sync()
    b.sync()
    a.clear_session("s1")  # by the node that wrote it
    a.clear_session("s2")  # by another one
    b.sync()
    assert b.get_context("s1").updated_at is None and b.get_context("s2").updated_at is None
    a.set_context("s1", {"current_task": "written again after the clear"})
    for node in (a, b, a, b):
        node.sync()
    assert b.get_context("s1").current_task == "written again after the clear"
    assert redis_server.client().hlen("hive:sessions:conflicts") == 0
    assert a.status().sync.conflicts == b.status().sync.conflicts == 0
    assert a.status().sessions == b.status().sessions == 1  # a cleared session is not counted


def test_a_session_edit_made_while_a_losing_push_is_in_flight_is_kept(
    make_node: NodeFactory, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_node("a"), make_node("b")
    a.set_context("s1", {"current_task": "start"})
    b.sync()
    go_offline(a)
    a.set_context("s1", {"current_task": "edited on A while apart"})
    time.sleep(0.01)
    b.set_context("s1", {"current_task": "edited on B while apart"})  # newer: A's push will lose
    go_offline(a, redis_server.url)
    settle = Pusher._settle_sessions

    def settle_after_another_process_wrote(self: Pusher, sessions: Any, results: Any) -> tuple[int, set[str]]:
        monkeypatch.undo()
        # a hook process on A writes between the push's Redis call and its settling
        LocalState(a.parts.db).update_session("s1", current_task="typed on A during the push")
        return settle(self, sessions, results)

    monkeypatch.setattr(Pusher, "_settle_sessions", settle_after_another_process_wrote)
    a.sync(force=True)
    b.sync(force=True)
    assert a.get_context("s1").current_task == b.get_context("s1").current_task == "typed on A during the push"
    assert a.parts.hub is not None and a.parts.hub.replica.outbox_depth() == 0


def test_a_memorys_project_travels_to_every_node_and_a_record_from_before_projects_has_none(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    mine = a.store_memory("alpha deploys with make ship", project="github.com/me/alpha").memory
    old = a.store_memory("written by a node from before projects").memory
    a.sync()
    redis_server.client().hdel(f"hive:embedding:{old.id}", "project")  # as an older node writes it
    b.sync()
    assert b.get_memory(mine.id).project == "github.com/me/alpha"
    assert b.get_memory(old.id).project is None
    scoped = b.make_filters(projects=("github.com/me/beta",))
    assert not b.search_memory("alpha deploys", mode="keyword", filters=scoped).hits


def test_the_time_a_memory_describes_travels_to_every_node_and_a_record_from_before_it_has_none(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    may = datetime(2025, 5, 14, 10, 0).astimezone().timestamp()
    dated = a.store_memory("the retro of the May outage: the disk filled up", occurred_at=may).memory
    old = a.store_memory("written by a node from before occurred_at").memory
    a.sync()
    redis_server.client().hdel(f"hive:embedding:{old.id}", "occurred_at")  # as an older node writes it
    b.sync()
    assert b.get_memory(dated.id).occurred_at == may
    assert b.get_memory(old.id).occurred_at is None
    # b finds it by the time it describes, not by when it reached b
    in_may = b.search_memory("the outage in May 2025", mode="keyword").hits
    assert [h.memory.id for h in in_may][:1] == [dated.id]
    # stored again on b without a time: the time it describes stays, on both nodes
    b.store_memory("the retro of the May outage: the disk filled up", tags=["ops"])
    b.sync()
    a.sync()
    assert a.get_memory(dated.id).occurred_at == b.get_memory(dated.id).occurred_at == may
    assert a.get_memory(dated.id).tags == ("ops",)


def test_a_write_without_a_project_never_takes_a_memorys_project_away_on_any_node(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, c = make_node("a"), make_node("c")
    mine = a.store_memory("alpha deploys with make ship", project="github.com/me/alpha").memory
    a.sync()
    # the same text stored later on a node that has not heard of it, outside any repository: a newer write
    # that carries no project
    c.store_memory("alpha deploys with make ship")
    for node in (c, a, c, a):
        node.sync()
    assert a.get_memory(mine.id).project == c.get_memory(mine.id).project == "github.com/me/alpha"
    assert redis_server.client().hget(f"hive:embedding:{mine.id}", "project") == b"github.com/me/alpha"
    b = make_node("b")  # and a node that joins later gets it too
    b.sync()
    assert b.get_memory(mine.id).project == "github.com/me/alpha"


def test_the_same_text_stored_in_two_projects_ends_in_the_later_ones_on_every_node(
    make_node: NodeFactory,
) -> None:
    a, b = make_node("a"), make_node("b")
    first = a.store_memory("the CI runs on two cores", project="github.com/me/alpha").memory
    b.store_memory("the CI runs on two cores", project="github.com/me/beta")  # later, before either syncs
    for node in (a, b, a, b):
        node.sync()
    assert a.get_memory(first.id).project == b.get_memory(first.id).project == "github.com/me/beta"
    a.store_memory("the CI runs on two cores", project="github.com/me/alpha")  # stored again: it stays
    for node in (a, b):
        node.sync()
    assert a.get_memory(first.id).project == b.get_memory(first.id).project == "github.com/me/beta"


def test_a_newer_store_without_the_time_a_memory_describes_never_takes_it_away_on_any_node(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    may = datetime(2025, 5, 14, 10, 0).astimezone().timestamp()
    dated = a.store_memory("the retro of the May outage: the disk filled up", occurred_at=may).memory
    # the same text stored later on a node that has not synced: a newer write that carries no time, pushed
    # first, without the field at all (as a node from before occurred_at writes it)
    b.store_memory("the retro of the May outage: the disk filled up", tags=["ops"])
    b.sync()
    redis_server.client().hdel(f"hive:embedding:{dated.id}", "occurred_at")
    for node in (a, b, a, b):
        node.sync()
    assert a.get_memory(dated.id).occurred_at == b.get_memory(dated.id).occurred_at == may
    assert a.get_memory(dated.id).tags == b.get_memory(dated.id).tags == ("ops",)
    c = make_node("c")  # and a node that joins later gets it too
    c.sync()
    assert c.get_memory(dated.id).occurred_at == may
