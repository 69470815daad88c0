"""Embedding through other nodes: a peer's `/embed` over HTTP, and failover across a list of embedders.

The order a client tries is: the nearest, least-loaded peer with the embed role, the next one on failure,
the in-process model, and finally nothing (the caller then searches by keyword). A peer whose model differs
from the one the store needs is never used: its vectors would live in another space.

Every call to a peer goes through `call_peer`: signed with the hive key (`trust/peerauth.py`), and its reply
taken only when the reply is signed too. The caller chooses only peers that passed the handshake
(`nodes/peers.py`); no token is ever sent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
import numpy as np

from hivemind_app.errors import EmbedderUnavailableError
from hivemind_app.ml.embedder import Embedder, Vectors
from hivemind_app.trust.hivekey import HiveKey
from hivemind_app.trust.peerauth import CLOCK_SKEW, NONCE, WINDOW_S, reply_is_signed, sign_request

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class HiveCredentials:
    """What this node signs its calls to peers with: the hive key and its own node id."""

    key: HiveKey
    node_id: str


class UnsignedReply(Exception):
    """A peer's answer that does not carry this hive's signature: not taken."""


class ClockSkew(Exception):
    """A peer refused a request of ours, in a reply signed with the hive key, because its clock and ours
    differ by more than a signed request may (`skew_s`: its clock minus ours, as it measured it)."""

    def __init__(self, base_url: str, skew_s: float) -> None:
        way = "ahead of" if skew_s > 0 else "behind"
        super().__init__(
            f"{base_url} refused this node's signed request because the clocks differ by {abs(skew_s):.0f} s (its "
            f"clock is {way} this one's; a signed request may be off by {WINDOW_S:.0f} s): fix the time sync (NTP) "
            "on the machine that is wrong (`timedatectl` shows whether it is on)"
        )
        self.skew_s = skew_s


def call_peer(
    creds: HiveCredentials | None,
    base_url: str,
    method: str,
    path: str,
    payload: object | None,
    timeout_s: float,
    target: str | None = None,
) -> tuple[int, object]:
    """One signed call: (status, JSON body). Raises `httpx.HTTPError` when the peer cannot be reached,
    `UnsignedReply` when its answer is not signed with the hive key, `ClockSkew` when the peer refused it (in
    a signed reply) because the two clocks differ, `ValueError` when it is not JSON.
    `creds` None is for this machine's own node on loopback only: nothing signed either way. `target`: the
    node id the peer proved in its handshake, named in the signature (required with `creds`)."""
    body = json.dumps(payload).encode("utf-8") if payload is not None else b""
    if creds and target is None:
        raise ValueError("a signed call names the node it is for (the id it proved in the handshake)")
    headers = sign_request(creds.key, creds.node_id, target or "", method, path, body) if creds else {}
    if payload is not None:
        headers["content-type"] = "application/json"
    answer = httpx.request(method, f"{base_url.rstrip('/')}{path}", content=body, headers=headers, timeout=timeout_s)
    if creds and not reply_is_signed(creds.key, headers[NONCE], answer.status_code, answer.content, answer.headers):
        raise UnsignedReply(f"{base_url} answered {path} without this hive's signature")
    data = answer.json()
    if creds and answer.status_code == 401 and isinstance(data, dict) and data.get("reason") == CLOCK_SKEW:
        skew = data.get("skew_s")
        if isinstance(skew, int | float) and not isinstance(skew, bool):
            raise ClockSkew(base_url, float(skew))
    return answer.status_code, data


class RemoteEmbedder:
    """One node's `/embed`. Raises EmbedderUnavailableError on any failure, so failover can move on."""

    def __init__(
        self,
        base_url: str,
        model_name: str,
        creds: HiveCredentials | None = None,
        timeout_s: float = 10.0,
        peer_id: str | None = None,
    ) -> None:
        """`creds` None: this machine's own node on loopback (no signature); a peer always gets `creds`, and
        `peer_id`, the node id it proved (each request is signed for it alone)."""
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.timeout_s = timeout_s
        self.creds = creds
        self.peer_id = peer_id
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
                status, body = call_peer(
                    self.creds, self.base_url, "POST", "/embed", {"texts": batch}, self.timeout_s, self.peer_id
                )
            except httpx.HTTPError as exc:
                raise EmbedderUnavailableError(f"Node {self.base_url} did not answer /embed: {exc}") from exc
            except UnsignedReply as exc:
                raise EmbedderUnavailableError(f"{exc}; its vectors are not used.") from exc
            except ClockSkew as exc:
                raise EmbedderUnavailableError(str(exc)) from exc
            except ValueError as exc:
                raise EmbedderUnavailableError(f"Node {self.base_url} answered /embed with no JSON.") from exc
            if status != 200:
                raise EmbedderUnavailableError(f"Node {self.base_url} refused /embed ({status}).")
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
