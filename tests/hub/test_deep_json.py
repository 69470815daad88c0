"""JSON nested deeper than the parser's recursion limit, planted in any value a node reads from Redis, against a
real redis-server: `json.loads` raises RecursionError (not ValueError) on it, which once escaped the sync loop and
the adapter watcher, so one planted value crashed every sync on every node. Each such value is now refused like
any other bad value: the record quarantined, the sync completed, the rest applied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hivemind_app.errors import AdapterError
from hivemind_app.hive import Hive
from tests.hub.conftest import NodeFactory
from tests.support.hive_key import hive_key_file
from tests.support.redis_server import RedisServer

DEEP_LIST = b"[" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000


def reasons(hive: Hive) -> dict[str, str]:
    return {q.key: q.reason for q in hive.status().sync.quarantine}


@pytest.mark.parametrize("deep", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
def test_a_deeply_nested_conflict_record_is_quarantined_and_the_sync_completes(
    make_node: NodeFactory, redis_server: RedisServer, deep: bytes
) -> None:
    a, b = make_node("a"), make_node("b")
    r = redis_server.client()
    r.hset("hive:sessions:conflicts", "s9", deep)
    a.store_memory("written after the plant")
    report = b.sync()
    assert report is not None and report.online and report.error is None
    assert {m.text for m in b.recent_memories(10)} == {"written after the plant"}
    assert "nested too deep" in reasons(b)["hive:sessions:conflicts#s9"]
    assert b.conflicts() == {}


def test_a_deeply_nested_conflict_record_is_quarantined_on_a_node_with_the_hive_key(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    hive_key_file(Path(os.environ["HIVEMIND_CONFIG"]).parent)
    b = make_node("b")
    redis_server.client().hset("hive:sessions:conflicts", "s9", DEEP_LIST)
    report = b.sync()
    assert report is not None and report.online and report.error is None
    assert "nested too deep" in reasons(b)["hive:sessions:conflicts#s9"]


def test_a_session_whose_state_is_nested_too_deep_is_quarantined_and_the_sync_completes(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    a, b = make_node("a"), make_node("b")
    r = redis_server.client()
    a.set_context("s1", {"current_task": "the real task"})
    b.sync()
    r.hset("hive:session:s1", mapping={"state": DEEP_OBJECT, "version": r.hget("hive:session:s1", "version") or b"1"})
    r.xadd("hive:memory:changes", {"kind": "session", "id": "s1", "version": "1", "node": "rogue"})
    a.store_memory("written after the plant")
    report = b.sync()
    assert report is not None and report.online and report.error is None
    assert "nested too deep" in reasons(b)["hive:session:s1"]
    assert b.get_context("s1").current_task == "the real task"
    assert "written after the plant" in {m.text for m in b.recent_memories(10)}


def test_a_deeply_nested_adapter_pointer_is_refused_never_raised_past_the_adapter_watcher(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    b = make_node("b")
    redis_server.client().hset("hive:models:active", "adapter:active", DEEP_LIST)
    with pytest.raises(AdapterError, match="not a JSON object"):
        b.active_adapter()
    assert "not a JSON object" in (b.learning_status()["active_refused"] or "")


def test_deeply_nested_heartbeats_round_reports_and_adapter_metrics_hide_only_themselves(
    make_node: NodeFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    from hivemind_app.hub.adapters import HubAdapterRegistry
    from hivemind_app.hub.status import live_nodes

    b = make_node("b")
    hub = b.parts.hub
    assert hub is not None
    r = redis_server.client()
    b.sync()
    r.sadd("hive:nodes:active", "rogue")
    r.set("hive:node:rogue:heartbeat", DEEP_LIST)
    r.lpush("hive:training:rounds", '{"verdict": "kept"}', DEEP_LIST)
    registry = HubAdapterRegistry(hub, tmp_path / "cache", None, 32.0)  # type: ignore[arg-type]
    assert "rogue" not in {n["node_id"] for n in live_nodes(hub.channel)}
    assert registry.rounds() == [{"verdict": "kept"}]


def test_a_reader_failing_in_a_way_no_check_foresaw_quarantines_that_record_and_the_sync_completes(
    make_node: NodeFactory, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backstop behind the checks: whatever a reader raises on one record (here a TypeError standing in for
    a failure nobody foresaw) refuses that record, which is quarantined; it never escapes the sync."""
    from hivemind_app.hub import decode

    a, b = make_node("a"), make_node("b")
    a.set_context("s1", {"current_task": "the real task"})

    def unforeseen(*args: object, **kwargs: object) -> None:
        raise TypeError("something no check was written for")

    monkeypatch.setattr(decode, "_session_state", unforeseen)
    a.store_memory("written after it")
    report = b.sync()
    assert report is not None and report.online and report.error is None
    assert "could not be read (TypeError: something no check" in reasons(b)["hive:session:s1"]
    assert "written after it" in {m.text for m in b.recent_memories(10)}
