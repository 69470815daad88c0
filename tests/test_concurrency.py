"""Four processes (think: three Claude Code sessions' MCP servers and the TUI) sharing one store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive

ROOT = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("HIVEMIND_TEST_CONCURRENCY_S", "60"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_four_processes_storing_and_recalling_for_a_minute_lose_nothing(tmp_path: Path) -> None:
    procs = []
    for worker in range(4):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.concurrent_worker",
                    str(worker),
                    str(SECONDS),
                    str(tmp_path / f"worker-{worker}.json"),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=SECONDS + 300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err

    results = [json.loads((tmp_path / f"worker-{w}.json").read_text()) for w in range(4)]
    for result in results:
        assert result["errors"] == []
        assert len(result["stored"]) >= 5 and result["recalls"] == len(result["stored"])
    every_id = {i for r in results for i in r["stored"]}
    with Hive(Settings()) as hive:
        counts = hive.status().memories
        assert counts.live == len(every_id) and counts.pending_embeddings == 0
        for memory_id in every_id:
            assert not hive.get_memory(memory_id).deleted
