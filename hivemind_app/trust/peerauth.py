"""Peers prove they hold the hive key, without sending it: a handshake, then a MAC on every request and reply.

The handshake (`/hello`, then `/hello/confirm`) is mutual: the caller sends its node id and a fresh nonce;
the peer answers with its own id and nonce and a proof, HMAC-SHA256 under the hive key over both nonces and
both node ids; the caller checks it and sends its own proof over the same four values. The two proofs carry
different roles, so one side's proof is never the other's, and fresh nonces on both sides mean no recorded
proof passes again. Nothing in it reveals the key: a peer without it learns a node id and a nonce. Neither
side takes a handshake naming its own id as the other's, and a receiver refuses a request signed under its
own id: a relay that bounces a node's own traffic back to it gets nowhere.

After it, each request carries `X-Hive-*` headers: the sender's node id, the receiver's (the id it proved),
the time, a nonce, and a MAC over method, path, the body's SHA-256, time, nonce and both node ids (so a
request sniffed on the LAN is good at its receiver only, once). A receiver takes it within `WINDOW_S` of its own
clock and only once (the nonce is remembered for the window). The reply carries a MAC over the request's
nonce, the status and the reply body's SHA-256, so a vector or a completion is taken only from a holder of
the key, never from whoever answers on that port.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

from hivemind_app.trust.hivekey import HiveKey

WINDOW_S = 60.0
"""How far a request's time may be from the receiver's clock, and how long its nonce is remembered."""

NODE = "x-hive-node"
TIME = "x-hive-time"
NONCE = "x-hive-nonce"
AUTH = "x-hive-auth"
REPLY = "x-hive-reply"
TO = "x-hive-to"

_NONCE = re.compile(r"[0-9a-f]{32}")
MAX_ID_CHARS = 128


def new_nonce() -> str:
    return secrets.token_hex(16)


def valid_nonce(value: object) -> bool:
    return isinstance(value, str) and _NONCE.fullmatch(value) is not None


def valid_node_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and value.isprintable()


def proof(key: HiveKey, role: str, caller: str, caller_nonce: str, answerer: str, answerer_nonce: str) -> str:
    """One side's proof in the handshake; `role` is `answerer` or `caller`."""
    return key.mac("peer-proof", role, caller, caller_nonce, answerer, answerer_nonce)


def _request_parts(
    method: str, path: str, body: bytes, sent_at: str, nonce: str, node_id: str, target: str
) -> tuple[str, ...]:
    return (method.upper(), path, hashlib.sha256(body).hexdigest(), sent_at, nonce, node_id, target)


def sign_request(key: HiveKey, node_id: str, target: str, method: str, path: str, body: bytes) -> dict[str, str]:
    """The headers that authenticate one request from `node_id` to the node `target` (the id it proved in
    the handshake), so a request sniffed on the LAN cannot be replayed to another node of the hive (`path`
    without the query; the API takes none)."""
    sent_at, nonce = f"{time.time():.3f}", new_nonce()
    mac = key.mac("request", *_request_parts(method, path, body, sent_at, nonce, node_id, target))
    return {NODE: node_id, TO: target, TIME: sent_at, NONCE: nonce, AUTH: mac}


def sign_reply(key: HiveKey, request_nonce: str, status: int, body: bytes) -> str:
    return key.mac("reply", request_nonce, str(status), hashlib.sha256(body).hexdigest())


def reply_is_signed(key: HiveKey, request_nonce: str, status: int, body: bytes, headers: Mapping[str, str]) -> bool:
    return key.verify("reply", headers.get(REPLY), request_nonce, str(status), hashlib.sha256(body).hexdigest())


class RequestRefused(Exception):
    """Why a signed request is not taken (no secret in the message)."""


OWN_ID = (
    "The caller claims this node's own id: a request or handshake of this node's bounced back to it (a "
    "reflection), or a node listing itself as a peer. Refused."
)


class RequestVerifier:
    """Checks `X-Hive-*` headers: the MAC, the time window, that the nonce is new and that the sender is not
    this node itself (`node_id`: a request of ours reflected back to us is refused). Thread-safe."""

    def __init__(self, key: HiveKey, node_id: str, window_s: float = WINDOW_S, max_nonces: int = 100_000) -> None:
        self.key = key
        self.node_id = node_id
        self.window_s = window_s
        self.max_nonces = max_nonces
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, method: str, path: str, body: bytes, headers: Mapping[str, str], now: float | None = None) -> str:
        """The caller's node id, when the request is signed with the hive key, fresh and not seen before."""
        node_id, sent_at, nonce, mac = (headers.get(h) for h in (NODE, TIME, NONCE, AUTH))
        if not (node_id and sent_at and nonce and mac):
            raise RequestRefused(
                "Not signed with the hive key: LAN callers must be nodes of this hive (`hivemind-app hive join`)."
            )
        if not valid_nonce(nonce) or not valid_node_id(node_id):
            raise RequestRefused("The request's X-Hive headers are malformed.")
        if node_id == self.node_id:
            raise RequestRefused(OWN_ID)
        target = headers.get(TO)
        if target is not None and target != self.node_id:
            raise RequestRefused(
                f"This request was signed for another node ({target[:40]!r}), not this one: a replay from the LAN."
            )
        try:
            sent = float(sent_at)
        except ValueError as exc:
            raise RequestRefused("The request's X-Hive-Time is not a number.") from exc
        now = time.time() if now is None else now
        if not abs(now - sent) <= self.window_s:  # also refuses NaN
            raise RequestRefused(
                f"The request was signed {now - sent:+.0f} s from this node's clock (more than {self.window_s:.0f} "
                "s): a replay, or the clocks disagree."
            )
        signed = _request_parts(method, path, body, sent_at, nonce, node_id, self.node_id)
        if not self.key.verify("request", mac, *signed):
            raise RequestRefused("Wrong signature: the caller does not hold this hive's key.")
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - self.window_s):
                self._seen.popitem(last=False)
            if nonce in self._seen:
                raise RequestRefused("This request was already served once (a replay).")
            if len(self._seen) >= self.max_nonces:
                raise RequestRefused("Too many signed requests in the last minute; try again shortly.")
            self._seen[nonce] = now
        return node_id


class Challenges:
    """The answerer's side of the handshake: nonces it handed out, each good once, for `ttl_s`."""

    def __init__(self, key: HiveKey, node_id: str, ttl_s: float = 30.0, limit: int = 1024) -> None:
        self.key = key
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.limit = limit
        self._pending: OrderedDict[str, tuple[str, str, float]] = OrderedDict()
        self.proven: dict[str, float] = {}
        """Callers that proved they hold the key, and when."""
        self._lock = threading.Lock()

    def answer(self, caller: str, caller_nonce: str) -> dict[str, str]:
        """Our id, a fresh nonce and our proof; `RequestRefused` when `caller` is our own id (a proof for
        ourselves would let a relay bounce our own handshake back to us and pass it)."""
        if caller == self.node_id:
            raise RequestRefused(OWN_ID)
        nonce = new_nonce()
        now = time.time()
        with self._lock:
            self._pending[nonce] = (caller, caller_nonce, now + self.ttl_s)
            while len(self._pending) > self.limit:
                self._pending.popitem(last=False)
        return {
            "node_id": self.node_id,
            "nonce": nonce,
            "proof": proof(self.key, "answerer", caller, caller_nonce, self.node_id, nonce),
        }

    def confirm(self, caller: str, nonce: str, given: object) -> bool:
        with self._lock:
            pending = self._pending.pop(nonce, None)
        if pending is None or pending[0] != caller or caller == self.node_id or pending[2] < time.time():
            return False
        if not self.key.verify("peer-proof", given, "caller", caller, pending[1], self.node_id, nonce):
            return False
        with self._lock:
            self.proven[caller] = time.time()
        return True
