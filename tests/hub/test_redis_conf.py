from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.support.redis_server import free_port

CONF = Path(__file__).resolve().parents[2] / "packaging" / "redis" / "hivemind.conf"


def test_the_shipped_redis_conf_starts_redis_with_a_password_and_aof(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", str(CONF), "--port", str(port), "--dir", str(tmp_path), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, password="change-me-to-a-long-random-secret")
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        try:
            redis.Redis(port=port).ping()
            raise AssertionError("the server answered without the password")
        except redis.AuthenticationError:
            pass
    finally:
        proc.terminate()
        proc.wait(10)
