"""Watched folders: what a start costs on a large unchanged tree, and how soon a save is searchable.

    python bench/watch.py [--n 10000,100000] [--saves 40] [--save-n 1000]

For each N, in one run, on a temporary folder of N notes (bench/corpus.py's, one a file, 100 files a
directory):

1. `import`: `Hive.watch_folders` on the folder (the first `watch add`), with a hashing embedder: this
   measures the walk, reads, chunking and store, not the model (bench/ingest.py measures that).
2. `start`: `Hive.reconcile_watched()` with nothing changed, what a node does at start before it watches:
   process CPU seconds and wall seconds (median of 3), against the baseline measured in the same run on the
   same tree: a plain recursive `os.scandir` walk that `stat`s every file (the least any start can do to
   notice a change). `x_scandir` is the start's CPU over the walk's.
3. `save_to_searchable`: the node's `watch` worker (nodes/watcher.py, the node's own 300 ms debounce)
   follows the folder; each of `--saves` saves writes a note with a unique word into a new file, and the
   time until a keyword search finds that word is taken (p50 / p99). Measured on each N's tree with the
   hashing embedder (what the watcher costs, and that it does not grow with the tree), and on a
   `--save-n` tree with the real MiniLM embedding each new chunk (what a user waits for).

Prints one JSON object per line; the store and the folder live in a temporary directory, deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import load_corpus
from bench.report import cpu_model, emit_line, ms_stats
from hivemind_app.config import EmbeddingSettings, Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.embedder import Embedder
from hivemind_app.nodes.supervisor import Supervisor
from hivemind_app.nodes.watcher import FolderWatcher
from tests.support.hash_embedder import HashEmbedder


def emit(metric: str, n: int, **fields: Any) -> None:
    emit_line("watch", metric, n=n, **fields)


def make_tree(root: Path, n: int) -> None:
    notes = load_corpus(n)
    for i, note in enumerate(notes):
        directory = root / f"d{i // 100:04d}"
        if i % 100 == 0:
            directory.mkdir(parents=True)
        (directory / f"note{i:06d}.md").write_text(note.text + "\n")


def scandir_walk(root: Path) -> int:
    """The baseline: every file under `root` found and stat'ed, nothing else."""
    count = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    entry.stat()
                    count += 1
    return count


def timed(fn: Any) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def median_of(fn: Any, runs: int = 3) -> tuple[float, float]:
    results = [timed(fn) for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def settings_for(tmp: Path, name: str, model: str) -> Settings:
    os.environ["HIVEMIND_DATA_DIR"] = str(tmp / f"data-{name}")
    os.environ["HIVEMIND_CONFIG"] = str(tmp / "config.toml")
    settings = Settings()
    settings.embedding.model = model
    return settings


def bench_start(tmp: Path, n: int, saves: int) -> None:
    folder = tmp / f"tree-{n}"
    make_tree(folder, n)
    with Hive(settings_for(tmp, f"start-{n}", HashEmbedder.model_name), embedder=HashEmbedder()) as hive:
        wall = time.perf_counter()
        report = hive.watch_folders([folder])
        import_s = time.perf_counter() - wall
        emit("import", n, files=report.files_seen, chunks=report.chunks_stored, seconds=round(import_s, 2),
             files_per_s=round(n / import_s, 1))
        unchanged: dict[str, int] = {}

        def start() -> None:
            r = hive.reconcile_watched()
            unchanged.update(files=r.unchanged, hashed=r.hashed, changes=r.changes)

        cpu, wall_s = median_of(start)
        base_cpu, base_wall = median_of(lambda: scandir_walk(folder))
        emit("start", n, cpu_s=round(cpu, 3), wall_s=round(wall_s, 3), scandir_cpu_s=round(base_cpu, 3),
             scandir_wall_s=round(base_wall, 3), x_scandir=round(cpu / base_cpu, 2), **unchanged)
        measure_saves(hive, folder, n, saves)


def measure_saves(hive: Hive, folder: Path, n: int, saves: int) -> None:
    supervisor = Supervisor()
    watcher = FolderWatcher(hive, lambda: supervisor.stopping, supervisor.wait)
    supervisor.spawn("watch", watcher.run, 0.0)
    while watcher.updates == 0:
        time.sleep(0.05)
    time.sleep(0.5)
    latencies: list[float] = []
    cpu = time.process_time()
    try:
        for i in range(saves):
            word = f"zqsave{i:04d}x"
            path = folder / "saved" / f"s{i:04d}.md"
            path.parent.mkdir(exist_ok=True)
            start = time.perf_counter()
            path.write_text(f"Saved note number {i}: the token is {word}.\n")
            while not hive.search_memory(word, mode="keyword", limit=1).hits:
                time.sleep(0.005)
                if time.perf_counter() - start > 30:
                    raise SystemExit(f"save {i} was not searchable after 30 s")
            latencies.append((time.perf_counter() - start) * 1000)
            time.sleep(0.4)  # one save at a time: each its own update
    finally:
        supervisor.stop()
    emit("save_to_searchable", n, saves=saves, model=hive.search_model, debounce_ms=300,
         cpu_s_per_save=round((time.process_time() - cpu) / saves, 4), **ms_stats(latencies, digits=1))


def real_model() -> Embedder:
    from hivemind_app.ml.backends import local_embedder

    converted = Path(os.environ.get("HIVEMIND_EMBEDDING__CONVERTED_DIR", "~/.cache/hivemind-app/converted-models"))
    return local_embedder("all-MiniLM-L6-v2", EmbeddingSettings(device="cpu", converted_dir=converted.expanduser()))


def bench_saves(tmp: Path, n: int, saves: int) -> None:
    folder = tmp / f"tree-save-{n}"
    make_tree(folder, n)
    embedder = real_model()
    embedder.embed(["warm-up"])
    with Hive(settings_for(tmp, f"saves-{n}", embedder.model_name), embedder=embedder) as hive:
        hive.watch_folders([folder])
        measure_saves(hive, folder, n, saves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="10000", help="comma-separated tree sizes (files)")
    parser.add_argument("--saves", type=int, default=40)
    parser.add_argument("--save-n", type=int, default=1000, help="tree size for saves with the real model")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.n.split(","))
    emit_line("watch", "machine", cpu=cpu_model())
    with tempfile.TemporaryDirectory(prefix="hivemind-bench-watch-") as tmp:
        for n in sizes:
            bench_start(Path(tmp), n, args.saves)
        bench_saves(Path(tmp), args.save_n, args.saves)


if __name__ == "__main__":
    main()
