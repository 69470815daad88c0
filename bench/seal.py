"""What the hive key costs sync: push and pull of N memories, and of S sessions with S learning-queue entries,
with no key (the baseline, same run), with MACs (a hive key), and with MACs and `hive.encrypt` (AES-SIV).

    python bench/seal.py [--n 2000] [--sessions 500] [--rounds 3]

Starts its own redis-server (loopback, free port, no persistence). For each mode, node A stores N memories
offline, then pushes them (the outbox drain), and a fresh node B pulls them (its bootstrap); the best of
`--rounds` runs per mode, the modes taking turns. A tiny deterministic embedder: this measures sync, not the
model. The same for S sessions and S learning entries: A sets them offline and pushes them, B bootstraps the
sessions and a trainer on B takes the entries from the queue. One JSON line per mode and record kind.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.hub import TinyEmbedder, free_port
from bench.report import emit_line
from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.trust.hivekey import HiveKey, save_key


def node(tmp: Path, name: str, url: str, key_file: Path | None, encrypt: bool) -> Hive:
    settings = Settings(
        data_dir=tmp / name,
        node={"name": name, "port": 0},
        embedding={"model": TinyEmbedder.model_name},
        redis={"url": url, "connect_timeout_s": 0.5},
        hive={"key_file": key_file or tmp / "no.key", "encrypt": encrypt},
    )
    return Hive(settings, embedder=TinyEmbedder())


def one_run(tmp: Path, url: str, n: int, key_file: Path | None, encrypt: bool) -> tuple[float, float]:
    redis.Redis.from_url(url).flushall()
    a = node(tmp, f"a-{time.monotonic_ns()}", url, key_file, encrypt)
    hub = a.parts.hub
    assert hub is not None
    hub.channel.retarget("redis://127.0.0.1:1/0")  # offline while storing: every write waits in the outbox
    a.store_memories([MemoryDraft(f"note {i}: the staging service {i} listens on port {1000 + i}") for i in range(n)])
    hub.channel.retarget(url)
    started = time.perf_counter()
    a.sync()
    push_s = time.perf_counter() - started
    b = node(tmp, f"b-{time.monotonic_ns()}", url, key_file, encrypt)
    started = time.perf_counter()
    b.sync()
    pull_s = time.perf_counter() - started
    assert b.status().memories.live == n, "every memory arrives"
    a.close()
    b.close()
    return push_s, pull_s


def one_run_sessions(tmp: Path, url: str, n: int, key_file: Path | None, encrypt: bool) -> tuple[float, float]:
    from hivemind_app.hub.learning import HubLearningQueue

    redis.Redis.from_url(url).flushall()
    a = node(tmp, f"a-{time.monotonic_ns()}", url, key_file, encrypt)
    hub = a.parts.hub
    assert hub is not None
    hub.channel.retarget("redis://127.0.0.1:1/0")
    for i in range(n):
        a.set_context(f"s{i}", {"current_task": f"fix the flaky test {i}", "files": [f"src/m{i}.py"]})
        a.add_to_learning_queue({"user_query": f"diff of {i}?", "tool_used": "git_diff", "success": True})
    hub.channel.retarget(url)
    started = time.perf_counter()
    a.sync()
    push_s = time.perf_counter() - started
    b = node(tmp, f"b-{time.monotonic_ns()}", url, key_file, encrypt)
    assert b.parts.hub is not None
    started = time.perf_counter()
    b.sync()
    taken = HubLearningQueue(b.parts.hub, consumer="bench", claim_idle_s=600).take(n).entries
    pull_s = time.perf_counter() - started
    assert len(taken) == n and b.get_context(f"s{n - 1}").current_task == f"fix the flaky test {n - 1}"
    a.close()
    b.close()
    return push_s, pull_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="memories pushed and pulled per run")
    parser.add_argument("--sessions", type=int, default=500, help="sessions and learning entries per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode (the best is reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        key_file = tmp / "hive.key"
        save_key(key_file, HiveKey.generate())
        port = free_port()
        binary = shutil.which("redis-server") or "redis-server"
        server = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp), "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        try:
            modes = (("no key", None, False), ("mac", key_file, False), ("encrypt", key_file, True))
            kinds = (("memories", one_run, args.n), ("sessions+learning", one_run_sessions, args.sessions))
            runs: dict[tuple[str, str], list[tuple[float, float]]] = {
                (kind, mode): [] for kind, _, _ in kinds for mode, _, _ in modes
            }
            for _ in range(args.rounds):  # modes interleaved, so a busy moment on a shared machine hits all
                for kind, run, n in kinds:
                    for mode, key, encrypt in modes:
                        runs[(kind, mode)].append(run(tmp, url, n, key, encrypt))
            best = {km: (min(r[0] for r in rs), min(r[1] for r in rs)) for km, rs in runs.items()}
            for (kind, mode), (push_s, pull_s) in best.items():
                baseline = best[(kind, "no key")]
                n = dict((k, count) for k, _, count in kinds)[kind]
                emit_line(
                    "seal",
                    "push_pull_s",
                    records=kind,
                    n=n,
                    mode=mode,
                    push_s=round(push_s, 3),
                    pull_s=round(pull_s, 3),
                    push_per_s=round(n / push_s),
                    pull_per_s=round(n / pull_s),
                    push_vs_no_key=round(push_s / baseline[0], 2),
                    pull_vs_no_key=round(pull_s / baseline[1], 2),
                )
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
