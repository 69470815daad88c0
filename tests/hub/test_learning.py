"""The hub side of the learning loop on a real redis-server: the trainers' consumer group and the adapter registry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hivemind_app.errors import AdapterError
from hivemind_app.hub.adapters import HubAdapterRegistry
from hivemind_app.hub.learning import HubLearningQueue
from tests.hub.conftest import NodeFactory
from tests.support.adapters import tiny_gguf
from tests.support.redis_server import RedisServer
from tests.support.tool_uses import tool_uses


def queue_with_entries(make_node: NodeFactory, count: int) -> HubLearningQueue:
    laptop = make_node("laptop")
    for item in tool_uses(count, seed=5):
        laptop.add_to_learning_queue(item)
    laptop.sync()
    trainer = make_node("trainer-a")
    assert trainer.parts.hub is not None
    return HubLearningQueue(trainer.parts.hub, consumer="trainer-a", claim_idle_s=600)


def test_entries_pushed_by_a_node_reach_the_trainers_group_and_leave_it_only_when_acked(
    make_node: NodeFactory,
) -> None:
    queue = queue_with_entries(make_node, 25)
    batch = queue.take(10)
    assert len(batch.entries) == 10 and batch.entries[0]["tool_used"]
    assert queue.pending() == 10 and queue.backlog() == 25
    queue.ack(batch)
    assert queue.pending() == 0 and queue.backlog() == 15


def test_a_restarted_trainer_first_gets_back_its_own_unfinished_entries(make_node: NodeFactory) -> None:
    queue = queue_with_entries(make_node, 12)
    first = queue.take(5)
    again = HubLearningQueue(queue.hub, consumer="trainer-a", claim_idle_s=600).take(8)
    assert again.ids[:5] == first.ids and len(again.ids) == 8


def test_a_dead_trainers_entries_are_claimed_by_another_once_idle_long_enough(make_node: NodeFactory) -> None:
    queue = queue_with_entries(make_node, 20)
    dead = queue.take(20)  # trainer-a dies here: nothing acked
    other_node = make_node("trainer-b")
    assert other_node.parts.hub is not None
    patient = HubLearningQueue(other_node.parts.hub, consumer="trainer-b", claim_idle_s=600)
    assert patient.take(20).ids == []  # not idle long enough: trainer-a may still be working
    time.sleep(0.05)
    eager = HubLearningQueue(other_node.parts.hub, consumer="trainer-b", claim_idle_s=0.01)
    claimed = eager.take(20)
    assert sorted(claimed.ids) == sorted(dead.ids)
    eager.ack(claimed)
    assert eager.pending() == 0 and eager.backlog() == 0


def registry_of(make_node: NodeFactory, name: str, tmp_path: Path, **kwargs: object) -> HubAdapterRegistry:
    node = make_node(name)
    assert node.parts.hub is not None
    options = {"shared_dir": None, "max_inline_mb": 32.0, **kwargs}
    return HubAdapterRegistry(node.parts.hub, tmp_path / name / "cache", **options)  # type: ignore[arg-type]


def test_an_adapter_published_on_one_node_is_fetched_and_verified_on_another(
    make_node: NodeFactory, tmp_path: Path, redis_server: RedisServer
) -> None:
    trainer = registry_of(make_node, "trainer", tmp_path)
    infer = registry_of(make_node, "infer", tmp_path)
    source = tiny_gguf(tmp_path / "adapter.gguf")
    pubsub = redis_server.client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("hive:channel:events")
    info = trainer.publish(source, "base.gguf", {"accuracy": 0.9}, "trainer")
    trainer.activate(info.version)
    active = infer.active()
    assert active is not None and active.version == info.version and active.metrics == {"accuracy": 0.9}
    assert infer.fetch(info.version).read_bytes() == source.read_bytes()
    event = None
    for _ in range(20):
        event = pubsub.get_message(timeout=0.1) or event
        if event:
            break
    assert event is not None and json.loads(event["data"])["version"] == info.version


def test_a_corrupted_adapter_in_redis_is_refused_by_the_fetching_node(
    make_node: NodeFactory, tmp_path: Path, redis_server: RedisServer
) -> None:
    trainer = registry_of(make_node, "trainer", tmp_path)
    info = trainer.publish(tiny_gguf(tmp_path / "adapter.gguf"), "base.gguf", {}, "trainer")
    client = redis_server.client()
    data = bytearray(client.hget(f"hive:models:adapter:{info.version}", "data"))
    data[-4:] = b"\x00\x01\x02\x03"
    client.hset(f"hive:models:adapter:{info.version}", "data", bytes(data))
    with pytest.raises(AdapterError, match="corrupt"):
        registry_of(make_node, "infer", tmp_path).fetch(info.version)
    assert not list((tmp_path / "infer" / "cache").glob("*.gguf"))


def test_a_big_adapter_goes_to_the_shared_directory_and_redis_keeps_only_its_path(
    make_node: NodeFactory, tmp_path: Path, redis_server: RedisServer
) -> None:
    shared = tmp_path / "nas"
    trainer = registry_of(make_node, "trainer", tmp_path, shared_dir=str(shared), max_inline_mb=0.0001)
    info = trainer.publish(tiny_gguf(tmp_path / "adapter.gguf"), "base.gguf", {}, "trainer")
    stored = redis_server.client().hgetall(f"hive:models:adapter:{info.version}")
    assert b"data" not in stored and Path(stored[b"path"].decode()).parent == shared
    fetched = registry_of(make_node, "infer", tmp_path, shared_dir=str(shared)).fetch(info.version)
    assert fetched.read_bytes() == (tmp_path / "adapter.gguf").read_bytes()


def test_a_big_adapter_without_a_shared_directory_is_refused_with_what_to_set(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    trainer = registry_of(make_node, "trainer", tmp_path, max_inline_mb=0.0001)
    with pytest.raises(AdapterError, match=r"train\.shared_dir"):
        trainer.publish(tiny_gguf(tmp_path / "adapter.gguf"), "base.gguf", {}, "trainer")
    assert trainer.adapters() == []


def test_round_history_is_shared_newest_first(make_node: NodeFactory, tmp_path: Path) -> None:
    trainer = registry_of(make_node, "trainer", tmp_path)
    trainer.record_round({"verdict": "rejected", "finished_at": 1.0})
    trainer.record_round({"verdict": "promoted", "finished_at": 2.0})
    assert [r["verdict"] for r in registry_of(make_node, "laptop", tmp_path).rounds()] == ["promoted", "rejected"]


def test_own_pending_entries_that_are_also_idle_are_handed_out_once(make_node: NodeFactory) -> None:
    queue = queue_with_entries(make_node, 10)
    first = queue.take(10)
    time.sleep(0.05)
    restarted = HubLearningQueue(queue.hub, consumer="trainer-a", claim_idle_s=0.01).take(20)
    assert sorted(restarted.ids) == sorted(first.ids)


def test_pending_entries_trimmed_from_the_stream_are_acknowledged_not_retried(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    queue = queue_with_entries(make_node, 10)
    queue.take(10)
    redis_server.client().xtrim("hive:learning:queue", maxlen=0)
    assert queue.take(10).entries == []
    assert queue.pending() == 0
