"""The node's HTTP API (starlette): `POST /embed`, `POST /complete`, `POST /suggest_tool`, `GET /health`,
and the handshake, `POST /hello` and `POST /hello/confirm` (trust/peerauth.py).

Loopback callers (decided by the socket's peer address alone) need nothing. Any other caller must sign its
request with the hive key (`X-Hive-*` headers: a MAC over method, path, body digest, time and nonce, each
nonce taken once within the window); a node without a key refuses non-loopback callers outright. No token
or password is ever sent. A signed request, from anywhere, gets a signed reply, so the caller can tell this
node's answer from anyone else's. Bodies are size-limited (read before the signature is checked, since the
MAC covers them) and every error is a JSON object `{"error": "..."}` with a 4xx status that says what was
wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hivemind_app.content import check_text, normalise
from hivemind_app.errors import EmbedderUnavailableError, HivemindError, InvalidInputError
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import LLMUnavailableError, LocalLLM
from hivemind_app.nodes.batcher import MicroBatcher, Vectors
from hivemind_app.records.nodes import NodeHealth, NodeStatus
from hivemind_app.trust.hivekey import HiveKey
from hivemind_app.trust.peerauth import (
    NONCE,
    REPLY,
    Challenges,
    HandshakeLimiter,
    RequestRefused,
    RequestVerifier,
    sign_reply,
    valid_node_id,
    valid_nonce,
)

MAX_BATCH_TEXTS = 256


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, body: dict[str, object] | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body or {"error": message}
        """The JSON answer (`{"error": ...}`, with a `reason` code where there is one)."""
        self.retry_after_s = retry_after_s
        """Sent as `Retry-After` (whole seconds, rounded up) with a 429."""


class EmbedService:
    """Embeddings for `/embed`: an LRU cache by (model, text hash) in front of a micro-batcher."""

    def __init__(self, embedder: Embedder, cache_size: int = 10_000, window_s: float = 0.005) -> None:
        self.embedder = embedder
        self.batcher = MicroBatcher(embedder.embed, window_s=window_s)
        self.cache: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self.cache_size = cache_size

    @property
    def model(self) -> str:
        return self.embedder.model_name

    async def embed(self, texts: list[str]) -> tuple[list[Vectors], list[bool], list[str]]:
        hashes = [hashlib.sha256(normalise(t).encode("utf-8")).hexdigest() for t in texts]
        found: dict[int, Vectors] = {}
        for i, digest in enumerate(hashes):
            cached = self.cache.get((self.model, digest))
            if cached is not None:
                self.cache.move_to_end((self.model, digest))
                found[i] = cached
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            fresh = await self.batcher.embed([texts[i] for i in missing])
            for n, i in enumerate(missing):
                found[i] = fresh[n]
                self.cache[(self.model, hashes[i])] = fresh[n]
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        missing_set = set(missing)
        return [found[i] for i in range(len(texts))], [i not in missing_set for i in range(len(texts))], hashes


@dataclass
class NodeContext:
    """What the API serves from; the runtime fills it in."""

    node_id: str
    name: str
    hive: str
    roles: tuple[str, ...]
    version: str
    key: HiveKey | None = None
    """The hive key: without it only loopback callers are served and the handshake is refused."""
    embed: EmbedService | None = None
    llm: LocalLLM | None = None
    max_body_bytes: int = 2_097_152
    max_text_bytes: int = 1_048_576
    started_at: float = field(default_factory=time.time)
    runtime_status: Callable[[], NodeStatus] | None = None
    """The runtime serving this API (its workers, peers and training join `/health`); None in a bare API."""
    verifier: RequestVerifier | None = field(init=False, default=None)
    challenges: Challenges | None = field(init=False, default=None)
    handshakes: HandshakeLimiter = field(default_factory=HandshakeLimiter)
    """Admits `/hello` and `/hello/confirm` per remote address (open to anyone, so bounded)."""

    def __post_init__(self) -> None:
        if self.key is not None:
            self.verifier = RequestVerifier(self.key, self.node_id)
            self.challenges = Challenges(self.key, self.node_id)

    def health(self) -> NodeHealth:
        embed, llm = self.embed, self.llm
        return NodeHealth(
            node_id=self.node_id,
            name=self.name,
            hive=self.hive,
            roles=self.roles,
            version=self.version,
            uptime_s=round(time.time() - self.started_at, 1),
            embed_model=embed.model if embed else None,
            embed_queue=embed.batcher.pending if embed else 0,
            embedded_texts=embed.batcher.stats.texts if embed else 0,
            llm_model=llm.model_name if llm else None,
            adapter=llm.adapter_label if llm else None,
            runtime=self.runtime_status() if self.runtime_status else None,
        )


def _is_loopback(host: str | None) -> bool:
    """Whether the socket's peer is this machine: 127.0.0.0/8, ::1, and 127.x seen through a dual-stack
    socket as `::ffff:127.0.0.1`. A name is never trusted (the peer address is always an IP)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


NO_KEY = (
    "This node only serves loopback callers: it has no hive key (`hivemind-app hive join`, which asks for the "
    "join code, lets the hive in)."
)


class SignedRefusal(ApiError):
    """A refusal of an authentic request (its MAC verified: the clocks differ, or a replay): signed, so its
    caller can trust the reason."""

    def __init__(self, refused: RequestRefused, nonce: str) -> None:
        super().__init__(401, str(refused), refused.to_dict())
        self.nonce = nonce


def _authorize(ctx: NodeContext, request: Request, body: bytes) -> str | None:
    """Let the request in or raise; the nonce to sign the reply with (None: the reply goes unsigned)."""
    nonce = request.headers.get(NONCE)
    if ctx.verifier is not None and nonce:
        # a signed request is checked whoever sends it, and its reply signed
        try:
            ctx.verifier.check(request.method, request.url.path, body, request.headers)
        except RequestRefused as exc:
            if exc.authentic:
                raise SignedRefusal(exc, nonce) from exc
            raise ApiError(401, str(exc), exc.to_dict()) from exc
        return nonce
    if _is_loopback(request.client.host if request.client else None):
        return None
    if ctx.verifier is None:
        raise ApiError(403, NO_KEY)
    raise ApiError(401, "Not signed with the hive key: only nodes of this hive are served (`hivemind-app hive join`).")


async def _read_body(ctx: NodeContext, request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > ctx.max_body_bytes:
        raise ApiError(413, f"Request body is {int(declared):,} bytes; the limit is {ctx.max_body_bytes:,}.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > ctx.max_body_bytes:
            raise ApiError(413, f"Request body is over the {ctx.max_body_bytes:,}-byte limit.")
    return bytes(body)


def _json_body(request: Request) -> dict[str, Any]:
    body: bytes = request.state.body
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"The body is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise ApiError(422, "The body must be a JSON object.")
    return data


def _admit_handshake(ctx: NodeContext, request: Request) -> None:
    host = request.client.host if request.client else ""
    wait = ctx.handshakes.admit(host)
    if wait:
        limiter = ctx.handshakes
        message = (
            f"Too many handshakes from {host[:64]}: at most {limiter.burst} at once and {limiter.per_s:g} a second "
            f"per address; try again in {math.ceil(wait)} s."
        )
        raise ApiError(429, message, {"error": message, "reason": "rate-limited"}, retry_after_s=wait)


def _endpoint(
    ctx: NodeContext, handler: Callable[[Request], Awaitable[dict[str, Any]]], open_to_all: bool = False
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """`handler` behind the size limit and the caller check (`open_to_all`: the handshake, which is how a
    caller earns its way in), its answer signed for a signed request."""

    async def endpoint(request: Request) -> JSONResponse:
        reply_nonce = None
        try:
            if open_to_all:  # before anything is read or computed: a flood costs a dictionary lookup each
                _admit_handshake(ctx, request)
            request.state.body = await _read_body(ctx, request)
            if not open_to_all:
                reply_nonce = _authorize(ctx, request, request.state.body)
            response = JSONResponse(await handler(request))
        except SignedRefusal as exc:
            reply_nonce = exc.nonce
            response = JSONResponse(exc.body, status_code=exc.status)
        except ApiError as exc:
            response = JSONResponse(exc.body, status_code=exc.status)
            if exc.retry_after_s is not None:
                response.headers["retry-after"] = str(max(1, math.ceil(exc.retry_after_s)))
        except InvalidInputError as exc:
            response = JSONResponse({"error": str(exc)}, status_code=422)
        except (EmbedderUnavailableError, LLMUnavailableError) as exc:
            response = JSONResponse({"error": str(exc)}, status_code=503)
        except HivemindError as exc:
            response = JSONResponse({"error": str(exc)}, status_code=500)
        if reply_nonce is not None and ctx.key is not None:
            response.headers[REPLY] = sign_reply(ctx.key, reply_nonce, response.status_code, bytes(response.body))
        return response

    return endpoint


def create_app(ctx: NodeContext) -> Starlette:
    async def health(request: Request) -> dict[str, Any]:
        return ctx.health().to_dict()

    async def embed(request: Request) -> dict[str, Any]:
        if ctx.embed is None:
            raise ApiError(404, "This node does not have the embed role.")
        data = _json_body(request)
        single = "text" in data
        if single == ("texts" in data):
            raise ApiError(422, 'Send either "text" (a string) or "texts" (a list of strings).')
        texts = [data["text"]] if single else data["texts"]
        if not isinstance(texts, list) or not texts or len(texts) > MAX_BATCH_TEXTS:
            raise ApiError(422, f'"texts" must be a list of 1 to {MAX_BATCH_TEXTS} strings.')
        for text in texts:
            check_text(text, ctx.max_text_bytes, "a text")
        vectors, cached, hashes = await ctx.embed.embed(texts)
        common = {"model": ctx.embed.model, "dim": int(vectors[0].shape[0])}
        if single:
            return {"embedding": vectors[0].tolist(), "hash": hashes[0], "cached": cached[0], **common}
        return {"embeddings": [v.tolist() for v in vectors], "hashes": hashes, "cached": cached, **common}

    async def complete(request: Request) -> dict[str, Any]:
        llm = ctx.llm
        if llm is None:
            raise ApiError(404, "This node does not have the infer role.")
        data = _json_body(request)
        prompt, messages = data.get("prompt"), data.get("messages")
        if prompt is not None and not isinstance(prompt, str):
            raise ApiError(422, '"prompt" must be a string.')
        if messages is not None and not (
            isinstance(messages, list)
            and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
        ):
            raise ApiError(422, '"messages" must be a list of {"role": ..., "content": ...} objects.')
        max_tokens, temperature = data.get("max_tokens", 128), data.get("temperature", 0.0)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise ApiError(422, '"max_tokens" must be a whole number.')
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise ApiError(422, '"temperature" must be a number.')
        result = await anyio.to_thread.run_sync(
            lambda: llm.complete(prompt=prompt, messages=messages, max_tokens=max_tokens, temperature=temperature)
        )
        return result.to_dict()

    async def suggest_tool(request: Request) -> dict[str, Any]:
        llm = ctx.llm
        if llm is None:
            raise ApiError(404, "This node does not have the infer role.")
        data = _json_body(request)
        task, tools = data.get("task"), data.get("tools")
        if not isinstance(task, str) or not isinstance(tools, list):
            raise ApiError(422, 'Send "task" (a string) and "tools" (a list of tool names).')
        return await anyio.to_thread.run_sync(lambda: llm.suggest_tool(task, tools))

    def handshake_step(request: Request, what_to_send: str) -> tuple[Challenges, dict[str, Any], str, str]:
        """The challenges, the body, and its checked caller id and nonce (both handshake steps send them)."""
        if ctx.challenges is None:
            raise ApiError(403, NO_KEY)
        data = _json_body(request)
        caller, nonce = data.get("node_id"), data.get("nonce")
        if not valid_node_id(caller) or not valid_nonce(nonce):
            raise ApiError(422, what_to_send)
        assert isinstance(caller, str) and isinstance(nonce, str)
        return ctx.challenges, data, caller, nonce

    async def hello(request: Request) -> dict[str, Any]:
        challenges, _, caller, nonce = handshake_step(
            request, 'Send "node_id" (your node id) and "nonce" (32 hex digits).'
        )
        try:
            return challenges.answer(caller, nonce, request.client.host if request.client else "")
        except RequestRefused as exc:
            raise ApiError(409, str(exc)) from exc

    async def hello_confirm(request: Request) -> dict[str, Any]:
        challenges, data, caller, nonce = handshake_step(
            request, 'Send "node_id", "nonce" (the one /hello gave you) and "proof".'
        )
        if not challenges.confirm(caller, nonce, data.get("proof")):
            raise ApiError(401, "Wrong or expired proof: the caller does not hold this hive's key.")
        return {"ok": True}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if ctx.embed is not None:
            await ctx.embed.batcher.close()

    return Starlette(
        routes=[
            Route("/health", _endpoint(ctx, health), methods=["GET"]),
            Route("/embed", _endpoint(ctx, embed), methods=["POST"]),
            Route("/complete", _endpoint(ctx, complete), methods=["POST"]),
            Route("/suggest_tool", _endpoint(ctx, suggest_tool), methods=["POST"]),
            Route("/hello", _endpoint(ctx, hello, open_to_all=True), methods=["POST"]),
            Route("/hello/confirm", _endpoint(ctx, hello_confirm, open_to_all=True), methods=["POST"]),
        ],
        lifespan=lifespan,
    )
