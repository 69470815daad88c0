"""TUI responsiveness: time from `hivemind-app` to first paint, and keystroke-to-results latency.

    python bench/tui.py [--n 100000] [--runs 5]

First paint is measured on the real console script under a pseudo-terminal: the clock stops when the
screen shows the tab bar, and /proc/PID/maps is read at that moment to check that torch is not loaded yet.
Keystroke-to-results runs the app in-process (Textual's Pilot) on a store of N memories and times a typed
query until its results are on screen, for keyword and hybrid search. Baseline in the same run: the same
search through the `Hive` facade directly, so the UI's own overhead can be read off as a difference.
Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pty
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft


def emit(**fields: object) -> None:
    print(json.dumps({"bench": "tui", "cpus": os.cpu_count(), "machine": platform.machine(), **fields}), flush=True)


def first_paint(env: dict[str, str], timeout: float = 60.0) -> tuple[float, bool]:
    """Seconds until the tab bar is drawn, and whether libtorch was mapped at that moment."""
    exe = shutil.which("hivemind-app", path=str(Path(sys.executable).parent)) or "hivemind-app"
    master, slave = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [exe],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"},
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    painted_at = None
    torch_loaded = False
    try:
        while time.perf_counter() - started < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                if b"Sessions" in seen and b"Memories" in seen:
                    painted_at = time.perf_counter() - started
                    maps = Path(f"/proc/{proc.pid}/maps").read_text()
                    torch_loaded = "libtorch" in maps
                    break
    finally:
        os.write(master, b"q")
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)
    if painted_at is None:
        raise RuntimeError("the TUI did not paint within the timeout")
    return painted_at, torch_loaded


async def keystroke_latency(hive: Hive, queries: list[str], mode: str) -> list[float]:
    from textual.widgets import Input

    from hivemind_app.tui.app import HivemindApp
    from hivemind_app.tui.memories import MemoriesView

    app = HivemindApp(hive, refresh_seconds=0)
    timings: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(MemoriesView)
        while view.mode != mode:
            view.action_cycle_mode()
        await settle(app)
        for query in queries:
            search = app.query_one("#search", Input)
            search.value = ""
            await settle(app)
            await pilot.pause()
            started = time.perf_counter()
            search.value = query  # one edit = one keystroke's worth of work, plus the 150 ms debounce
            await pilot.pause(0.16)
            await settle(app)
            await pilot.pause()
            timings.append((time.perf_counter() - started) * 1000)
    return timings


class NearbyEmbedder:
    """Real vectors for queries; for bulk ingest, a real vector of the note's topic plus a little noise.

    The benchmark measures the UI and the store, not the model: embedding 100,000 notes for real would
    take a quarter of an hour on 2 cores and change nothing measured here.
    """

    def __init__(self) -> None:
        from hivemind_app.ml.embedder import SentenceTransformerEmbedder

        self.real = SentenceTransformerEmbedder(device="cpu")
        self.model_name = self.real.model_name
        self._topics: dict[str, np.ndarray] = {}
        self._rng = np.random.default_rng(7)

    @property
    def dim(self) -> int:
        return self.real.dim

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        if len(texts) <= 4:
            return self.real.embed(texts, progress)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            topic = text.split(":", 1)[-1].split()[0]
            if topic not in self._topics:
                self._topics[topic] = self.real.embed([f"notes about {topic}"])[0]
            vector = self._topics[topic] + self._rng.normal(0, 0.05, self.dim).astype(np.float32)
            out[i] = vector / np.linalg.norm(vector)
        if progress:
            progress(len(texts))
        return out


async def settle(app: Any) -> None:
    """Wait for every worker; a search made stale by a newer one ends cancelled, which is expected."""
    from textual.worker import WorkerCancelled

    for worker in list(app.workers):
        with contextlib.suppress(WorkerCancelled):
            await worker.wait()


def make_store(directory: Path, n: int, embedder: NearbyEmbedder) -> Settings:
    settings = Settings(data_dir=directory)
    with Hive(settings, embedder=embedder) as hive:
        batch: list[MemoryDraft] = []
        topics = ["redis", "postgres", "pytorch", "nginx", "docker", "ssh", "cuda", "pytest", "git", "k8s"]
        for i in range(n):
            topic = topics[i % len(topics)]
            batch.append(MemoryDraft(f"note {i}: {topic} detail {i * 7919 % 100003} on host-{i % 97}", tags=[topic]))
            if len(batch) == 2000:
                hive.store_memories(batch)
                batch.clear()
        if batch:
            hive.store_memories(batch)
    return settings


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="memories in the store for the latency part")
    parser.add_argument("--runs", type=int, default=5, help="first-paint runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "HIVEMIND_DATA_DIR": f"{tmp}/data",
            "HIVEMIND_CONFIG": f"{tmp}/config.toml",
            "HIVEMIND_DISCOVERY__INTERFACES": "127.0.0.1",
            "HIVEMIND_NODE__PORT": "0",
        }
        os.environ.update({k: env[k] for k in ("HIVEMIND_DATA_DIR", "HIVEMIND_CONFIG")})
        paints = [first_paint(env) for _ in range(args.runs)]
        emit(
            metric="first_paint_s",
            p50=round(statistics.median(t for t, _ in paints), 3),
            max=round(max(t for t, _ in paints), 3),
            torch_loaded_at_paint=any(loaded for _, loaded in paints),
        )

        started = time.perf_counter()
        embedder = NearbyEmbedder()
        settings = make_store(Path(tmp) / "big", args.n, embedder)
        emit(metric="setup_store_s", n=args.n, seconds=round(time.perf_counter() - started, 1))
        queries = [f"postgres detail {i * 13}" for i in range(20)]
        with Hive(settings, embedder=embedder) as hive:
            for mode in ("keyword", "hybrid"):
                hive.search_memory("warm up the model", mode=mode)
                direct = []
                for query in queries:
                    t0 = time.perf_counter()
                    hive.search_memory(query, limit=50, mode=mode)
                    direct.append((time.perf_counter() - t0) * 1000)
                ui = asyncio.run(keystroke_latency(hive, queries, mode))
                emit(
                    metric="keystroke_to_results_ms",
                    mode=mode,
                    n=args.n,
                    p50=round(statistics.median(ui), 1),
                    p99=round(p(ui, 99), 1),
                    includes_debounce_ms=150,
                    baseline_facade_p50=round(statistics.median(direct), 1),
                    baseline_facade_p99=round(p(direct, 99), 1),
                )


if __name__ == "__main__":
    main()
