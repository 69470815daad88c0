from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.ml.embedder import Embedder
from tests.support.hash_embedder import HashEmbedder
from tests.support.redis_server import RedisServer

NodeFactory = Callable[..., Hive]
HASH = HashEmbedder()


@pytest.fixture
def make_node(tmp_path: Path, redis_server: RedisServer) -> Iterator[NodeFactory]:
    """Hive nodes with their own data dirs, all on the fixture's redis-server (or on `url` when given); the same
    name twice is the same data dir (a node restarted, say with `embedder=None`: its model down)."""
    opened: list[Hive] = []

    def make(name: str, url: str | None = None, prefix: str = "hive", embedder: Embedder | None = HASH) -> Hive:
        settings = Settings(
            data_dir=tmp_path / name,
            node={"name": name, "port": 0},
            embedding={"model": HashEmbedder.model_name},
            redis={"url": url or redis_server.url, "prefix": prefix, "connect_timeout_s": 0.5},
        )
        hive = Hive(settings, embedder=embedder)
        hive.parts.hub.replica.set_state(retry_at=0)  # type: ignore[union-attr]
        opened.append(hive)
        return hive

    yield make
    for hive in opened:
        hive.close()


def closed_port_url() -> str:
    from tests.support.redis_server import free_port

    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def not_redis_port() -> Iterator[int]:
    """A loopback TCP server that answers like a web server, not like Redis."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(2)
    server.close()
