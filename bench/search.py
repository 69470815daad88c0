"""Store and search at scale: ingest rate, vector / keyword / hybrid latency, recall against exact search.

    python bench/search.py --n 10000 [--queries 200] [--real 3000] [--batch 1000] [--data-dir DIR]

What it does, in order:

1. Corpus: N short developer notes from `bench/corpus.py` (deterministic, cached in bench/.cache/).
2. Vectors: the first `--real` notes are embedded for real with the bundled all-MiniLM-L6-v2 (cached as
   .npy in bench/.cache/); every other note gets a blend of two real vectors of notes from the same
   template plus a little gaussian noise, renormalised, so the vectors cluster the way real ones do
   instead of being uniform noise. `--real N` embeds all N for real, with the app's `--embed-backend`
   (1M notes: ~45-65 min with onnx-int8 on one thread, in 50k chunks that a rerun resumes from).
3. Ingest: all N notes go through `Hive.store_memories` in batches, into a fresh store in a temporary data
   directory, with an embedder that hands back the precomputed vectors (so ingest time is the store's).
4. Index: the store's ANN index (usearch HNSW beside sqlite-vec) is built from the store if no usable index
   file exists (`ann_build`: seconds, file size, settings); with --data-dir a saved index is reused.
5. Search: a new `Hive` on that store with the real embedder. Queries (a paraphrase or keywords written
   from a sampled note) are embedded for real. For each mode, the queries run twice: first with the
   query-embedding caches emptied (end to end: model + search), then again with each query's vector cached
   (search only). Vector results are compared with an exact numpy search over the same vectors, which is
   also timed, so the store's overhead over brute force can be read off, and so is the previous
   implementation, sqlite-vec brute force (`sqlite_vec_exact`, `--baseline-queries` of them: ~0.7 s each at 1M).
6. Filtered search: queries from notes of one project tag (the tag nearest 1% of the corpus), with that tag
   as a filter; recall against exact numpy search over the tagged rows only, and every hit must carry the tag;
   sqlite-vec's filtered brute force beside it.
7. Expansion sweep: the same query vectors at other `search.ann_expansion_search` values
   (`--expansion-sweep`), recall@10 and latency for each: what the setting buys.
8. Open: a fresh process opens the store and answers a query (vector given, so no model load): seconds to
   the first answer, later query latency, and that process's resident memory (`open_first_query`).

Prints one JSON object per line (fields: bench, metric, n, cpus, date, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# One BLAS thread: the numpy baseline then compares like with like (sqlite-vec scans on one thread), and a
# busy neighbour on a 2-core machine cannot make OpenBLAS's spinning threads stall. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import CACHE_DIR, DEFAULT_SEED, FORMAT, Note, load_corpus
from bench.report import cpu_model, emit_line, ms_stats
from hivemind_app.config import EmbeddingSettings, load_settings
from hivemind_app.content import check_text
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.backends import configured_space, local_embedder
from hivemind_app.ml.embedder import BUNDLED_MODEL
from hivemind_app.records.memories import SearchFilters
from hivemind_app.store import search as store_search
from hivemind_app.store.ann import index_dir
from hivemind_app.trust.redact import redact

Matrix = npt.NDArray[np.float32]
MODES = ("vector", "keyword", "hybrid")
K = 10
SINGLE_STORES = 20
# Synthetic vectors: weight of the first real vector in the blend (uniform in this range), and the noise's
# standard deviation per dimension. With 384 dimensions, 0.03 puts a synthetic vector at cosine ~0.85 from
# its blend: close to its template's real notes, but not a near-duplicate of one.
_BLEND = (0.6, 1.0)
_NOISE_SIGMA = 0.03


def emit(metric: str, n: int, **fields: Any) -> None:
    emit_line("search", metric, n=n, **fields)


# -- vectors ----------------------------------------------------------------------------------------


CHUNK = 50_000  # real embeddings are cached per chunk as well, so a long run that stops can resume


def real_vectors(notes: Sequence[Note], seed: int, backend: str = "onnx", threads: int = 0) -> Matrix:
    """Real embeddings of `notes` (a prefix of the corpus) by the app's `backend`, from the smallest cached
    prefix that covers them. `onnx` and `torch` make the same vectors and share a cache; `onnx-int8` has its own.
    """
    space = BUNDLED_MODEL + ("+int8" if backend == "onnx-int8" else "")
    pattern = f"vectors-v{FORMAT}-{space}-s{seed}-*.npy"
    for size, path in sorted((int(p.stem.rsplit("-", 1)[1]), p) for p in CACHE_DIR.glob(pattern)):
        if size >= len(notes):
            cached: Matrix = np.load(path)[: len(notes)]
            return cached
    cfg = EmbeddingSettings(backend=backend, threads=threads, converted_dir=CACHE_DIR / "converted")  # type: ignore[arg-type]
    embedder = local_embedder(space, cfg)
    started = time.perf_counter()
    chunks = []
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(notes), CHUNK):
        stop = min(start + CHUNK, len(notes))
        part = CACHE_DIR / f"part-v{FORMAT}-{space}-s{seed}-{start}-{stop}.npy"
        if part.exists():
            chunks.append(np.load(part))
            continue
        chunk = embedder.embed([note.text for note in notes[start:stop]])
        np.save(part, chunk)
        chunks.append(chunk)
        rate = (stop - start) / max(time.perf_counter() - started, 1e-9)
        print(f"  embedded {stop}/{len(notes)} ({backend}, {rate:.0f}/s)", file=sys.stderr, flush=True)
        started = time.perf_counter()
    vectors: Matrix = np.concatenate(chunks).astype(np.float32)
    np.save(CACHE_DIR / f"vectors-v{FORMAT}-{space}-s{seed}-{len(notes)}.npy", vectors)
    for part in CACHE_DIR.glob(f"part-v{FORMAT}-{space}-s{seed}-*.npy"):
        part.unlink()
    return vectors


def all_vectors(notes: Sequence[Note], real: Matrix, seed: int) -> Matrix:
    """Real vectors for the first len(real) notes; blends of two same-template real vectors + noise for the rest."""
    n, m, dim = len(notes), real.shape[0], real.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    out[:m] = real
    if n == m:
        return out
    rng = np.random.default_rng(seed)
    templates = np.array([note.template for note in notes], dtype=np.int32)
    everyone = np.arange(m)
    by_template = {int(t): np.flatnonzero(templates[:m] == t) for t in np.unique(templates)}
    # Pick, for each synthetic note, two real notes of its template (any real note if its template has none).
    first = np.empty(n - m, dtype=np.int64)
    second = np.empty(n - m, dtype=np.int64)
    for t in np.unique(templates[m:]):
        where = np.flatnonzero(templates[m:] == t)
        pool = by_template.get(int(t))
        pool = pool if pool is not None and len(pool) else everyone
        first[where] = pool[rng.integers(0, len(pool), len(where))]
        second[where] = pool[rng.integers(0, len(pool), len(where))]
    chunk = 50_000  # keeps the temporaries small at 1M notes
    for start in range(0, n - m, chunk):
        stop = min(start + chunk, n - m)
        weight = np.asarray(rng.uniform(*_BLEND, size=(stop - start, 1)), dtype=np.float32)
        blend = weight * real[first[start:stop]] + (1 - weight) * real[second[start:stop]]
        blend += np.asarray(rng.normal(0.0, _NOISE_SIGMA, size=blend.shape), dtype=np.float32)
        blend /= np.linalg.norm(blend, axis=1, keepdims=True)
        out[m + start : m + stop] = blend
    return out


def stored_text(text: str) -> str:
    """The text as the store keeps it (normalised, secrets redacted): what hits carry and embedders see."""
    return redact(check_text(text, 1 << 30))


class PrecomputedEmbedder:
    """An `Embedder` that looks vectors up by text: ingest then costs what the store costs, not the model."""

    def __init__(self, texts: Sequence[str], vectors: Matrix, model_name: str = BUNDLED_MODEL) -> None:
        self.model_name = model_name  # the vector space the store files them under
        self._row = {stored_text(text): i for i, text in enumerate(texts)}
        self._vectors = vectors

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Matrix:
        rows = self._vectors[[self._row[text] for text in texts]]
        if progress:
            progress(len(texts))
        return rows


def exact_top_k(matrix: Matrix, query: Matrix, k: int = K) -> npt.NDArray[np.int64]:
    """Row indices of the k largest dot products, best first (rows and query are unit length: cosine)."""
    scores = matrix @ query
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


# -- stages -----------------------------------------------------------------------------------------


def batches(notes: Sequence[Note], size: int) -> Iterator[list[MemoryDraft]]:
    for start in range(0, len(notes), size):
        yield [MemoryDraft(n.text, n.tags, n.source) for n in notes[start : start + size]]


def ingest(hive: Hive, notes: Sequence[Note], batch: int) -> dict[str, Any]:
    """Store every note; returns the timings (total, and per-batch rate near the start and the end)."""
    rates: list[float] = []
    started = time.perf_counter()
    last_report = started
    for drafts in batches(notes, batch):
        t0 = time.perf_counter()
        hive.store_memories(drafts)
        rates.append(len(drafts) / (time.perf_counter() - t0))
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            done = len(rates) * batch
            print(f"  ingested {done}/{len(notes)} ({rates[-1]:.0f}/s now)", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    tenth = max(1, len(rates) // 10)
    return {
        "seconds": round(seconds, 2),
        "memories_per_s": round(len(notes) / seconds, 1),
        "batch": batch,
        # A store whose per-write cost grows with its size shows here before it shows in the total.
        "first_10pct_per_s": round(statistics.fmean(rates[:tenth]), 1),
        "last_10pct_per_s": round(statistics.fmean(rates[-tenth:]), 1),
    }


def forget_query_vectors(hive: Hive, queries: Sequence[str] | None = None) -> None:
    """Drop query embeddings (all, or those of `queries`) from both caches, in memory and in the store."""
    hive.parts.embedding.forget_queries(queries)


def timed_searches(
    hive: Hive, queries: Sequence[str], mode: str, filters: SearchFilters | None = None
) -> tuple[list[float], list[float], list[list[str]]]:
    """Per query: ms end to end (query embedded for real), ms with its vector cached, and the texts found.

    Both timings of a query are taken back to back, so a burst of load from a neighbour on this shared
    machine skews a pair, not a whole pass.
    """
    e2e: list[float] = []
    cached: list[float] = []
    results: list[list[str]] = []
    for query in queries:
        forget_query_vectors(hive, [query])
        for timings in (e2e, cached):
            t0 = time.perf_counter()
            result = hive.search_memory(query, limit=K, mode=mode, filters=filters)
            timings.append((time.perf_counter() - t0) * 1000)
        if result.mode != mode:
            raise RuntimeError(f"asked for a {mode} search, got {result.mode}: {result.fallback}")
        results.append([hit.memory.text for hit in result.hits])
    return e2e, cached, results


def recall(found: Sequence[Sequence[str]], exact: Sequence[Sequence[int]], row_of: dict[str, int]) -> float:
    """Mean fraction of the exact top-k the store also returned."""
    scores = []
    for texts, truth in zip(found, exact, strict=True):
        got = {row_of[text] for text in texts}
        scores.append(len(got & set(truth)) / len(truth) if len(truth) else 1.0)
    return round(statistics.fmean(scores), 4)


def baseline(matrix: Matrix, query_vectors: Matrix) -> tuple[list[list[int]], list[float]]:
    """Exact top-k for each query, and how long numpy took for each (ms)."""
    exact, timings = [], []
    for q in query_vectors:
        t0 = time.perf_counter()
        top = exact_top_k(matrix, q)
        timings.append((time.perf_counter() - t0) * 1000)
        exact.append([int(i) for i in top])
    return exact, timings


def pick_filter_tag(notes: Sequence[Note], share: float = 0.01) -> str:
    """The project tag (second tag) whose share of the corpus is nearest `share`: one tag among many."""
    counts: dict[str, int] = {}
    for note in notes:
        counts[note.tags[1]] = counts.get(note.tags[1], 0) + 1
    return min(sorted(counts), key=lambda tag: abs(counts[tag] / len(notes) - share))


def sample_queries(notes: Sequence[Note], rows: Sequence[int], count: int, rng: random.Random) -> list[str]:
    """Up to `count` distinct queries written from the notes at `rows` (distinct, so each one is embedded cold)."""
    order = list(rows)
    rng.shuffle(order)
    queries: dict[str, None] = {}
    for row in order:
        queries.setdefault(notes[row].query, None)
        if len(queries) == count:
            break
    return list(queries)


def open_store(data_dir: Path, notes: Sequence[Note], vectors: Matrix, batch: int) -> dict[str, Any] | None:
    """Ingest into `data_dir` unless it already holds exactly these notes; returns ingest figures or None."""
    settings = load_settings()
    space = configured_space(settings.embedding)
    with Hive(settings, embedder=PrecomputedEmbedder([n.text for n in notes], vectors, space)) as hive:
        stats = hive.parts.store.stats()
        if len(notes) <= stats.memories <= len(notes) + SINGLE_STORES and stats.embedded == stats.memories:
            return None  # reused (--data-dir; a previous run's store_one stage added up to SINGLE_STORES)
        if stats.memories:
            raise SystemExit(f"{data_dir} holds {stats.memories} memories, not {len(notes)}; use an empty directory.")
        figures = ingest(hive, notes, batch)
        stats = hive.parts.store.stats()
        if stats.memories != len(notes) or stats.embedded != len(notes):
            raise RuntimeError(f"after ingest: {stats.memories} memories, {stats.embedded} vectors; want {len(notes)}")
        figures["db_mb"] = round((stats.file_bytes + stats.wal_bytes) / 2**20, 1)
        return figures


def rss_mb() -> dict[str, float]:
    """This process's resident memory (MB): all of it, anonymous (heap) and file-backed (mapped files)."""
    fields = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[key.lower()] = round(int(value.split()[0]) / 1024, 1)
    return fields


def build_index(n: int) -> None:
    """Open the store and wait for its ANN index (built now from sqlite-vec unless a usable file exists)."""
    with Hive(load_settings()) as hive:
        space = hive.parts.store.active_space()
        ann = hive.parts.store.ann
        index = ann.index_for(space) if ann is not None and space is not None else None
        if index is None or space is None:
            emit("ann_build", n, note="no ANN index (turned off, not installed, or no vectors)")
            return
        t0 = time.perf_counter()
        probe = np.ones(space.dim, dtype=np.float32)
        hive.parts.store.vector_search(space, probe, K, SearchFilters())  # starts a build if no usable file
        built = index.building
        last = 0.0
        while index.building:
            time.sleep(1)
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                print(f"  index: {index.status.detail}", file=sys.stderr, flush=True)
        index.wait()
        hive.parts.store.vector_search(space, probe, K, SearchFilters())
        status = index.status
        files = list(index_dir(hive.settings.db_path).glob("*.usearch"))
        search = hive.settings.search
        emit(
            "ann_build",
            n,
            built_now=built,
            seconds=round(time.perf_counter() - t0, 2) if built else status.build_seconds,
            state=status.state,
            indexed=status.indexed,
            file_mb=round(sum(f.stat().st_size for f in files) / 2**20, 1),
            library="usearch",
            dtype=search.ann_dtype,
            connectivity=search.ann_connectivity,
            expansion_add=search.ann_expansion_add,
            expansion_search=search.ann_expansion_search,
            threads=search.ann_threads or os.cpu_count(),
        )


def expansion_sweep(
    n: int, values: Sequence[int], query_vectors: Matrix, exact: Sequence[Sequence[int]], row_of: dict[str, int]
) -> None:
    """Recall@10 and latency of the same query vectors at other `search.ann_expansion_search` values: what
    the setting buys. Each value gets a fresh `Hive` on the same index file (memory-mapped: no rebuild)."""
    for value in values:
        os.environ["HIVEMIND_SEARCH__ANN_EXPANSION_SEARCH"] = str(value)
        with Hive(load_settings()) as hive:
            space = hive.parts.store.active_space()
            assert space is not None
            for q in query_vectors[:5]:  # map the pages this value walks, outside the timings
                hive.parts.store.vector_search(space, q, K, SearchFilters())
            timings, found = [], []
            for q in query_vectors:
                t0 = time.perf_counter()
                hits = hive.parts.store.vector_search(space, q, K, SearchFilters())
                timings.append((time.perf_counter() - t0) * 1000)
                loaded = hive.parts.store.get_many(rowid for rowid, _ in hits)
                found.append([loaded[rowid].text for rowid, _ in hits])
            state = hive.index_status()[0].state if hive.index_status() else "none"
        emit(
            "ann_expansion_search",
            n,
            expansion_search=value,
            queries=len(query_vectors),
            recall_at_10=recall(found, exact, row_of),
            index=state,
            note="search only (query vectors given), same queries as search_vector",
            **ms_stats(timings),
        )
    os.environ.pop("HIVEMIND_SEARCH__ANN_EXPANSION_SEARCH", None)


_COLD_OPEN = """
import json, os, sys, time
t0 = time.perf_counter()
import numpy as np
from hivemind_app.config import load_settings
from hivemind_app.hive import Hive
from hivemind_app.records.memories import SearchFilters
queries = np.load(sys.argv[1])
hive = Hive(load_settings())
space = hive.parts.store.active_space()
opened = time.perf_counter()
hive.parts.store.vector_search(space, queries[0], 10, SearchFilters())
first = time.perf_counter()
timings = []
for q in queries[1:]:
    t = time.perf_counter(); hive.parts.store.vector_search(space, q, 10, SearchFilters())
    timings.append((time.perf_counter() - t) * 1000)
status = hive.index_status()
mem = {}
for line in open("/proc/self/status"):
    key, _, value = line.partition(":")
    if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
        mem[key.lower() + "_mb"] = round(int(value.split()[0]) / 1024, 1)
print(json.dumps({"open_s": round(opened - t0, 3), "first_query_ms": round((first - opened) * 1000, 2),
    "open_to_first_answer_s": round(first - t0, 3), "state": status[0].state if status else None,
    "later_p50_ms": round(sorted(timings)[len(timings) // 2], 3), **mem}))
"""


def cold_open(n: int, query_vectors: Matrix, data_dir: Path) -> None:
    """A fresh process opens the store and answers: start-up cost and resident memory of a store process."""
    path = data_dir / "cold-queries.npy"
    np.save(path, query_vectors)
    done = subprocess.run(
        [sys.executable, "-c", _COLD_OPEN, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    emit(
        "open_first_query",
        n,
        queries=len(query_vectors),
        note="new process, torch not imported, query vectors given; the store file is in the page cache",
        **figures,
    )


def sqlite_vec_baseline(
    hive: Hive, query_vectors: Matrix, filters: SearchFilters | None = None
) -> tuple[list[list[int]], list[float]]:
    """The previous implementation (sqlite-vec brute force, filters inside): rowids found and ms per query."""
    space = hive.parts.store.active_space()
    assert space is not None
    found, timings = [], []
    for q in query_vectors:
        t0 = time.perf_counter()
        with hive.parts.db.lock:
            hits = store_search.vector_search(hive.parts.db.conn, space, q, K, filters or SearchFilters())
        timings.append((time.perf_counter() - t0) * 1000)
        found.append([rowid for rowid, _ in hits])
    return found, timings


def run(args: argparse.Namespace, data_dir: Path) -> None:
    n = args.n
    os.environ["HIVEMIND_DATA_DIR"] = str(data_dir)
    os.environ["HIVEMIND_CONFIG"] = str(data_dir / "config.toml")  # absent: defaults, not the user's file
    os.environ["HF_HUB_OFFLINE"] = "1"

    t0 = time.perf_counter()
    # SINGLE_STORES more notes than the store gets in bulk: they are stored one by one at the end.
    every_note = load_corpus(n + SINGLE_STORES, args.seed)
    notes = every_note[:n]
    corpus_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # queries are embedded by the same backend as the notes (HIVEMIND_EMBEDDING__BACKEND for the Hive below)
    os.environ["HIVEMIND_EMBEDDING__BACKEND"] = args.embed_backend
    os.environ["HIVEMIND_EMBEDDING__CONVERTED_DIR"] = str(CACHE_DIR / "converted")
    real = real_vectors(notes[: min(n, args.real)], args.seed, args.embed_backend, args.embed_threads)
    every_vector = all_vectors(every_note, real, args.seed)
    vectors = every_vector[:n]
    emit(
        "setup",
        n,
        corpus_s=round(corpus_s, 2),
        vectors_s=round(time.perf_counter() - t0, 2),
        real_vectors=len(real),
        embed_backend=args.embed_backend,
        dim=int(vectors.shape[1]),
        cpu=cpu_model(),
        python=platform.python_version(),
        numpy=np.__version__,
        numpy_blas_threads=os.environ["OPENBLAS_NUM_THREADS"],
    )

    figures = open_store(data_dir, notes, vectors, args.batch)
    if figures is not None:
        emit("ingest", n, **figures)
    build_index(n)

    row_of = {stored_text(note.text): i for i, note in enumerate(every_note)}  # a reused store may hold the extras
    rng = random.Random(args.seed)
    queries = sample_queries(notes, range(n), args.queries, rng)
    tag = pick_filter_tag(notes)
    tagged = np.flatnonzero(np.array([tag in note.tags for note in notes]))
    filtered_queries = sample_queries(notes, tagged.tolist(), min(args.queries, 100), rng)

    with Hive(load_settings()) as hive:  # the real embedder, as every front end uses it
        # Load the model and warm SQLite's page cache with throwaway queries, so neither lands in a timing.
        for mode in MODES:
            for warm in ("warm up the cache", "redis port on staging", "pytest flaky test"):
                hive.search_memory(warm, limit=K, mode=mode)
        forget_query_vectors(hive)
        query_vectors = np.stack([hive.embed_query(q)[0] for q in queries])
        filtered_vectors = np.stack([hive.embed_query(q)[0] for q in filtered_queries])

        exact, numpy_ms = baseline(vectors, query_vectors)
        emit("numpy_exact", n, queries=len(queries), **ms_stats(numpy_ms))
        numpy_p50 = statistics.median(numpy_ms)
        base_count = min(len(queries), args.baseline_queries)
        _, sqlite_ms = sqlite_vec_baseline(hive, query_vectors[:base_count])
        emit(
            "sqlite_vec_exact",
            n,
            queries=base_count,
            note="previous implementation: brute force",
            **ms_stats(sqlite_ms),
        )
        sqlite_p50 = statistics.median(sqlite_ms)

        for mode in MODES:
            e2e_ms, search_ms, found = timed_searches(hive, queries, mode)
            line: dict[str, Any] = {"queries": len(queries), **ms_stats(search_ms), **ms_stats(e2e_ms, "e2e_")}
            if mode == "keyword":
                line["note"] = "no embedding in keyword mode: e2e is a query's first run, the other its second"
            if mode == "vector":
                line["recall_at_10"] = recall(found, exact, row_of)
                line["x_numpy_p50"] = round(statistics.median(search_ms) / numpy_p50, 2)
                line["x_sqlite_vec_p50"] = round(statistics.median(search_ms) / sqlite_p50, 4)
            line["index"] = hive.index_status()[0].state if hive.index_status() else "none"
            line["empty_results"] = sum(1 for texts in found if not texts)
            emit(f"search_{mode}", n, **line)

        # Filtered: one project tag among many.
        filters = hive.make_filters(tags=[tag])
        sub = vectors[tagged]
        exact_sub, numpy_sub_ms = baseline(sub, filtered_vectors)
        exact_rows = [[int(tagged[i]) for i in top] for top in exact_sub]
        line = {"tag": tag, "tag_rows": len(tagged), "tag_share": round(len(tagged) / n, 4)}
        line["queries"] = len(filtered_queries)
        for mode in MODES:
            e2e_ms, search_ms, found = timed_searches(hive, filtered_queries, mode, filters)
            line.update(ms_stats(e2e_ms, f"{mode}_e2e_"))
            wrong = sum(1 for texts in found for text in texts if tag not in every_note[row_of[text]].tags)
            line.update(ms_stats(search_ms, f"{mode}_"))
            line[f"{mode}_hits_without_tag"] = wrong
            if mode == "vector":
                line["vector_recall_at_10"] = recall(found, exact_rows, row_of)
        line.update(ms_stats(numpy_sub_ms, "numpy_exact_"))
        _, sqlite_sub_ms = sqlite_vec_baseline(hive, filtered_vectors[: args.baseline_queries], filters)
        line.update(ms_stats(sqlite_sub_ms, "sqlite_vec_exact_"))
        emit("search_filtered", n, **line)
        emit("memory", n, note="the benchmark process (it also holds the corpus and its vectors)", **rss_mb())
    expansion_sweep(n, args.expansion_sweep, query_vectors, exact, row_of)
    cold_open(n, query_vectors[: min(len(query_vectors), 100)], data_dir)

    # Last, as it adds memories: one store_memory call at a time, the MCP / CLI / hook path. The embedder
    # hands back precomputed vectors, so this is the store's cost; a real embedding adds ~20 ms.
    extra = every_note[n:]
    settings = load_settings()
    space = configured_space(settings.embedding)
    with Hive(settings, embedder=PrecomputedEmbedder([x.text for x in extra], every_vector[n:], space)) as hive:
        single_ms = []
        for note in extra:
            t0 = time.perf_counter()
            hive.store_memory(note.text, note.tags, note.source)
            single_ms.append((time.perf_counter() - t0) * 1000)
    emit("store_one", n, stores=len(single_ms), **ms_stats(single_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="memories in the store")
    parser.add_argument("--queries", type=int, default=200, help="queries per mode")
    parser.add_argument("--real", type=int, default=3000, help="notes embedded for real (the rest are synthetic)")
    parser.add_argument(
        "--embed-backend",
        default="onnx",
        choices=("onnx", "onnx-int8", "torch"),
        help="embedding.backend for notes and queries",
    )
    parser.add_argument("--embed-threads", type=int, default=0, help="embedding.threads while embedding notes")
    parser.add_argument("--batch", type=int, default=1000, help="memories per store_memories call")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--baseline-queries", type=int, default=20, help="queries timed on sqlite-vec brute force (~0.7 s each at 1M)"
    )
    parser.add_argument(
        "--expansion-sweep",
        type=lambda text: [int(v) for v in text.split(",") if v],
        default=[64, 128, 256, 512],
        help="search.ann_expansion_search values to measure recall and latency at (empty: none)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="keep the store here and reuse it on the next run (default: a temp dir)"
    )
    args = parser.parse_args()
    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        run(args, args.data_dir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="hivemind-bench-") as tmp:
            run(args, Path(tmp))


if __name__ == "__main__":
    main()
