"""A running infer worker follows models:active: it loads the published adapter, refuses a corrupt one
(keeping what it serves), and goes back to the base model on rollback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.examples import clean, split
from hivemind_app.ml.llm import LocalLLM, bundled_llm_path
from hivemind_app.nodes.runtime import NodeRuntime
from hivemind_app.records.learning import AdapterInfo
from hivemind_app.store.database import Database
from hivemind_app.store.training import LocalAdapterRegistry, TrainingState
from tests.nodes.test_runtime import wait_until
from tests.support.adapters import corrupt
from tests.support.tool_uses import TOOLS, tool_uses

# A module that may pay for the session's training round (learned_round) gets more than the default 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture
def infer_node(learned_round: dict[str, Any], tmp_path: Path) -> Iterator[NodeRuntime]:
    """An infer node on a copy of the trained node's data dir (adapter v1 published and active)."""
    data_dir = tmp_path / "data"
    shutil.copytree(learned_round["settings"].data_dir, data_dir, ignore=shutil.ignore_patterns("training", "models"))
    settings = Settings(
        data_dir=data_dir,
        node={"name": "infer", "port": 0, "roles": ["infer"]},
        discovery={"enabled": False},
        infer={"adapter_check_s": 0.2, "n_ctx": 2048},
    )
    runtime = NodeRuntime(settings)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def publish(settings: Settings, adapter: Path, base_model: str) -> AdapterInfo:
    """Publish a file into the node's (hub-less) adapter registry, as a trainer's round would."""
    db = Database(settings.db_path, node_name=settings.node.name)
    try:
        registry = LocalAdapterRegistry(db, TrainingState(db), settings.data_dir / "adapters")
        return registry.publish(adapter, base_model, {}, "trainer")
    finally:
        db.close()


def health(runtime: NodeRuntime) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{runtime.port}/health", timeout=10).json())


def test_a_running_infer_worker_serves_the_promoted_adapter_and_refuses_a_corrupt_one(
    infer_node: NodeRuntime,
) -> None:
    wait_until(lambda: health(infer_node)["adapter"] == "v1", 120, "the node to load adapter v1")
    tasks = [use.query for use in split(clean(tool_uses(300, seed=0)).kept, 0.2)[1][:6]]
    tools = sorted(TOOLS)

    def served(task: str) -> dict[str, Any]:
        answer = httpx.post(
            f"http://127.0.0.1:{infer_node.port}/suggest_tool", json={"task": task, "tools": tools}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    with Hive(infer_node.settings) as hive:
        adapter_file = hive.fetch_adapter(1)
    direct = LocalLLM(str(bundled_llm_path()), 2048, None, str(adapter_file))
    base = LocalLLM(str(bundled_llm_path()), 2048, None, None)
    from_node = [served(task) for task in tasks]
    assert from_node == [direct.suggest_tool(task, tools) for task in tasks]
    assert from_node != [base.suggest_tool(task, tools) for task in tasks]

    # A corrupt v2: the node refuses it, says so, and keeps serving v1.
    broken = publish(infer_node.settings, adapter_file, "SmolLM2-135M-Instruct.Q4_1.gguf")
    corrupt(infer_node.settings.data_dir / "adapters" / f"adapter-v{broken.version}.gguf")
    with Hive(infer_node.settings) as hive:
        hive.activate_adapter(broken.version)
    wait_until(lambda: (health(infer_node).get("adapter_refused") or {}).get("version") == 2, 30, "the refusal")
    state = health(infer_node)
    assert state["adapter"] == "v1" and "corrupt" in state["adapter_refused"]["reason"]
    assert served(tasks[0]) == from_node[0]

    # Rollback to the base model.
    with Hive(infer_node.settings) as hive:
        hive.activate_adapter(None)
    wait_until(lambda: health(infer_node)["adapter"] is None, 60, "the node to drop the adapter")
    assert served(tasks[0]) == base.suggest_tool(tasks[0], tools)
