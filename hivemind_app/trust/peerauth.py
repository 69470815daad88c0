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
address (an IPv6 one by its full address, scope id dropped; a global one's /64 also gets a looser bucket) and
refuses the rest with 429 before anything is read or computed, and `Challenges` keeps at most `limit`
pending nonces, at most `per_address` of them from one address, each for `ttl_s`; a full pool displaces an
entry of the address holding the most, never refuses: a flood from the LAN, from few addresses or many, can
neither grow memory nor lock a real peer out, nor displace its pending handshake within its round trip.
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


_LINK_LOCAL = ipaddress.IPv6Network("fe80::/10")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")


def _address_key(host: str) -> str:
    """Whose handshakes count together: one address (an IPv4 one also seen as `::ffff:a.b.c.d`; an IPv6 one
    without its scope id, so `fe80::1%eth0` and `fe80::1%wlan0` are one caller), anything else as it is.

    Not an IPv6 caller's /64: on a LAN every host shares one (all link-local addresses are in `fe80::/64`, a
    home network's global and unique-local addresses in the router's /64), so counting by it let one host
    flooding from `fe80::dead` hold up and evict a real peer at `fe80::1`. A host can take many addresses of
    its /64; `HandshakeLimiter` adds a looser bucket per global /64 for that (`_network_key`), and
    `Challenges` never lets a flood of fresh addresses evict a caller that just asked."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Address(int(address)))  # the scope id dropped
    return str(address)


def _network_key(host: str) -> str | None:
    """A global IPv6 caller's /64 (one host can take any address in it), None for anything else: a link-local
    or unique-local /64 is the whole LAN, where one bucket would make every peer wait for one flooding host."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not isinstance(address, ipaddress.IPv6Address) or address.ipv4_mapped is not None:
        return None
    plain = ipaddress.IPv6Address(int(address))
    if plain in _LINK_LOCAL or plain in _UNIQUE_LOCAL:
        return None
    return str(ipaddress.IPv6Network((plain, 64), strict=False))


class HandshakeLimiter:
    """A token bucket per remote address for the handshake: `burst` at once, then `per_s` a second; a global
    IPv6 caller's /64 also has one, `network_factor` times looser (many hosts may share it; one host can
    rotate through it). It remembers at most `max_addresses` buckets (the least recently seen are forgotten
    first: a bucket forgotten is a full one, which only helps a caller that has been quiet). Thread-safe."""

    def __init__(
        self,
        burst: int = 20,
        per_s: float = 2.0,
        max_addresses: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        network_factor: int = 4,
    ) -> None:
        self.burst = burst
        self.per_s = per_s
        self.max_addresses = max_addresses
        self.clock = clock
        self.network_factor = network_factor
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.refused = 0
        """How many handshake requests were refused (shown nowhere yet; tests and benches read it)."""

    def admit(self, host: str) -> float:
        """0 when a handshake request from `host` may go on (it is counted in each of its buckets); otherwise
        the seconds until it may try again (nothing is taken)."""
        buckets = [(_address_key(host), float(self.burst), self.per_s)]
        network = _network_key(host)
        if network is not None:
            buckets.append((network, float(self.burst * self.network_factor), self.per_s * self.network_factor))
        now = self.clock()
        with self._lock:
            filled = []
            for key, burst, per_s in buckets:
                tokens, last = self._buckets.pop(key, (burst, now))
                filled.append((key, min(burst, tokens + (now - last) * per_s), per_s))
            wait = max(((1.0 - tokens) / per_s for _, tokens, per_s in filled if tokens < 1.0), default=0.0)
            for key, tokens, _ in filled:
                self._buckets[key] = (tokens - 1.0 if not wait else tokens, now)
            if wait:
                self.refused += 1
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        return wait


class Challenges:
    """The answerer's side of the handshake: nonces it handed out, each good once, for `ttl_s` (a real caller
    confirms within one round trip). At most `per_address` are pending from one remote address (a new one
    displaces that address's oldest) and at most `limit` in all. When the pool is full, a new handshake is
    never refused: it displaces the oldest entry of the address holding the most entries (of those, the one
    that has held that many longest). A caller that just asked holds one entry, so a flood from many
    addresses displaces it only by sending `limit` handshakes within that caller's round trip; a flood
    from few addresses displaces only its own. Expiry runs on `clock` (monotonic: a wall clock set back
    must not keep nonces alive)."""

    def __init__(
        self,
        key: HiveKey,
        node_id: str,
        ttl_s: float = 10.0,
        limit: int = 16_384,
        per_address: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.limit = max(1, limit)
        self.per_address = max(1, per_address)
        self.clock = clock
        self._pending: OrderedDict[str, tuple[str, str, float, str]] = OrderedDict()
        """nonce -> (caller id, caller's nonce, expiry, address key), oldest first."""
        self._by_address: dict[str, OrderedDict[str, None]] = {}
        self._holding: dict[int, OrderedDict[str, None]] = {}
        """n -> the addresses holding n pending entries, in the order they came to hold n."""
        self.displaced = 0
        """How many pending handshakes a full pool displaced (tests and benches read it)."""
        self.proven: dict[str, float] = {}
        """Callers that proved they hold the key, and when (wall time)."""
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """How many handshakes wait for their confirmation now."""
        with self._lock:
            return len(self._pending)

    def _recount(self, address: str, before: int, after: int) -> None:
        if before:
            level = self._holding[before]
            level.pop(address, None)
            if not level:
                del self._holding[before]
        if after:
            self._holding.setdefault(after, OrderedDict())[address] = None

    def _add(self, nonce: str, entry: tuple[str, str, float, str]) -> None:
        address = entry[3]
        self._pending[nonce] = entry
        mine = self._by_address.setdefault(address, OrderedDict())
        mine[nonce] = None
        self._recount(address, len(mine) - 1, len(mine))

    def _drop(self, nonce: str) -> tuple[str, str, float, str] | None:
        entry = self._pending.pop(nonce, None)
        if entry is not None:
            mine = self._by_address.get(entry[3])
            if mine is not None and nonce in mine:
                del mine[nonce]
                self._recount(entry[3], len(mine) + 1, len(mine))
                if not mine:
                    del self._by_address[entry[3]]
        return entry

    def _displace_one(self) -> None:
        """The oldest entry of the address holding the most (of those, the one holding that many longest)."""
        address = next(iter(self._holding[max(self._holding)]))
        self._drop(next(iter(self._by_address[address])))
        self.displaced += 1

    def answer(self, caller: str, caller_nonce: str, host: str = "") -> dict[str, str]:
        """Our id, a fresh nonce and our proof; `RequestRefused` when `caller` is our own id (a proof for
        ourselves would let a relay bounce our own handshake back to us and pass it)."""
        if caller == self.node_id:
            raise RequestRefused(OWN_ID, "own-id")
        address = _address_key(host)
        nonce = new_nonce()
        now = self.clock()
        with self._lock:
            while self._pending:  # expired ones first (all expire `ttl_s` after they were made: oldest first)
                oldest = next(iter(self._pending))
                if self._pending[oldest][2] >= now:
                    break
                self._drop(oldest)
            mine = self._by_address.get(address)
            if mine is not None and len(mine) >= self.per_address:
                self._drop(next(iter(mine)))  # this address's own oldest
            while len(self._pending) >= self.limit:
                self._displace_one()
            self._add(nonce, (caller, caller_nonce, now + self.ttl_s, address))
        return {
            "node_id": self.node_id,
            "nonce": nonce,
            "proof": proof(self.key, "answerer", caller, caller_nonce, self.node_id, nonce),
        }

    def confirm(self, caller: str, nonce: str, given: object) -> bool:
        with self._lock:
            pending = self._drop(nonce)
        if pending is None or pending[0] != caller or caller == self.node_id or pending[2] < self.clock():
            return False
        if not self.key.verify("peer-proof", given, "caller", caller, pending[1], self.node_id, nonce):
            return False
        with self._lock:
            self.proven[caller] = time.time()
        return True
