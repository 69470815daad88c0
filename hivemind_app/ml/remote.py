"""Embedding through other nodes: a peer's `/embed` over HTTP, and failover across a list of embedders.

The order a client tries is: the nearest, least-loaded peer with the embed role, the next one on failure,
the in-process model, and finally nothing (the caller then searches by keyword). A peer whose model differs
from the one the store needs is never used: its vectors would live in another space.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import httpx
import numpy as np

from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.ml.embedder import Embedder, Vectors

log = logging.getLogger(__name__)
T = TypeVar("T")


class RemoteEmbedder:
    """One node's `/embed`. Raises EmbedderUnavailableError on any failure, so failover can move on."""

    def __init__(self, base_url: str, model_name: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._dim: int | None = None

    def __repr__(self) -> str:
        return f"RemoteEmbedder({self.base_url})"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Vectors:
        chunks = []
        for start in range(0, len(texts), 256):
            batch = list(texts[start : start + 256])
            try:
                answer = httpx.post(
                    f"{self.base_url}/embed", json={"texts": batch}, headers=self._headers, timeout=self.timeout_s
                )
            except httpx.HTTPError as exc:
                raise EmbedderUnavailableError(f"Node {self.base_url} did not answer /embed: {exc}") from exc
            if answer.status_code != 200:
                raise EmbedderUnavailableError(f"Node {self.base_url} refused /embed ({answer.status_code}).")
            try:
                body = answer.json()
            except ValueError as exc:
                raise EmbedderUnavailableError(f"Node {self.base_url} answered /embed with no JSON.") from exc
            if not isinstance(body, dict) or body.get("model") != self.model_name:
                model = body.get("model") if isinstance(body, dict) else None
                raise EmbedderUnavailableError(f"Node {self.base_url} embeds with {model}, not {self.model_name}.")
            vectors = checked_vectors(body.get("embeddings"), len(batch), self._dim)
            if vectors is None:
                raise EmbedderUnavailableError(
                    f"Node {self.base_url} answered /embed with vectors that are not {len(batch)} finite unit "
                    f"vectors of one dimension; not used."
                )
            self._dim = int(vectors.shape[1])
            chunks.append(vectors)
            if progress:
                progress(len(batch))
        if not chunks:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return np.concatenate(chunks)


UNIT_NORM_TOLERANCE = 1e-2  # float32 and int8 backends land well inside it; a forged vector rarely does


def checked_vectors(raw: object, count: int, dim: int | None) -> Vectors | None:
    """A peer's vectors if they are what this node's own model would give (None otherwise): `count` rows, one
    dimension (the one seen before, if any), every value finite, every row of unit length. Vectors are
    stored and spread to the whole hive, so a peer's word is not taken for it."""
    if not isinstance(raw, list) or len(raw) != count:
        return None
    try:
        vectors = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    if vectors.ndim != 2 or vectors.shape[0] != count or vectors.shape[1] == 0:
        return None
    if dim is not None and vectors.shape[1] != dim:
        return None
    if not np.isfinite(vectors).all():
        return None
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.abs(norms - 1.0) <= UNIT_NORM_TOLERANCE):
        return None
    return vectors


class FailoverEmbedder:
    """Tries each candidate in order; the list is asked for afresh on every call, since peers come and go."""

    def __init__(self, model_name: str, candidates: Callable[[], list[Embedder]]) -> None:
        self.model_name = model_name
        self.candidates = candidates
        self.last_used: str | None = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = self._first(lambda e: e.dim)
        return self._dim

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Vectors:
        vectors = self._first(lambda e: e.embed(texts, progress))
        self._dim = int(vectors.shape[1]) if vectors.ndim == 2 and vectors.shape[0] else self._dim
        return vectors

    def _first(self, call: Callable[[Embedder], T]) -> T:
        reasons = []
        for candidate in self.candidates():
            try:
                result = call(candidate)
            except EmbedderUnavailableError as exc:
                log.info("embedder %r unavailable: %s", candidate, exc)
                reasons.append(str(exc))
                continue
            with self._lock:
                self.last_used = repr(candidate)
            return result
        raise EmbedderUnavailableError("No embedder could be reached: " + " | ".join(reasons or ["none configured"]))


def local_node_health(url: str | None, hive: str, timeout_s: float = 0.3) -> dict[str, object] | None:
    """The `/health` of the node at `url` when it answers and belongs to `hive`."""
    if url is None:
        return None
    try:
        health = httpx.get(f"{url}/health", timeout=timeout_s).json()
    except (httpx.HTTPError, ValueError):
        return None
    return health if isinstance(health, dict) and health.get("hive") == hive else None
