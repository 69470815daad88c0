"""The node HTTP API through a real ASGI client, with the real MiniLM model and the bundled SmolLM2."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from hivemind_app.config import Settings
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import LocalLLM
from hivemind_app.ml.trainer import RoundProgress
from hivemind_app.nodes.api import EmbedService, NodeContext, create_app
from hivemind_app.nodes.runtime import NodeRuntime
from hivemind_app.records.nodes import AdapterRefusal, NodeStatus, Peer, PeerStatus, WorkerStatus
from hivemind_app.trust.hivekey import HiveKey
from hivemind_app.trust.peerauth import REPLY, reply_is_signed, sign_request

pytestmark = pytest.mark.anyio

LAN_CALLER = ("192.168.1.50", 52000)
KEY = HiveKey.generate()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def llm() -> LocalLLM:
    return LocalLLM(n_ctx=2048, n_threads=2)


def make_ctx(embedder: Embedder, llm: LocalLLM | None = None, key: HiveKey | None = KEY) -> NodeContext:
    return NodeContext(
        node_id="n1",
        name="dell",
        hive="home",
        roles=("embed", "infer"),
        version="0.1.0",
        key=key,
        embed=EmbedService(embedder, window_s=0.02),
        llm=llm,
        max_body_bytes=64_000,
        max_text_bytes=10_000,
    )


async def client_for(ctx: NodeContext, client: tuple[str, int] = ("127.0.0.1", 40000)) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(ctx), client=client)
    return httpx.AsyncClient(transport=transport, base_url="http://node")


@pytest.fixture
async def local(embedder: Embedder) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(make_ctx(embedder)) as client:
        yield client


async def test_embed_answers_the_seeds_request_with_the_local_models_vector(
    local: httpx.AsyncClient, embedder: Embedder
) -> None:
    text = "What was I doing with PyTorch benchmarks?"
    first = (await local.post("/embed", json={"text": text})).json()
    assert first["model"] == "all-MiniLM-L6-v2" and first["dim"] == 384 and first["cached"] is False
    assert len(first["hash"]) == 64
    assert np.allclose(first["embedding"], embedder.embed([text])[0], atol=1e-5)
    second = (await local.post("/embed", json={"text": text})).json()
    assert second["cached"] is True and second["embedding"] == first["embedding"]


async def test_embed_takes_batches(local: httpx.AsyncClient) -> None:
    body = (await local.post("/embed", json={"texts": ["one", "two", "three"]})).json()
    assert len(body["embeddings"]) == 3 and body["cached"] == [False, False, False]


async def test_concurrent_callers_share_batches_and_each_gets_its_own_vector(
    embedder: Embedder,
) -> None:
    ctx = make_ctx(embedder)
    texts = [f"note {n} about redis replication on host {n}" for n in range(16)]
    async with await client_for(ctx) as client:
        answers = await asyncio.gather(*(client.post("/embed", json={"text": t}) for t in texts))
    expected = embedder.embed(texts)
    for n, answer in enumerate(answers):
        assert np.allclose(answer.json()["embedding"], expected[n], atol=1e-4)
    assert ctx.embed is not None
    assert ctx.embed.batcher.stats.requests == 16 and ctx.embed.batcher.stats.batches < 16


async def test_a_caller_off_loopback_must_sign_with_the_hive_key_and_gets_a_signed_reply(embedder: Embedder) -> None:
    body = b'{"text": "x"}'
    ctx = make_ctx(embedder)
    async with await client_for(ctx, LAN_CALLER) as lan:

        async def post(headers: dict[str, str], content: bytes = body) -> httpx.Response:
            return await lan.post("/embed", content=content, headers={"content-type": "application/json", **headers})

        missing = await post({})
        bearer = await post({"Authorization": "Bearer s3cret"})
        foreign = await post(sign_request(HiveKey.generate(), "n9", "n1", "POST", "/embed", body))
        signed = sign_request(KEY, "n9", "n1", "POST", "/embed", body)
        right = await post(signed)
        replayed = await post(signed)
        other_body = await post(sign_request(KEY, "n9", "n1", "POST", "/embed", body), b'{"text": "y"}')
        other_path = await post(sign_request(KEY, "n9", "n1", "POST", "/complete", body))
        stale = sign_request(KEY, "n9", "n1", "POST", "/embed", body)
        stale["x-hive-time"] = f"{float(stale['x-hive-time']) - 120:.3f}"
        too_old = await post(stale)
    assert missing.status_code == bearer.status_code == 401 and "hive key" in missing.json()["error"]
    assert foreign.status_code == 401 and "does not hold" in foreign.json()["error"]
    assert right.status_code == 200
    assert reply_is_signed(KEY, signed["x-hive-nonce"], 200, right.content, right.headers)
    assert not reply_is_signed(HiveKey.generate(), signed["x-hive-nonce"], 200, right.content, right.headers)
    assert replayed.status_code == 401 and "replay" in replayed.json()["error"]
    assert other_body.status_code == other_path.status_code == too_old.status_code == 401
    assert REPLY not in missing.headers  # nothing to sign a reply to


async def test_a_node_without_a_hive_key_serves_loopback_only(embedder: Embedder) -> None:
    async with await client_for(make_ctx(embedder, key=None), LAN_CALLER) as lan:
        answer = await lan.get("/health")
        hello = await lan.post("/hello", json={"node_id": "n9", "nonce": "0" * 32})
    assert answer.status_code == 403 and "hive key" in answer.json()["error"]
    assert hello.status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (b'{"text": 42}', 422, "must be a string"),
        (b'{"text": ""}', 422, "empty"),
        (b'{"text": "a", "texts": ["b"]}', 422, "either"),
        (b'{"texts": []}', 422, "1 to 256"),
        (b'{"text": "' + b"x" * 20_000 + b'"}', 422, "over the limit"),
        (b'{"text": "' + b"x" * 70_000 + b'"}', 413, "limit"),
        (b'{"text": "nul\\u0000byte"}', 422, "NUL"),
    ],
)
async def test_bad_requests_get_a_clear_4xx(local: httpx.AsyncClient, body: bytes, status: int, fragment: str) -> None:
    answer = await local.post("/embed", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status
    assert fragment in answer.json()["error"]


async def test_health_reports_the_node(local: httpx.AsyncClient) -> None:
    health = (await local.get("/health")).json()
    assert health["status"] == "ok" and health["roles"] == ["embed", "infer"] and health["embed_model"]


async def test_the_infer_role_answers_a_real_completion(embedder: Embedder, llm: LocalLLM) -> None:
    async with await client_for(make_ctx(embedder, llm)) as client:
        answer = await client.post("/complete", json={"prompt": "Name one programming language.", "max_tokens": 12})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["text"].strip() and body["completion_tokens"] > 0
        assert body["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
        bad = await client.post("/complete", json={"prompt": "x", "max_tokens": 0})
        assert bad.status_code == 422 and "max_tokens" in bad.json()["error"]


async def test_suggest_tool_returns_valid_json_naming_a_known_tool(embedder: Embedder, llm: LocalLLM) -> None:
    tools = ["git_diff", "git_log", "run_tests", "read_file"]
    async with await client_for(make_ctx(embedder, llm)) as client:
        for task in ["show me what changed in the last commit", "run the unit tests for the sync module"]:
            answer = await client.post("/suggest_tool", json={"task": task, "tools": tools})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["tool"] in tools and isinstance(body["arguments"], dict)


async def test_health_json_keeps_its_fields_and_order_with_and_without_a_runtime(embedder: Embedder) -> None:
    ctx = make_ctx(embedder)
    async with await client_for(ctx) as client:
        bare = (await client.get("/health")).json()
    assert list(bare) == [
        "status", "node_id", "name", "hive", "roles", "version", "uptime_s",
        "embed_model", "embed_queue", "embedded_texts", "llm_model", "adapter",
    ]  # fmt: skip
    peer = Peer("n2", "nas", "home", "192.168.1.9", 8765, ("embed",), "0.1.0", seen_at=100.0)
    ctx.runtime_status = lambda: NodeStatus(
        node_id="n1",
        name="dell",
        hive="home",
        roles=("embed", "infer"),
        port=8765,
        workers=(WorkerStatus("heartbeat", "running", 3, 1, "ConnectError: refused"),),
        peers=(PeerStatus(peer, "alive", 101.5, 2.25, 4, "all-MiniLM-L6-v2", None, "v3"),),
        training=RoundProgress("training", 12, 30, "2.6 examples/s", 0.48),
        adapter_refused=AdapterRefusal(2, "its file is corrupt"),
    )
    async with await client_for(ctx) as client:
        full = (await client.get("/health")).json()
    assert {k: v for k, v in full.items() if k != "uptime_s"} == {
        **{k: v for k, v in bare.items() if k != "uptime_s"},
        "workers": [
            {"name": "heartbeat", "state": "running", "runs": 3, "crashes": 1, "last_error": "ConnectError: refused"}
        ],
        "peers": [
            {
                "node_id": "n2", "name": "nas", "hive": "home", "address": "192.168.1.9", "port": 8765,
                "roles": ["embed"], "version": "0.1.0", "seen_at": 100.0, "source": "mdns", "health": "alive",
                "last_seen": 101.5, "latency_ms": 2.25, "load": 4, "embed_model": "all-MiniLM-L6-v2",
                "llm_model": None, "adapter": "v3", "why": None,
            }
        ],
        "adapter_refused": {"version": 2, "reason": "its file is corrupt"},
        "training": {"stage": "training", "done": 12, "total": 30, "detail": "2.6 examples/s", "loss": 0.48},
    }  # fmt: skip
    assert list(full)[-4:] == ["workers", "peers", "adapter_refused", "training"]


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
async def test_every_loopback_peer_address_is_served_without_a_key(embedder: Embedder, peer: str) -> None:
    async with await client_for(make_ctx(embedder, key=None), (peer, 52000)) as caller:
        assert (await caller.get("/health")).status_code == 200


@pytest.mark.parametrize("peer", ["localhost", "::ffff:192.168.1.50", "10.0.0.1", "not-an-address"])
async def test_a_peer_that_is_not_a_loopback_address_is_refused_without_a_key(embedder: Embedder, peer: str) -> None:
    async with await client_for(make_ctx(embedder, key=None), (peer, 52000)) as caller:
        assert (await caller.get("/health")).status_code == 403


def test_the_real_server_decides_loopback_from_the_socket_not_from_forwarded_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # trusted proxies, as deployments often set
    settings = Settings(data_dir=tmp_path / "n", node={"name": "n", "port": 0, "bind": "127.0.0.1"})
    settings = settings.model_copy(update={"discovery": settings.discovery.model_copy(update={"enabled": False})})
    runtime = NodeRuntime(settings, roles=[])
    runtime.start()
    try:
        url = f"http://127.0.0.1:{runtime.port}/health"
        # a loopback caller claiming to be a LAN host is still this machine ...
        claimed_lan = httpx.get(url, headers={"X-Forwarded-For": "192.168.1.50", "Forwarded": "for=192.168.1.50"})
        assert claimed_lan.status_code == 200
        # ... so the header is not read at all: a LAN caller claiming 127.0.0.1 gets nothing from it either
        assert claimed_lan.json()["name"] == "n"
    finally:
        runtime.stop()


async def test_a_request_refused_for_clock_skew_gets_a_signed_refusal_that_says_so(embedder: Embedder) -> None:
    body = b'{"text": "x"}'
    async with await client_for(make_ctx(embedder), LAN_CALLER) as lan:

        async def post(headers: dict[str, str]) -> httpx.Response:
            return await lan.post("/embed", content=body, headers={"content-type": "application/json", **headers})

        skewed = sign_request(KEY, "n9", "n1", "POST", "/embed", body, now=time.time() - 300)
        refused = await post(skewed)
        forged = sign_request(HiveKey.generate(), "n9", "n1", "POST", "/embed", body, now=time.time() - 300)
        stranger = await post(forged)
    assert refused.status_code == 401 and refused.json()["reason"] == "clock-skew"
    assert 299 < refused.json()["skew_s"] < 310 and "clocks differ" in refused.json()["error"]
    # signed: the caller knows it is this node saying so, not whoever answers on the port
    assert reply_is_signed(KEY, skewed["x-hive-nonce"], 401, refused.content, refused.headers)
    # a forged request is refused as one, and that refusal is never signed (no signing oracle for strangers)
    assert stranger.status_code == 401 and stranger.json()["reason"] == "bad-signature"
    assert REPLY not in stranger.headers


async def test_a_hello_flood_is_refused_with_429_and_retry_after_and_another_address_still_gets_in(
    embedder: Embedder,
) -> None:
    ctx = make_ctx(embedder)
    hello = {"node_id": "n9", "nonce": "ab" * 16}
    async with await client_for(ctx, ("192.168.1.66", 52000)) as flooder:
        answers = [await flooder.post("/hello", json=hello) for _ in range(200)]
    statuses = [a.status_code for a in answers]
    assert statuses[: ctx.handshakes.burst] == [200] * ctx.handshakes.burst
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) >= 200 - ctx.handshakes.burst - 5  # a few refill while the flood runs
    assert int(refused[0].headers["retry-after"]) >= 1 and refused[0].json()["reason"] == "rate-limited"
    assert "try again in" in refused[0].json()["error"]
    assert ctx.challenges is not None and ctx.challenges.pending <= ctx.challenges.per_address
    async with await client_for(ctx, LAN_CALLER) as other:
        assert (await other.post("/hello", json=hello)).status_code == 200
