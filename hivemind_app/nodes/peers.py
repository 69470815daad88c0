"""The peer table: who is out there (discovery and static config), whether each proved it holds the hive
key, and how healthy each one is.

A peer is used for nothing until it has passed the handshake (`prove_peer`, trust/peerauth.py): before it,
the only request it gets is `/hello` with this node's id and a nonce; no text, vector or credential. A peer
that fails is listed as `unverified` with why, and asked again every few beats (a node restarting, or one
that joins the hive later, gets in by itself). After it, every heartbeat is a signed request with a signed
reply; a reply without the hive's signature makes the peer unverified again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from hivemind_app.display import one_line
from hivemind_app.ml.remote import ClockSkew, HiveCredentials, UnsignedReply, call_peer
from hivemind_app.records.nodes import Peer, PeerStatus
from hivemind_app.trust.peerauth import WINDOW_S, new_nonce, proof, valid_nonce

NO_KEY = "this node has no hive key (`hivemind-app hive join`, which asks for the join code)"
RETRY_BEATS = 5  # an unverified peer is asked again after this many beats


class NotProven(Exception):
    """Why a peer is not (or no longer) taken to be of this hive."""


def prove_peer(creds: HiveCredentials, peer: Peer, timeout_s: float, pinned: str | None = None) -> str:
    """The mutual handshake with `peer`: its node id once it proved it holds the hive key and took our proof.
    Raises `NotProven` with the reason otherwise. Sends only our node id, nonces and our proof. A discovered
    peer must answer as the id it advertised; a static one as the id it proved before (`pinned`), if any;
    neither as our own id (our own /hello bounced back to us, or this node listed as its own peer)."""
    mine = new_nonce()
    url = peer.base_url
    try:
        answer = httpx.post(f"{url}/hello", json={"node_id": creds.node_id, "nonce": mine}, timeout=timeout_s)
        body = answer.json()
    except httpx.HTTPError as exc:
        raise NotProven(f"no answer to the handshake ({type(exc).__name__})") from exc
    except ValueError as exc:
        raise NotProven(f"answered the handshake with no JSON (HTTP {answer.status_code})") from exc
    if answer.status_code == 403:
        raise NotProven("it has no hive key (it refused the handshake)")
    if answer.status_code == 429:
        wait = answer.headers.get("retry-after", "?")
        raise NotProven(f"is refusing handshakes from this address for now (too many; HTTP 429, retry after {wait} s)")
    if answer.status_code == 409:  # our own id came back to us: the listener is this node
        raise NotProven("answered the handshake as this node itself (a reflection, or this node's own address)")
    if answer.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        said = f": {one_line(str(error))[:120]}" if error else ""  # the peer's words: shown as visible escapes
        raise NotProven(f"refused the handshake (HTTP {answer.status_code}{said})")
    theirs, their_id = body.get("nonce"), body.get("node_id")
    if not valid_nonce(theirs) or not isinstance(their_id, str):
        raise NotProven("answered the handshake without a nonce and node id")
    assert isinstance(theirs, str)
    if their_id == creds.node_id:
        raise NotProven("answered the handshake as this node itself (a reflection, or this node's own address)")
    expected = pinned if peer.source == "static" else peer.node_id
    if expected is not None and their_id != expected:
        raise NotProven(f"answered the handshake as another node ({one_line(their_id[:40])!r})")
    if not creds.key.verify("peer-proof", body.get("proof"), "answerer", creds.node_id, mine, their_id, theirs):
        raise NotProven("could not prove it holds this hive's key (wrong proof)")
    mine_proof = proof(creds.key, "caller", creds.node_id, mine, their_id, theirs)
    try:
        confirmed = httpx.post(
            f"{url}/hello/confirm",
            json={"node_id": creds.node_id, "nonce": theirs, "proof": mine_proof},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise NotProven(f"no answer to the handshake's confirmation ({type(exc).__name__})") from exc
    if confirmed.status_code != 200:
        raise NotProven(f"did not take this node's proof (HTTP {confirmed.status_code})")
    return their_id


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
    verified: bool = False
    why: str | None = None
    """Why the peer is not verified (None once it is, or before it was asked)."""
    retry_at: float = 0.0
    """When to ask an unverified peer again (every `RETRY_BEATS` beats, not every beat)."""
    proven_id: str | None = None
    """The node id the peer proved in its handshake (a static peer's is pinned: it must prove the same again,
    and answer its heartbeats as it)."""

    def health(self, beat_s: float, now: float | None = None) -> str:
        """alive: answered within the last 1.5 beats; late: within three; dead: missed three or more."""
        if not self.verified:
            return "unverified"
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
            why=None if self.verified else self.why,
        )


class PeerTable:
    def __init__(self, beat_s: float, creds: HiveCredentials | None = None) -> None:
        self.beat_s = beat_s
        self.creds = creds
        self._peers: dict[str, PeerHealth] = {}
        self._lock = threading.Lock()

    def upsert(self, peer: Peer) -> None:
        with self._lock:
            known = self._peers.get(peer.node_id)
            if known is None:
                self._peers[peer.node_id] = PeerHealth(peer)
            else:
                if (known.peer.address, known.peer.port) != (peer.address, peer.port):
                    known.verified, known.retry_at = False, 0.0  # another listener now: it proves itself again
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
        """Alive (so verified) peers with `role`, least loaded and nearest first."""
        alive = [
            h
            for h in self.all()
            if role in h.peer.roles and h.health(self.beat_s) == "alive" and (model is None or h.embed_model == model)
        ]
        return sorted(alive, key=lambda h: (h.load, h.latency_ms or 0.0))

    def poll(self) -> None:
        """One heartbeat round: a signed GET /health to every verified peer first (a slow or silent stranger
        never delays them), then the handshake with each unverified one that is due."""
        entries = self.all()
        now = time.time()
        for entry in entries:
            entry.last_try = now
            if self.creds is None:
                entry.verified, entry.why = False, NO_KEY
            elif entry.verified:
                self._beat(self.creds, entry)
        for entry in entries:
            if self.creds is None or entry.verified or entry.retry_at > time.time():
                continue
            try:
                proven = prove_peer(self.creds, entry.peer, self.beat_s, pinned=entry.proven_id)
            except NotProven as exc:
                entry.why = str(exc)
                entry.retry_at = time.time() + self.beat_s * RETRY_BEATS
                continue
            entry.verified, entry.why, entry.retry_at, entry.proven_id = True, None, 0.0, proven
            self._beat(self.creds, entry)

    def _beat(self, creds: HiveCredentials, entry: PeerHealth) -> None:
        started = time.perf_counter()
        try:
            status, body = call_peer(creds, entry.peer.base_url, "GET", "/health", None, self.beat_s, entry.proven_id)
        except UnsignedReply:
            entry.verified, entry.why = False, "answered /health without this hive's signature"
            return
        except ClockSkew as exc:  # it holds the key (its refusal is signed), but no request of ours gets through
            entry.verified, entry.why = False, (
                f"its clock and this node's differ by {abs(exc.skew_s):.0f} s (a signed request may be off by "
                f"{WINDOW_S:.0f} s): fix the time sync (NTP) on the one that is wrong"
            )
            entry.retry_at = time.time() + self.beat_s * RETRY_BEATS
            return
        except (httpx.HTTPError, ValueError):
            return
        if status != 200 or not isinstance(body, dict):
            return
        if body.get("node_id") != entry.proven_id:  # a static peer's too: another listener proves itself again
            entry.verified, entry.why = False, "answered /health as another node than the one it proved to be"
            return
        entry.last_ok = time.time()
        entry.latency_ms = (time.perf_counter() - started) * 1000
        load = body.get("embed_queue", 0)
        entry.load = load if isinstance(load, int) else 0
        entry.embed_model = _text(body.get("embed_model"))
        entry.llm_model = _text(body.get("llm_model"))
        entry.adapter = _text(body.get("adapter"))


def _text(value: object) -> str | None:
    """A string field of a peer's `/health` answer (None when absent or not a string)."""
    return value if isinstance(value, str) else None
