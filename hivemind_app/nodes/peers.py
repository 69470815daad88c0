"""The peer table: who is out there (discovery and static config), and how healthy each one is."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from hivemind_app.records.nodes import Peer, PeerStatus


@dataclass
class PeerHealth:
    peer: Peer
    last_ok: float | None = None
    last_try: float | None = None
    latency_ms: float | None = None
    load: int = 0
    embed_model: str | None = None
    llm_model: str | None = None
    adapter: str | None = None

    def health(self, beat_s: float, now: float | None = None) -> str:
        """alive: answered within the last 1.5 beats; late: within three; dead: missed three or more."""
        if self.last_ok is None:
            return "unknown" if self.last_try is None else "dead"
        age = (now or time.time()) - self.last_ok
        if age <= beat_s * 1.5:
            return "alive"
        return "late" if age <= beat_s * 3 else "dead"

    def snapshot(self, beat_s: float) -> PeerStatus:
        return PeerStatus(
            peer=self.peer,
            health=self.health(beat_s),
            last_seen=self.last_ok,
            latency_ms=self.latency_ms,
            load=self.load,
            embed_model=self.embed_model,
            llm_model=self.llm_model,
            adapter=self.adapter,
        )


class PeerTable:
    def __init__(self, beat_s: float, token: str | None = None) -> None:
        self.beat_s = beat_s
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._peers: dict[str, PeerHealth] = {}
        self._lock = threading.Lock()

    def upsert(self, peer: Peer) -> None:
        with self._lock:
            known = self._peers.get(peer.node_id)
            if known is None:
                self._peers[peer.node_id] = PeerHealth(peer)
            else:
                known.peer = peer

    def remove(self, node_id: str) -> None:
        """mDNS said goodbye. The entry stays (shown dead) until its heartbeats are three beats old."""
        with self._lock:
            known = self._peers.get(node_id)
            if known is not None:
                known.last_ok = min(known.last_ok or 0.0, time.time() - self.beat_s * 3.01)

    def all(self) -> list[PeerHealth]:
        with self._lock:
            return sorted(self._peers.values(), key=lambda h: h.peer.name)

    def statuses(self) -> tuple[PeerStatus, ...]:
        """Every peer and its health now, by name."""
        return tuple(entry.snapshot(self.beat_s) for entry in self.all())

    def with_role(self, role: str, model: str | None = None) -> list[PeerHealth]:
        """Alive peers with `role`, least loaded and nearest first."""
        alive = [
            h
            for h in self.all()
            if role in h.peer.roles and h.health(self.beat_s) == "alive" and (model is None or h.embed_model == model)
        ]
        return sorted(alive, key=lambda h: (h.load, h.latency_ms or 0.0))

    def poll(self) -> None:
        """One heartbeat round: GET /health on every peer."""
        for entry in self.all():
            started = time.perf_counter()
            entry.last_try = time.time()
            try:
                answer = httpx.get(f"{entry.peer.base_url}/health", headers=self._headers, timeout=self.beat_s)
                body = answer.json() if answer.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                body = None
            if not isinstance(body, dict) or body.get("node_id") != entry.peer.node_id:
                continue
            entry.last_ok = time.time()
            entry.latency_ms = (time.perf_counter() - started) * 1000
            entry.load = int(body.get("embed_queue", 0))
            entry.embed_model = _text(body.get("embed_model"))
            entry.llm_model = _text(body.get("llm_model"))
            entry.adapter = _text(body.get("adapter"))


def _text(value: object) -> str | None:
    """A string field of a peer's `/health` answer (None when absent or not a string)."""
    return value if isinstance(value, str) else None
