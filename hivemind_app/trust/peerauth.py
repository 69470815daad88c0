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

A refusal names its reason as a code (`RequestRefused.reason`). The request's MAC is checked before its time,
so a refusal of a request that is authentic (signed with the key, but outside the window: the two clocks
differ; or a nonce seen before) is one the receiver signs: the caller can then trust it and say "the clocks
differ by N s" instead of "the answer is not signed". A refusal of a request that is not authentic is never
signed (a signing oracle for strangers).

The handshake is open to anyone, so it is bounded: `HandshakeLimiter` admits a few handshakes per remote
address (an IPv6 caller by its /64) and refuses the rest with 429 before anything is read or computed, and
`Challenges` keeps at most `limit` pending nonces, at most `per_address` of them from one address, each for
`ttl_s`: a flood from the LAN can neither grow memory nor evict a real peer's pending handshake.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

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


def sign_request(
    key: HiveKey, node_id: str, target: str, method: str, path: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The headers that authenticate one request from `node_id` to the node `target` (the id it proved in
    the handshake), so a request sniffed on the LAN cannot be replayed to another node of the hive (`path`
    without the query; the API takes none). `now`: this node's clock (the time signed), `time.time()`."""
    sent_at, nonce = f"{time.time() if now is None else now:.3f}", new_nonce()
    mac = key.mac("request", *_request_parts(method, path, body, sent_at, nonce, node_id, target))
    return {NODE: node_id, TO: target, TIME: sent_at, NONCE: nonce, AUTH: mac}


def sign_reply(key: HiveKey, request_nonce: str, status: int, body: bytes) -> str:
    return key.mac("reply", request_nonce, str(status), hashlib.sha256(body).hexdigest())


def reply_is_signed(key: HiveKey, request_nonce: str, status: int, body: bytes, headers: Mapping[str, str]) -> bool:
    return key.verify("reply", headers.get(REPLY), request_nonce, str(status), hashlib.sha256(body).hexdigest())


class RequestRefused(Exception):
    """Why a signed request is not taken (no secret in the message).

    `reason` is a code a caller can act on: `unsigned`, `malformed`, `own-id`, `other-target`,
    `bad-signature`, `clock-skew`, `replay`, `busy`. `authentic`: the request's MAC verified, so the
    refusal may be signed (it tells the caller nothing it could not know). `skew_s`: for `clock-skew`, the
    receiver's clock minus the time the request was signed."""

    def __init__(self, message: str, reason: str, authentic: bool = False, skew_s: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.authentic = authentic
        self.skew_s = skew_s

    def to_dict(self) -> dict[str, object]:
        """The JSON body of the refusal: the message, the reason code and, for `clock-skew`, the skew."""
        body: dict[str, object] = {"error": str(self), "reason": self.reason}
        if self.skew_s is not None:
            body["skew_s"] = round(self.skew_s, 1)
        return body


CLOCK_SKEW = "clock-skew"


OWN_ID = (
    "The caller claims this node's own id: a request or handshake of this node's bounced back to it (a "
    "reflection), or a node listing itself as a peer. Refused."
)


class RequestVerifier:
    """Checks `X-Hive-*` headers: the MAC, the time window, that the nonce is new and that the sender is not
    this node itself (`node_id`: a request of ours reflected back to us is refused). Thread-safe."""

    def __init__(
        self,
        key: HiveKey,
        node_id: str,
        window_s: float = WINDOW_S,
        max_nonces: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.node_id = node_id
        self.window_s = window_s
        self.max_nonces = max_nonces
        self.clock = clock
        """This node's clock (wall time: it is compared with the caller's)."""
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, method: str, path: str, body: bytes, headers: Mapping[str, str], now: float | None = None) -> str:
        """The caller's node id, when the request is signed with the hive key, fresh and not seen before."""
        node_id, sent_at, nonce, mac = (headers.get(h) for h in (NODE, TIME, NONCE, AUTH))
        if not (node_id and sent_at and nonce and mac):
            raise RequestRefused(
                "Not signed with the hive key: LAN callers must be nodes of this hive (`hivemind-app hive join`).",
                "unsigned",
            )
        if not valid_nonce(nonce) or not valid_node_id(node_id):
            raise RequestRefused("The request's X-Hive headers are malformed.", "malformed")
        if node_id == self.node_id:
            raise RequestRefused(OWN_ID, "own-id")
        target = headers.get(TO)
        if target is not None and target != self.node_id:
            raise RequestRefused(
                f"This request was signed for another node ({target[:40]!r}), not this one: a replay from the LAN.",
                "other-target",
            )
        try:
            sent = float(sent_at)
        except ValueError as exc:
            raise RequestRefused("The request's X-Hive-Time is not a number.", "malformed") from exc
        if not math.isfinite(sent):
            raise RequestRefused("The request's X-Hive-Time is not a finite number.", "malformed")
        # the MAC first: a refusal for the time or a replay is then known to answer a holder of the key
        signed = _request_parts(method, path, body, sent_at, nonce, node_id, self.node_id)
        if not self.key.verify("request", mac, *signed):
            raise RequestRefused("Wrong signature: the caller does not hold this hive's key.", "bad-signature")
        now = self.clock() if now is None else now
        if not abs(now - sent) <= self.window_s:
            raise RequestRefused(
                f"The request was signed {sent - now:+.0f} s from this node's clock (more than {self.window_s:.0f} "
                "s): the two machines' clocks differ (or it is a replay); fix their time sync (NTP).",
                CLOCK_SKEW,
                authentic=True,
                skew_s=now - sent,
            )
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - self.window_s):
                self._seen.popitem(last=False)
            if nonce in self._seen:
                raise RequestRefused("This request was already served once (a replay).", "replay", authentic=True)
            if len(self._seen) >= self.max_nonces:
                raise RequestRefused(
                    "Too many signed requests in the last minute; try again shortly.", "busy", authentic=True
                )
            self._seen[nonce] = now
        return node_id


def _address_key(host: str) -> str:
    """Whose handshakes count together: an IPv4 address (also seen as `::ffff:a.b.c.d`), an IPv6 caller's /64
    (one host can take any address in it), anything else as it is."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class HandshakeLimiter:
    """A token bucket per remote address for the handshake: `burst` at once, then `per_s` a second. It
    remembers at most `max_addresses` (the least recently seen are forgotten first: a bucket forgotten is a
    full one, which only helps a caller that has been quiet). Thread-safe."""

    def __init__(
        self,
        burst: int = 20,
        per_s: float = 2.0,
        max_addresses: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.per_s = per_s
        self.max_addresses = max_addresses
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.refused = 0
        """How many handshake requests were refused (shown nowhere yet; tests and benches read it)."""

    def admit(self, host: str) -> float:
        """0 when a handshake request from `host` may go on (it is counted); otherwise the seconds until it
        may try again."""
        key = _address_key(host)
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.per_s)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.per_s
                self.refused += 1
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        return wait


class HandshakeBusy(Exception):
    """Too many handshakes are pending from one caller's address: refused until some expire."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Challenges:
    """The answerer's side of the handshake: nonces it handed out, each good once, for `ttl_s`. At most
    `limit` are pending, at most `per_address` from one remote address: one flooding address only ever
    displaces its own (the oldest of them), never another caller's pending handshake."""

    def __init__(
        self, key: HiveKey, node_id: str, ttl_s: float = 30.0, limit: int = 1024, per_address: int = 16
    ) -> None:
        self.key = key
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.limit = limit
        self.per_address = per_address
        self._pending: OrderedDict[str, tuple[str, str, float, str]] = OrderedDict()
        """nonce -> (caller id, caller's nonce, expiry, address key), oldest first."""
        self._by_address: dict[str, OrderedDict[str, None]] = {}
        self.proven: dict[str, float] = {}
        """Callers that proved they hold the key, and when."""
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """How many handshakes wait for their confirmation now."""
        with self._lock:
            return len(self._pending)

    def _drop(self, nonce: str) -> tuple[str, str, float, str] | None:
        entry = self._pending.pop(nonce, None)
        if entry is not None:
            mine = self._by_address.get(entry[3])
            if mine is not None:
                mine.pop(nonce, None)
                if not mine:
                    del self._by_address[entry[3]]
        return entry

    def answer(self, caller: str, caller_nonce: str, host: str = "") -> dict[str, str]:
        """Our id, a fresh nonce and our proof; `RequestRefused` when `caller` is our own id (a proof for
        ourselves would let a relay bounce our own handshake back to us and pass it); `HandshakeBusy` when
        the pool is full of other callers' live handshakes."""
        if caller == self.node_id:
            raise RequestRefused(OWN_ID, "own-id")
        address = _address_key(host)
        nonce = new_nonce()
        now = time.time()
        with self._lock:
            while self._pending:  # expired ones first (all expire `ttl_s` after they were made: oldest first)
                oldest = next(iter(self._pending))
                if self._pending[oldest][2] >= now:
                    break
                self._drop(oldest)
            mine = self._by_address.get(address)
            if mine is not None and len(mine) >= self.per_address:
                self._drop(next(iter(mine)))  # this address's own oldest
            elif len(self._pending) >= self.limit:
                retry = max(1.0, self._pending[next(iter(self._pending))][2] - now)
                raise HandshakeBusy(
                    f"{len(self._pending)} handshakes are pending from other addresses (the limit); try again in "
                    f"{retry:.0f} s.",
                    retry,
                )
            self._pending[nonce] = (caller, caller_nonce, now + self.ttl_s, address)
            self._by_address.setdefault(address, OrderedDict())[nonce] = None
        return {
            "node_id": self.node_id,
            "nonce": nonce,
            "proof": proof(self.key, "answerer", caller, caller_nonce, self.node_id, nonce),
        }

    def confirm(self, caller: str, nonce: str, given: object) -> bool:
        with self._lock:
            pending = self._drop(nonce)
        if pending is None or pending[0] != caller or caller == self.node_id or pending[2] < time.time():
            return False
        if not self.key.verify("peer-proof", given, "caller", caller, pending[1], self.node_id, nonce):
            return False
        with self._lock:
            self.proven[caller] = time.time()
        return True
