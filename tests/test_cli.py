"""The real `hivemind-app` console script, run as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hivemind_app.config import load_settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from tests.support.console import console_script
from tests.support.redis_server import RedisServer

EXE = console_script()


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert EXE is not None
    proc = subprocess.run(
        [EXE, *args], input=stdin, capture_output=True, env={**os.environ, **(env or {})}, timeout=240
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr


def test_store_recall_show_delete_and_status_from_the_command_line() -> None:
    stored = run(
        "store",
        "Benchmarked torch.compile on the 4090: 1.8x over eager for the ResNet",
        "--tag",
        "pytorch",
        "--source",
        "notes",
        "--json",
    )
    assert stored.returncode == 0, stored.stderr
    memory = json.loads(stored.stdout)
    assert memory["created"] and memory["embedded"] and memory["tags"] == ["pytorch"]
    assert run("store", "The staging database listens on port 5433", "-t", "infra").stdout.startswith("stored ")

    hybrid = run("recall", "what was I doing with PyTorch benchmarks?")
    assert hybrid.returncode == 0, hybrid.stderr
    first = hybrid.stdout.splitlines()[0]
    assert memory["id"][:12] in first and "notes" in first and "#pytorch" in first
    assert "Benchmarked torch.compile" in hybrid.stdout.splitlines()[1]

    keyword = json.loads(run("recall", "torch.compile", "--mode", "keyword", "--limit", "5", "--json").stdout)
    assert keyword["mode"] == "keyword" and [r["id"] for r in keyword["results"]] == [memory["id"]]

    status = json.loads(run("status", "--json").stdout)
    assert status["memories"]["live"] == 2
    assert status["embedding"] == {**status["embedding"], "model": "all-MiniLM-L6-v2", "dim": 384}
    assert status["redis"] == {"configured": False, "url": None}
    assert "2 (2 with vectors" in run("status").stdout

    assert "source:  notes" in run("show", memory["id"][:8]).stdout
    assert run("delete", memory["id"][:8]).stdout.strip() == f"deleted {memory['id'][:12]}"
    after = json.loads(run("recall", "torch.compile", "--mode", "keyword", "--json").stdout)
    assert after["results"] == []


def test_bad_input_gives_one_clear_line_and_a_nonzero_status() -> None:
    assert_one_line_error(run("store", ""), 65, "empty")
    assert_one_line_error(run("store", "-", stdin=b"\x89PNG\r\n\x1a\n\x00\x00"), 65, "binary")
    assert_one_line_error(run("store", "-", stdin=b"caf\xe9"), 65, "not valid UTF-8")
    assert_one_line_error(
        run("store", "x" * 200, env={"HIVEMIND_STORE__MAX_TEXT_BYTES": "100"}), 65, "over the limit of 100 bytes"
    )
    assert_one_line_error(run("recall", "x", "--limit", "0"), 65, "from 1 to")
    assert_one_line_error(run("recall", "x", "--since", "someday"), 65, "not a time")
    assert_one_line_error(run("show", "abcdef"), 1, "No memory")
    assert run("recall", "x", "--mode", "fuzzy").returncode == 2
    assert json.loads(run("status", "--json").stdout)["memories"]["live"] == 0


def test_a_broken_settings_file_is_named_in_the_error() -> None:
    Path(os.environ["HIVEMIND_CONFIG"]).write_text("[search\n")
    assert_one_line_error(run("status"), 78, "not valid TOML")


def test_a_missing_model_falls_back_to_keyword_search_and_says_so() -> None:
    env = {"HIVEMIND_EMBEDDING__MODEL": "/nonexistent/model"}
    stored = run("store", "Nightly backups run at 02:00 on the NAS", env=env)
    assert stored.returncode == 0 and "no vector yet" in stored.stdout
    found = run("recall", "nightly backups", env=env)
    assert found.returncode == 0
    assert "keyword search" in found.stderr and "Nightly backups" in found.stdout


def test_import_stores_the_good_files_and_lists_the_bad_ones(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / ".git").mkdir()
    (notes / ".git" / "HEAD.md").write_text("ignored: inside .git")
    (notes / "photo.png").write_bytes(b"\x89PNG not imported: unknown extension")
    for n in range(997):
        folder = notes / "sub" if n % 2 else notes
        (folder / f"note-{n:04d}.md").write_text(
            f"# Note {n}\n\nDeploy step {n}: restart worker-{n} after the migration.\n"
        )
    (notes / "binary.md").write_bytes(b"\x00\x01\x02 binary")
    (notes / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (notes / "dangling.md").symlink_to(tmp_path / "gone.md")

    proc = run("import", str(notes), "--tag", "runbook")
    assert proc.returncode == 0, proc.stderr
    assert "imported 997 of 1000 files: 997 chunks, 997 new memories" in proc.stdout
    assert "skipped 3:" in proc.stderr
    for name, reason in [("binary.md", "NUL"), ("latin1.txt", "UTF-8"), ("dangling.md", "No such file")]:
        assert any(name in line and reason in line for line in proc.stderr.splitlines()), proc.stderr

    status = json.loads(run("status", "--json").stdout)
    assert status["memories"]["live"] == 997 and status["memories"]["pending_embeddings"] == 0
    found = json.loads(run("recall", "restart worker-512", "--mode", "keyword", "--tag", "runbook", "--json").stdout)
    assert "worker-512" in found["results"][0]["text"]
    assert found["results"][0]["source"].endswith("note-0512.md")

    again = run("import", str(notes), "--strict", "--json")
    assert again.returncode == 1
    report = json.loads(again.stdout)
    assert report["new_memories"] == 0 and report["merged_memories"] == 997 and len(report["skipped"]) == 3


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


def test_config_set_and_show_keep_the_password_out_of_sight() -> None:
    proc = run("config", "set", "redis.url", "redis://:hunter2@nas.local:6379/0")
    assert proc.returncode == 0 and "hunter2" not in proc.stdout
    shown = run("config", "show")
    assert "hunter2" not in shown.stdout and json.loads(shown.stdout)["redis"]["url"].startswith("redis://:***@")
    assert_one_line_error(run("config", "set", "search.default_limit", "0"), 78, "search.default_limit")


def test_status_shows_the_vector_index_once_the_store_is_large_enough(
    monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    assert "index:" not in run("status").stdout  # an empty store is searched exactly: nothing to show

    monkeypatch.setenv("HIVEMIND_SEARCH__ANN_MIN_VECTORS", "5")
    with Hive(load_settings(), embedder=embedder) as hive:
        hive.store_memories([MemoryDraft(f"staging redis {i} listens on port {6000 + i}") for i in range(12)])
        hive.search_memory("which port is staging redis on", mode="vector")  # the store is big enough: build
        index = hive.memories.ann.index_for(hive.memories.active_space())  # type: ignore[union-attr]
        assert index is not None and index.wait(60)
        hive.store_memory("the GPU box is called tensor")

    shown = run("status")
    assert shown.returncode == 0, shown.stderr
    assert "  index:    ready, 12 vectors, 1 changed since saved" in shown.stdout.splitlines()
    data = json.loads(run("status", "--json").stdout)["vector_index"]
    assert (data["state"], data["indexed"], data["delta"]) == ("ready", 12, 1)
