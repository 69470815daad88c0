"""Three node runtimes on loopback, each with its own data dir, finding each other over real zeroconf."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hivemind_app.config import Settings
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.remote import FailoverEmbedder
from hivemind_app.nodes.runtime import NodeRuntime
from tests.support.hive_key import hive_key_file

BEAT_S = 0.5


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def node_settings(tmp_path: Path, name: str, hive: str = "test-hive") -> Settings:
    return Settings(
        data_dir=tmp_path / name,
        node={"name": name, "hive": hive, "port": 0, "bind": "127.0.0.1", "heartbeat_s": BEAT_S},
        discovery={"interfaces": ["127.0.0.1"]},
        hive={"key_file": hive_key_file(tmp_path)},  # one key: the nodes of a test are one hive
    )


@pytest.fixture
def three_nodes(tmp_path: Path) -> Iterator[dict[str, NodeRuntime]]:
    nodes = {
        "dell": NodeRuntime(node_settings(tmp_path, "dell"), roles=["embed"]),
        "laptop": NodeRuntime(node_settings(tmp_path, "laptop"), roles=[]),
        "nas": NodeRuntime(node_settings(tmp_path, "nas"), roles=[]),
    }
    stranger = NodeRuntime(node_settings(tmp_path, "stranger", hive="other-hive"), roles=["embed"])
    for node in [*nodes.values(), stranger]:
        node.start()
    try:
        yield nodes
    finally:
        for node in [*nodes.values(), stranger]:
            with contextlib.suppress(Exception):  # a test may have stopped it already
                node.stop()


@pytest.mark.slow
def test_nodes_discover_each_other_and_a_laptop_embeds_through_the_desktop(
    three_nodes: dict[str, NodeRuntime], embedder: Embedder
) -> None:
    dell, laptop, nas = three_nodes["dell"], three_nodes["laptop"], three_nodes["nas"]
    names = lambda node: {entry.peer.name for entry in node.peers.all()}  # noqa: E731
    wait_until(lambda: all(len(names(n)) == 2 for n in three_nodes.values()), 30, "discovery of all peers")
    assert names(laptop) == {"dell", "nas"}  # the other hive's node is never a peer
    assert names(nas) == {"dell", "laptop"}
    wait_until(lambda: bool(laptop.peers.with_role("embed", "all-MiniLM-L6-v2")), 20, "the embedder to be alive")

    text = "The staging Postgres database listens on port 5433"
    stored = laptop.hive.store_memory(text)
    assert stored.embedded
    used = laptop.hive.embedder_for("all-MiniLM-L6-v2")
    assert isinstance(used, FailoverEmbedder) and str(dell.port) in (used.last_used or "")
    assert dell.context is not None and dell.context.embed is not None
    assert dell.context.embed.batcher.stats.texts >= 1
    # The stored vector is the one the model gives for the text: the query vector is the model's, and the
    # memory's cosine similarity to it (a vector search's score) is 1.
    assert np.allclose(laptop.hive.embed_query(text)[0], embedder.embed([text])[0], atol=1e-5)
    (hit,) = laptop.hive.search_memory(text, limit=1, mode="vector").hits
    assert hit.memory.text == text and hit.score > 0.9999
    assert laptop.hive.search_memory("which port does staging use", mode="vector").hits[0].memory.text == text

    dell.stop()
    wait_until(
        lambda: {e.peer.name: e.health(BEAT_S) for e in laptop.peers.all()}.get("dell") == "dead",
        BEAT_S * 3 + 5,
        "the stopped embedder to be shown dead",
    )
    backups = "Nightly backups run at 02:00 on the NAS"
    fallback = laptop.hive.store_memory(backups)
    assert fallback.embedded
    assert used.last_used == "onnx:all-MiniLM-L6-v2"  # this node's own model, on the default backend
    assert np.allclose(laptop.hive.embed_query(backups)[0], embedder.embed([backups])[0], atol=1e-5)
    (hit,) = laptop.hive.search_memory(backups, limit=1, mode="vector").hits
    assert hit.memory.text == backups and hit.score > 0.9999
    assert np.isclose(hit.score, 1.0, atol=1e-4)
