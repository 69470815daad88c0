"""Ingest with real embedding: short notes through `Hive.store_memories`, embedded, stored and indexed.

    python bench/ingest.py [--n 3000] [--batch 256] [--backends torch,onnx,onnx-int8,onnx-int8@1]

Issue 8's target: >= 300 memories/s for short notes on 2 CPU cores, with a progress bar. For each embedding
backend (bench/embed.py's names: `torch` is the baseline, the app's embedder before the ONNX backends; `onnx`
is the app's default `embedding.backend`, `onnx-int8` the opt-in one), given to the facade as its embedder,
in one run:

1. `ingest`: a fresh store in a temporary data dir, the N notes through `Hive.store_memories` in `--batch`
   calls with the real embedder, with a progress bar on stderr (rich), as `hivemind-app import` shows one:
   what a user waits for. The embedder's calls (texts, vectors) are recorded.
2. `embed`: the embedder alone, replaying the recorded calls (the same texts, redacted as the facade redacts
   them, in the same batches): the model's cost.
3. `store`: another fresh store, the same notes through `Hive.store_memories` with an embedder that hands back
   the recorded vectors: everything but the model (validation, redaction, hashing, SQLite, FTS5, sqlite-vec,
   and whatever index the store keeps).

Reported per backend: memories/s of each step, the share of the ingest time that the model and the store
take (`ingest_s` against `embed_s + store_s`), and the ingest rate over the 300/s target. Notes are the first
N of bench/corpus.py (short developer notes, ~10-30 words). Prints one JSON object per line; the stores live
in a temporary directory (HIVEMIND_DATA_DIR / HIVEMIND_CONFIG pointed there) and are deleted at the end.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import DEFAULT_SEED, Note, load_corpus
from bench.embed import CONVERTED_DIR, BackendUnavailableError, load_backend
from bench.report import cpu_model, emit_line
from bench.search import PrecomputedEmbedder
from hivemind_app.config import load_settings
from hivemind_app.hive import Hive, MemoryDraft

TARGET_PER_S = 300.0  # issue 8, short notes, 2 cores, CPU


def emit(metric: str, n: int, **fields: Any) -> None:
    emit_line("ingest", metric, n=n, **fields)


def use_data_dir(path: Path) -> None:
    """Point the app at a fresh data dir (never the user's) and a config file that does not exist."""
    path.mkdir(parents=True, exist_ok=True)
    os.environ["HIVEMIND_DATA_DIR"] = str(path)
    os.environ["HIVEMIND_CONFIG"] = str(path / "config.toml")


def drafts(notes: Sequence[Note]) -> list[MemoryDraft]:
    return [MemoryDraft(note.text, note.tags, note.source) for note in notes]


def store_all(
    data_dir: Path, notes: Sequence[Note], embedder: Any, batch: int, progress: Callable[[int], None] | None = None
) -> tuple[float, dict[str, Any]]:
    """Seconds to store every note through the facade in `batch`-sized calls, and the store's stats after."""
    use_data_dir(data_dir)
    items = drafts(notes)
    with Hive(load_settings(), embedder=embedder) as hive:
        started = time.perf_counter()
        for start in range(0, len(items), batch):
            hive.store_memories(items[start : start + batch], progress=progress)
        seconds = time.perf_counter() - started
        stats = hive.parts.store.stats()
    if stats.memories != len(notes) or stats.embedded != len(notes):
        raise RuntimeError(f"after ingest: {stats.memories} memories, {stats.embedded} vectors; want {len(notes)}")
    return seconds, {"db_mb": round((stats.file_bytes + stats.wal_bytes) / 2**20, 1)}


def progress_bar() -> Progress:
    """The CLI's bar (`hivemind-app import`), on stderr."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


class Recording:
    """Wraps an embedder and keeps every call's texts and vectors, so the model alone can replay them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.calls: list[tuple[list[str], Any]] = []

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Any:
        vectors = self.inner.embed(texts, progress=progress)
        self.calls.append((list(texts), vectors))
        return vectors


def measure(spec: str, notes: Sequence[Note], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    embedder, info = load_backend(spec, args.embed_batch)
    # The settings must name the space this embedder's vectors belong to (int8 vectors are `<model>+int8`),
    # or the facade would embed with its own model instead of the one handed to it.
    os.environ["HIVEMIND_EMBEDDING__BACKEND"] = "onnx-int8" if spec.startswith("onnx-int8") else "onnx"
    os.environ["HIVEMIND_EMBEDDING__CONVERTED_DIR"] = str(CONVERTED_DIR)
    embedder.embed([note.text for note in notes[:64]])  # warm: first-call allocations are not per-note costs
    line: dict[str, Any] = {"backend": spec, **info, "batch": args.batch, "embed_batch": args.embed_batch}

    # 1. the whole ingest, with a progress bar (the facade's calls to the model are recorded)
    recording = Recording(embedder)
    with progress_bar() as bar:
        task = bar.add_task(f"ingest ({spec})", total=len(notes), rate="")
        started = time.perf_counter()

        def advance(count: int) -> None:
            done = bar.tasks[0].completed + count
            bar.update(task, advance=count, rate=f"{done / (time.perf_counter() - started):.0f}/s")

        ingest_s, stats = store_all(tmp / f"{spec}-ingest", notes, recording, args.batch, advance)

    # 2. the model alone: the same calls with the same texts (redacted as the facade redacts them)
    started = time.perf_counter()
    for texts, _ in recording.calls:
        embedder.embed(texts)
    embed_s = time.perf_counter() - started

    # 3. the store alone: a fresh store, the same notes, the recorded vectors handed back without a model
    sent = [text for texts, _ in recording.calls for text in texts]
    if not recording.calls:
        raise RuntimeError(f"the facade never called the {spec} embedder: its settings name another vector space")
    vectors = np.concatenate([vectors for _, vectors in recording.calls])
    replay = PrecomputedEmbedder(sent, vectors, embedder.model_name)
    store_s, _ = store_all(tmp / f"{spec}-store", notes, replay, args.batch)

    n = len(notes)
    line.update(
        ingest_s=round(ingest_s, 2),
        ingest_per_s=round(n / ingest_s, 1),
        embed_per_s=round(n / embed_s, 1),
        store_per_s=round(n / store_s, 1),
        # where the time goes: the model's share and the store's share of one ingest (they need not add up to 1)
        embed_share=round(embed_s / ingest_s, 3),
        store_share=round(store_s / ingest_s, 3),
        x_target=round(n / ingest_s / TARGET_PER_S, 2),
        **stats,
    )
    del embedder, recording
    gc.collect()
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="notes to ingest (per backend, into a fresh store)")
    parser.add_argument("--batch", type=int, default=256, help="notes per store_memories call (the importer's 256)")
    parser.add_argument("--embed-batch", type=int, default=64, help="texts per forward pass (embedding.batch_size)")
    parser.add_argument(
        "--backends", default="torch,onnx,onnx-int8,onnx-int8@1", help="comma-separated, see bench/embed.py"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()

    notes = load_corpus(args.n, args.seed)
    words = [len(note.text.split()) for note in notes]
    emit(
        "setup",
        args.n,
        words_p50=statistics.median(words),
        words_max=max(words),
        cpu=cpu_model(),
        python=platform.python_version(),
        target_per_s=TARGET_PER_S,
    )
    with tempfile.TemporaryDirectory(prefix="hivemind-bench-ingest-") as tmp:
        for spec in [s.strip() for s in args.backends.split(",") if s.strip()]:
            try:
                emit("ingest", args.n, **measure(spec, notes, args, Path(tmp)))
            except BackendUnavailableError as exc:
                emit("backend_unavailable", args.n, backend=spec, reason=str(exc))


if __name__ == "__main__":
    main()
