"""What a node runtime reports about itself: its peers, its workers, a training round under way, a refused
adapter, and the `/health` answer built from them. Typed up to the edge: `nodes/api.py` turns `NodeHealth`
into JSON (`to_dict`), the TUI reads the attributes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Peer:
    """Another node of the same hive, as discovery (mDNS TXT records) or the static config names it."""

    node_id: str
    name: str
    hive: str
    address: str
    port: int
    roles: tuple[str, ...]
    version: str
    seen_at: float = field(default_factory=time.time)
    source: str = "mdns"  # or "static"

    @property
    def base_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "name": self.name,
            "hive": self.hive,
            "address": self.address,
            "port": self.port,
            "roles": list(self.roles),
            "version": self.version,
            "seen_at": self.seen_at,
            "source": self.source,
        }


@dataclass(frozen=True)
class PeerStatus:
    """A peer with what its heartbeats (`GET /health`) told us, at one moment."""

    peer: Peer
    health: str
    """alive | late | dead | unknown (never polled) | unverified (has not proved it holds the hive key)"""
    last_seen: float | None
    latency_ms: float | None
    load: int
    embed_model: str | None
    llm_model: str | None
    adapter: str | None
    why: str | None = None
    """Why the peer is unverified (the handshake's failure), None otherwise."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.peer.to_dict(),
            "health": self.health,
            "last_seen": self.last_seen,
            "latency_ms": self.latency_ms,
            "load": self.load,
            "embed_model": self.embed_model,
            "llm_model": self.llm_model,
            "adapter": self.adapter,
            "why": self.why,
        }


@dataclass(frozen=True)
class WorkerStatus:
    """One supervised background worker, at one moment."""

    name: str
    state: str
    """starting | running | backing-off | stopped"""
    runs: int
    crashes: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "runs": self.runs,
            "crashes": self.crashes,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class AdapterRefusal:
    """The adapter an infer node would not load (corrupt, or trained for another model), and why."""

    version: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "reason": self.reason}


class RoundStep(Protocol):
    """One step of a training round (the trainer's `RoundProgress` is one): what a progress bar shows."""

    @property
    def stage(self) -> str: ...

    @property
    def done(self) -> int: ...

    @property
    def total(self) -> int: ...

    @property
    def detail(self) -> str: ...

    @property
    def loss(self) -> float | None: ...


def round_step_dict(step: RoundStep) -> dict[str, Any]:
    return {"stage": step.stage, "done": step.done, "total": step.total, "detail": step.detail, "loss": step.loss}


@dataclass(frozen=True)
class NodeStatus:
    """A running node runtime: who it is, where it listens, its workers and peers, the round it trains."""

    node_id: str
    name: str
    hive: str
    roles: tuple[str, ...]
    port: int
    workers: tuple[WorkerStatus, ...]
    peers: tuple[PeerStatus, ...]
    training: RoundStep | None = None
    adapter_refused: AdapterRefusal | None = None


@dataclass(frozen=True)
class NodeHealth:
    """The answer to `GET /health`: what the API serves, plus the runtime's workers and peers when one runs it."""

    node_id: str
    name: str
    hive: str
    roles: tuple[str, ...]
    version: str
    uptime_s: float
    embed_model: str | None
    embed_queue: int
    embedded_texts: int
    llm_model: str | None
    adapter: str | None
    runtime: NodeStatus | None = None
    status: str = "ok"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "node_id": self.node_id,
            "name": self.name,
            "hive": self.hive,
            "roles": list(self.roles),
            "version": self.version,
            "uptime_s": self.uptime_s,
            "embed_model": self.embed_model,
            "embed_queue": self.embed_queue,
            "embedded_texts": self.embedded_texts,
            "llm_model": self.llm_model,
            "adapter": self.adapter,
        }
        runtime = self.runtime
        if runtime is not None:
            data["workers"] = [w.to_dict() for w in runtime.workers]
            data["peers"] = [p.to_dict() for p in runtime.peers]
            data["adapter_refused"] = runtime.adapter_refused.to_dict() if runtime.adapter_refused else None
            data["training"] = round_step_dict(runtime.training) if runtime.training is not None else None
        return data
