"""The learning loop's local state: the queue cursor, the example pool, and the registry of a hub-less node."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivemind_app.errors import AdapterError
from hivemind_app.hive import Hive
from hivemind_app.ml.examples import clean
from hivemind_app.store.training import LocalAdapterRegistry, LocalLearningQueue, TrainingState
from tests.support.adapters import corrupt, tiny_gguf
from tests.support.tool_uses import tool_uses


def registry(hive: Hive, tmp_path: Path) -> LocalAdapterRegistry:
    return LocalAdapterRegistry(hive.parts.db, TrainingState(hive.parts.db), tmp_path / "adapters")


def test_the_local_queue_hands_out_entries_in_order_and_moves_on_only_when_acked(hive: Hive) -> None:
    for item in tool_uses(30, seed=2):
        hive.add_to_learning_queue(item)
    queue = LocalLearningQueue(hive.parts.db, TrainingState(hive.parts.db))
    first = queue.take(20)
    assert len(first.entries) == 20 and queue.backlog() == 30
    assert queue.take(20).ids == first.ids  # not acked: a restarted trainer gets the same entries again
    queue.ack(first)
    assert queue.backlog() == 10
    rest = queue.take(20)
    assert len(rest.entries) == 10 and set(rest.ids).isdisjoint(first.ids)
    assert {"user_query", "tool_used", "tool_input", "result", "success"} <= set(rest.entries[0])


def test_the_example_pool_keeps_the_newest_examples_up_to_its_size(hive: Hive) -> None:
    state = TrainingState(hive.parts.db)
    uses = clean(tool_uses(60, seed=4, failures=0.0)).kept
    state.add_examples(uses[:30], keep=40)
    state.add_examples(uses[30:], keep=40)
    assert state.pool_size() == 40
    newest = state.recent_examples(5)
    assert [u.key for u in newest] == [u.key for u in reversed(uses[-5:])]
    assert uses[0].key not in state.pool_keys()


def test_publishing_numbers_adapters_and_activation_picks_one(hive: Hive, tmp_path: Path) -> None:
    reg = registry(hive, tmp_path)
    first = reg.publish(tiny_gguf(tmp_path / "a.gguf"), "base.gguf", {"accuracy": 0.7}, "trainer")
    second = reg.publish(tiny_gguf(tmp_path / "b.gguf", seed=1), "base.gguf", {"accuracy": 0.8}, "trainer")
    assert (first.version, second.version) == (1, 2)
    assert reg.active() is None
    reg.activate(2)
    active = reg.active()
    assert active is not None and active.version == 2 and active.metrics == {"accuracy": 0.8}
    assert [a.active for a in reg.adapters()] == [False, True]
    assert reg.fetch(2).read_bytes() == (tmp_path / "b.gguf").read_bytes()
    reg.activate(None)
    assert reg.active() is None


def test_a_corrupt_adapter_file_is_refused_and_the_active_one_stays(hive: Hive, tmp_path: Path) -> None:
    reg = registry(hive, tmp_path)
    reg.publish(tiny_gguf(tmp_path / "a.gguf"), "base.gguf", {}, "trainer")
    reg.activate(1)
    corrupt(tmp_path / "adapters" / "adapter-v1.gguf")
    with pytest.raises(AdapterError, match=r"corrupt.*sha256"):
        reg.fetch(1)
    active = reg.active()
    assert active is not None and active.version == 1


def test_activating_an_unknown_version_is_a_clear_error_that_changes_nothing(hive: Hive, tmp_path: Path) -> None:
    reg = registry(hive, tmp_path)
    reg.publish(tiny_gguf(tmp_path / "a.gguf"), "base.gguf", {}, "trainer")
    reg.activate(1)
    with pytest.raises(AdapterError, match="No adapter v7"):
        reg.activate(7)
    assert reg.active() is not None and reg.active().version == 1  # type: ignore[union-attr]
