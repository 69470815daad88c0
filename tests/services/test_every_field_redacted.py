"""Secrets never stored, in any field: text, tags, source, session files, tool names, cached tool outputs.

Each field is written through the facade on a node with a real redis-server, then the local store and every
key and value in Redis are searched for the secrets' bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from tests.support.hash_embedder import HashEmbedder
from tests.support.redis_server import RedisServer

GITHUB = "ghp_1234567890abcdefghijABCDEFGHIJ123456"
SLACK = "https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/q1w2e3r4t5y6u7i8o9p0a1s2"
AWS = "AKIAIOSFODNN7EXAMPLE"
SECRETS = (GITHUB, "q1w2e3r4t5y6u7i8o9p0a1s2", AWS)


def test_a_secret_in_any_field_reaches_neither_the_store_nor_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    settings = Settings(
        data_dir=tmp_path / "node",
        node={"name": "node", "port": 0},
        embedding={"model": HashEmbedder.model_name},
        redis={"url": redis_server.url},
    )
    with Hive(settings, embedder=HashEmbedder()) as hive:
        stored = hive.store_memory("deploy notes for the staging cluster", tags=[f"token-{GITHUB}"], source=SLACK)
        hive.set_context("s1", {"files": [f"/tmp/{AWS}.txt"], "current_task": "rotate keys"})
        hive.add_to_learning_queue({"user_query": "q", "tool_used": f"curl-{GITHUB}", "result": "ok", "success": True})
        hive.set_tool_cache("grep", "creds", f"found {AWS} in .env")
        hive.sync(force=True)
        memory = hive.get_memory(stored.memory.id)
        assert not any(s in " ".join([*memory.tags, *memory.sources]) for s in SECRETS)
        assert "[REDACTED:" in memory.source and any("[redacted:" in t for t in memory.tags)
        assert hive.get_tool_cache("grep", "creds") == "found [REDACTED:aws-key] in .env"
        assert AWS not in " ".join(hive.get_context("s1").files)

    store_bytes = b"".join(p.read_bytes() for p in (tmp_path / "node").glob("hive.db*"))
    client = redis_server.client()
    in_redis = b"".join(key + dump(client, key) for key in client.scan_iter(count=1000))
    assert in_redis, "nothing reached Redis: the test would prove nothing"
    for secret in SECRETS:
        assert secret.encode() not in store_bytes and secret.lower().encode() not in store_bytes, secret
        assert secret.encode() not in in_redis and secret.lower().encode() not in in_redis, secret


def dump(client: Any, key: bytes) -> bytes:
    """Every value under `key`, whatever its type, as bytes to search."""
    kind = client.type(key)
    readers: dict[bytes, Callable[[], object]] = {
        b"string": lambda: client.get(key),
        b"hash": lambda: client.hgetall(key),
        b"list": lambda: client.lrange(key, 0, -1),
        b"stream": lambda: client.xrange(key),
        b"zset": lambda: client.zrange(key, 0, -1),
        b"set": lambda: client.smembers(key),
    }
    value = readers.get(kind, lambda: b"")()
    return value if isinstance(value, bytes) else repr(value).encode()
