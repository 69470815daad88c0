"""Shared fixtures: a private data dir and settings file per test, the real MiniLM model loaded once,
and a real redis-server on a free port in a temp dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.embedder import SentenceTransformerEmbedder
from tests.support.redis_server import RedisServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir and settings file; no HIVEMIND_* from the developer's shell leaks in."""
    for key in list(os.environ):
        if key.startswith("HIVEMIND_"):
            monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HIVEMIND_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HIVEMIND_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HIVEMIND_NODE__NAME", "test-node")
    return data_dir


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    model = SentenceTransformerEmbedder("all-MiniLM-L6-v2", device="cpu")
    model.load()
    return model


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return Settings()


@pytest.fixture
def hive(settings: Settings, embedder: SentenceTransformerEmbedder) -> Iterator[Hive]:
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
