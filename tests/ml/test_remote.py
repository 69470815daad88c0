"""A peer's `/embed` answer is checked before its vectors are used: a rogue or broken peer on loopback (a real
HTTP server) is passed over, and the next embedder in the failover list answers instead."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from hivemind_app.ml.remote import FailoverEmbedder, RemoteEmbedder
from tests.support.hash_embedder import HashEmbedder

LOCAL = HashEmbedder()
MODEL = HashEmbedder.model_name


class Peer:
    """An HTTP server answering every POST with `self.answer(texts)` (a JSON-able object or raw bytes)."""

    def __init__(self) -> None:
        self.answer: Any = None
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                texts = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["texts"]
                body = peer.answer(texts)
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def peer() -> Iterator[Peer]:
    serving = Peer()
    yield serving
    serving.server.shutdown()


def honest(texts: list[str]) -> dict[str, Any]:
    return {"model": MODEL, "embeddings": LOCAL.embed(texts).tolist()}


def unit(dim: int) -> list[float]:
    return [1 / math.sqrt(dim)] * dim


BAD_ANSWERS = {
    "NaN values": lambda texts: {"model": MODEL, "embeddings": [[math.nan] * LOCAL.dim for _ in texts]},
    "not unit length": lambda texts: {"model": MODEL, "embeddings": [[5.0] * LOCAL.dim for _ in texts]},
    "one vector too few": lambda texts: {"model": MODEL, "embeddings": [unit(LOCAL.dim) for _ in texts[1:]]},
    "ragged rows": lambda texts: {"model": MODEL, "embeddings": [unit(LOCAL.dim), unit(3)][: len(texts)]},
    "strings": lambda texts: {"model": MODEL, "embeddings": [["a"] * LOCAL.dim for _ in texts]},
    "no embeddings": lambda texts: {"model": MODEL},
    "not JSON": lambda texts: b"<html>hello</html>",
    "a JSON list": lambda texts: [1, 2, 3],
}


@pytest.mark.parametrize("bad", list(BAD_ANSWERS), ids=list(BAD_ANSWERS))
def test_vectors_a_peer_gets_wrong_are_not_used_and_the_next_embedder_answers(peer: Peer, bad: str) -> None:
    peer.answer = BAD_ANSWERS[bad]
    texts = ["deploy freeze on Friday", "the staging port is 5433"]
    failover = FailoverEmbedder(MODEL, lambda: [RemoteEmbedder(peer.url, MODEL), LOCAL])
    assert np.array_equal(failover.embed(texts), LOCAL.embed(texts))
    assert failover.last_used == repr(LOCAL)


def test_a_peer_that_changes_its_dimension_midway_is_not_used_after_the_change(peer: Peer) -> None:
    remote = RemoteEmbedder(peer.url, MODEL)
    peer.answer = honest
    assert remote.embed(["first"]).shape == (1, LOCAL.dim)
    peer.answer = lambda texts: {"model": MODEL, "embeddings": [unit(LOCAL.dim * 2) for _ in texts]}
    failover = FailoverEmbedder(MODEL, lambda: [remote, LOCAL])
    failover.embed(["second"])
    assert failover.last_used == repr(LOCAL)


def test_an_honest_peer_is_used(peer: Peer) -> None:
    peer.answer = honest
    failover = FailoverEmbedder(MODEL, lambda: [RemoteEmbedder(peer.url, MODEL), LOCAL])
    failover.embed(["deploy freeze"])
    assert failover.last_used == f"RemoteEmbedder({peer.url})"
