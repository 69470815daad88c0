"""`status` and `doctor` as a user runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hivemind_app.config import load_settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from tests.cli.runner import run
from tests.support.redis_server import RedisServer


def test_doctor_checks_redis_when_configured_and_never_shows_the_password(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password="correct-horse")
    server.start()
    try:
        ok = run("doctor", "--json", env={"HIVEMIND_REDIS__URL": server.url})
        checks = {c["name"]: c for c in json.loads(ok.stdout)["checks"]}
        assert ok.returncode == 0, ok.stdout
        assert checks["redis"]["ok"] and "Redis 7" in checks["redis"]["detail"]
        assert checks["sqlite-vec"]["ok"] and checks["embedding model"]["ok"] and checks["store"]["ok"]
        assert "mode 0o600" in checks["store"]["detail"]

        wrong = run("doctor", env={"HIVEMIND_REDIS__URL": f"redis://:wrong-pass@127.0.0.1:{server.port}/0"})
        assert wrong.returncode == 1
        line = next(ln for ln in wrong.stdout.splitlines() if ln.split()[1] == "redis")
        assert line.startswith("FAIL") and f"Redis at 127.0.0.1:{server.port} refused the password" in line
        assert "wrong-pass" not in wrong.stdout + wrong.stderr
    finally:
        server.stop()
    down = run("doctor", env={"HIVEMIND_REDIS__URL": f"redis://127.0.0.1:{server.port}/0"})
    assert down.returncode == 1 and "unreachable" in down.stdout


def test_doctor_says_redis_is_not_configured_on_a_fresh_machine() -> None:
    proc = run("doctor")
    assert proc.returncode == 0, proc.stdout
    assert "not configured" in proc.stdout


def test_status_shows_the_vector_index_once_the_store_is_large_enough(
    monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    assert "index:" not in run("status").stdout  # an empty store is searched exactly: nothing to show

    monkeypatch.setenv("HIVEMIND_SEARCH__ANN_MIN_VECTORS", "5")
    with Hive(load_settings(), embedder=embedder) as hive:
        hive.store_memories([MemoryDraft(f"staging redis {i} listens on port {6000 + i}") for i in range(12)])
        hive.search_memory("which port is staging redis on", mode="vector")  # the store is big enough: build
        deadline = time.monotonic() + 60
        while hive.index_status()[0].state != "ready" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert hive.index_status()[0].state == "ready"
        hive.store_memory("the GPU box is called tensor")

    shown = run("status")
    assert shown.returncode == 0, shown.stderr
    assert "  index:    ready, 12 vectors, 1 changed since saved" in shown.stdout.splitlines()
    data = json.loads(run("status", "--json").stdout)["vector_index"]
    assert (data["state"], data["indexed"], data["delta"]) == ("ready", 12, 1)
