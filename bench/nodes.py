"""Node runtime throughput: `/embed` over HTTP vs in-process, concurrency scaling, LLM tokens/s.

    python bench/nodes.py [--requests 200]

Starts a real node runtime (embed + infer roles) on a free loopback port, discovery bound to 127.0.0.1.
Baselines in the same run: the in-process embedder for single-text latency, one client for throughput.
Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hivemind_app.config import Settings
from hivemind_app.ml.embedder import SentenceTransformerEmbedder
from hivemind_app.nodes.runtime import NodeRuntime


def emit(**fields: object) -> None:
    print(json.dumps({"bench": "nodes", "cpus": os.cpu_count(), "machine": platform.machine(), **fields}), flush=True)


def pct(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    texts = [f"note {i}: restarted worker-{i % 17} after the redis failover on host-{i % 5}" for i in range(4096)]

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HIVEMIND_CONFIG"] = f"{tmp}/config.toml"
        settings = Settings(
            data_dir=Path(tmp) / "data",
            node={"name": "bench", "hive": "bench", "port": 0, "heartbeat_s": 2.0},
            discovery={"interfaces": ["127.0.0.1"]},
        )
        runtime = NodeRuntime(settings, roles=["embed", "infer"])
        runtime.start()
        url = f"http://127.0.0.1:{runtime.port}"
        try:
            local = SentenceTransformerEmbedder(device="cpu")
            local.embed(["warm up"])
            with httpx.Client(base_url=url, timeout=120) as client:
                client.post("/embed", json={"text": "warm up"})
                in_process, http = [], []
                for i in range(args.requests):
                    t0 = time.perf_counter()
                    local.embed([texts[i]])
                    in_process.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    client.post("/embed", json={"text": texts[i + args.requests]})  # uncached
                    http.append((time.perf_counter() - t0) * 1000)
                emit(
                    metric="single_embed_ms",
                    http_p50=round(statistics.median(http), 2),
                    http_p99=pct(http, 99),
                    in_process_p50=round(statistics.median(in_process), 2),
                    in_process_p99=pct(in_process, 99),
                    seed_budget_ms=100,
                )

            offset = 2 * args.requests
            for clients in (1, 8, 32):
                batch = texts[offset : offset + args.requests * 2]
                offset += len(batch)

                local_client = threading.local()

                def one(text: str, state: threading.local = local_client) -> None:
                    # one keep-alive connection per client thread, as a real client would hold
                    if not hasattr(state, "http"):
                        state.http = httpx.Client(base_url=url, timeout=120)
                    state.http.post("/embed", json={"text": text}).raise_for_status()

                t0 = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    list(pool.map(one, batch))
                seconds = time.perf_counter() - t0
                emit(
                    metric="embeddings_per_s",
                    clients=clients,
                    value=round(len(batch) / seconds, 1),
                    seed_gpu_figure=100,
                )

            assert runtime.llm is not None
            runtime.llm.load()
            started = time.perf_counter()
            result = runtime.llm.complete("Explain what a LoRA adapter is in three sentences.", max_tokens=96)
            seconds = time.perf_counter() - started
            emit(
                metric="llm_tokens_per_s",
                model=result.model,
                tokens=result.completion_tokens,
                value=round(result.completion_tokens / seconds, 1),
            )
        finally:
            runtime.stop()


if __name__ == "__main__":
    main()
