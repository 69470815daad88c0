"""The Redis hub: cache hits, queue adds, the hub's overhead over raw redis-py, replication lag, outbox drain.

    python bench/hub.py [--n 200] [--offline 10000]

Starts its own redis-server (loopback, free port, AOF everysec, in a temp dir). The nodes use a tiny
deterministic embedder: this measures sync, not the model. Baseline in the same run: raw redis-py GET/SET
on the same server. Seed budgets: cache hit < 5 ms, learning-queue add < 5 ms. One JSON object per line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft


class TinyEmbedder:
    model_name = "bench-tiny"
    dim = 32

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        rows = [
            np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8)[:32].astype(np.float32) - 127.5
            for t in texts
        ]
        out = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def emit(**fields: object) -> None:
    print(json.dumps({"bench": "hub", "cpus": os.cpu_count(), "machine": platform.machine(), **fields}), flush=True)


def ms(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(statistics.median(values), 3), "p99": round(q[98], 3)}


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node(tmp: Path, name: str, url: str) -> Hive:
    settings = Settings(
        data_dir=tmp / name,
        node={"name": name, "port": 0},
        embedding={"model": TinyEmbedder.model_name},
        redis={"url": url, "connect_timeout_s": 0.5},
    )
    return Hive(settings, embedder=TinyEmbedder())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="repetitions per latency figure")
    parser.add_argument("--offline", type=int, default=10_000, help="writes made offline before the drain")
    args = parser.parse_args()
    binary = shutil.which("redis-server") or "redis-server"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["HIVEMIND_CONFIG"] = str(tmp / "config.toml")
        port = free_port()
        server = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(tmp),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        raw = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                raw.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        try:
            a, b = node(tmp, "a", url), node(tmp, "b", url)
            a.set_tool_cache("grep", "TODO", "3 matches")
            hit = timed(lambda: a.get_tool_cache("grep", "TODO"), args.n)
            raw.set("raw:key", "3 matches")
            raw_get = timed(lambda: raw.get("raw:key"), args.n)
            emit(metric="tool_cache_hit_ms", **ms(hit), raw_redis_get=ms(raw_get), seed_budget_ms=5)

            counter = iter(range(10**9))
            add = timed(
                lambda: a.add_to_learning_queue(
                    {
                        "user_query": "show the last commit",
                        "tool_used": "git_diff",
                        "result": f"diff {next(counter)}",
                        "success": True,
                    }
                ),
                args.n,
            )
            raw_set = timed(lambda: raw.xadd("raw:stream", {"x": "1"}), args.n)
            emit(
                metric="learning_queue_add_ms",
                **ms(add),
                raw_redis_xadd=ms(raw_set),
                seed_budget_ms=5,
                note="includes the local SQLite write and the push of the outbox row",
            )
            cache_put = timed(lambda: a.set_tool_cache("grep", f"q{next(counter)}", "out"), args.n)
            emit(
                metric="tool_cache_put_ms", **ms(cache_put), raw_redis_set=ms(timed(lambda: raw.set("k", "v"), args.n))
            )

            b.sync(force=True)
            lags = []
            for i in range(args.n // 4):
                text = f"replication probe {i}"
                started = time.perf_counter()
                a.store_memory(text)
                while not b.search_memory(f"replication probe {i}", mode="keyword", limit=1).hits:
                    b.sync(force=True)
                lags.append((time.perf_counter() - started) * 1000)
            emit(metric="replication_lag_ms", **ms(lags), how="store on A until a keyword recall finds it on B")

            a.parts.hub.retarget(f"redis://127.0.0.1:{free_port()}/0")  # type: ignore[union-attr]
            for start in range(0, args.offline, 1000):
                a.store_memories(
                    [MemoryDraft(f"offline note {i}") for i in range(start, min(start + 1000, args.offline))]
                )
            queued = a.status()["sync"]["outbox"]
            a.parts.hub.retarget(url)  # type: ignore[union-attr]
            started = time.perf_counter()
            report = a.sync(force=True)
            seconds = time.perf_counter() - started
            assert report is not None and report.online and a.status()["sync"]["outbox"] == 0
            emit(metric="outbox_drain", writes=queued, seconds=round(seconds, 2), per_s=round(queued / seconds, 1))
            a.close()
            b.close()
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
