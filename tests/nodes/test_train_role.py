"""A node with the train role runs rounds by itself on the schedule in config."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.nodes import runtime as runtime_module
from hivemind_app.nodes.runtime import NodeRuntime
from tests.nodes.test_runtime import wait_until
from tests.support.tool_uses import tool_uses


def test_a_train_node_runs_a_scheduled_round_once_enough_entries_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        node={"name": "trainer", "port": 0, "roles": ["train"]},
        discovery={"enabled": False},
        train={"min_examples": 30},
    )
    with Hive(settings) as hive:
        for item in tool_uses(20, seed=3, failures=1.0):
            hive.add_to_learning_queue(item)
    monkeypatch.setattr(runtime_module, "TRAIN_CHECK_S", 0.2)
    node = NodeRuntime(settings)
    node.start()
    try:
        wait_until(lambda: node.supervisor.workers["train"].runs >= 3, 30, "the train worker to check a few times")
        assert node.last_round is None  # 20 entries wait, fewer than train.min_examples
        with Hive(settings) as hive:
            for item in tool_uses(20, seed=4, failures=1.0):
                hive.add_to_learning_queue(item)
        wait_until(lambda: node.last_round is not None, 60, "a scheduled round")
        assert node.last_round is not None
        assert node.last_round["verdict"] == "skipped" and "40 failed" in node.last_round["reason"]
        runs = node.supervisor.workers["train"].runs
        wait_until(lambda: node.supervisor.workers["train"].runs >= runs + 3, 30, "more checks")
        with Hive(settings) as hive:
            assert len(hive.training_history()) == 1  # the next one waits for train.interval_h
    finally:
        node.stop()
