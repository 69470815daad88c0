"""MCP end to end: `memory_recall` over stdio against the `Hive` facade, and server start to `initialize`.

    python bench/mcp.py [--n 10000] [--queries 100] [--starts 5]
    python bench/mcp.py --start-only [--starts 20]

`--start-only` times the server's start alone (spawn to the handshake's answer read back), for `initialize` and
for Claude Code's first request (`server/discover`, 2026-07-28): `cold` in a fresh data dir each time (no
handshake cache: the SDK answers, as every start did before claude/quickstart.py), `warm` with the handshake
cached (every start after the first), and `python -c pass` as the floor, all in the same run, in turn.

The store is built like bench/search.py's (the same corpus and vectors, in a temporary data dir); the
server is the installed `hivemind-app mcp` console script, driven by the SDK's stdio client. Baseline in
the same run: the same queries through `Hive.search_memory` in-process. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the SDK's package: drop its own directory from the path so `import mcp` finds the SDK.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import DEFAULT_SEED, load_corpus  # noqa: E402
from bench.search import all_vectors, open_store, real_vectors  # noqa: E402
from hivemind_app.config import load_settings  # noqa: E402
from hivemind_app.hive import Hive  # noqa: E402


def emit(**fields: object) -> None:
    print(json.dumps({"bench": "mcp", "cpus": os.cpu_count(), "machine": platform.machine(), **fields}), flush=True)


def pct(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2) if len(values) > 1 else values[0]


def console() -> str:
    beside = Path(sys.executable).parent / "hivemind-app"
    return str(beside) if beside.exists() else (shutil.which("hivemind-app") or "hivemind-app")


def start_timings(runs: int, tmp: str) -> None:
    """--start-only: cold, warm and the bare interpreter, interleaved so that load hits them alike."""
    import subprocess

    from bench.report import emit_line, ms_stats
    from hivemind_app.claude.checkup import DISCOVER, INITIALIZE

    def answered(request: dict[str, object], data_dir: str) -> float:
        env = {**os.environ, "HIVEMIND_DATA_DIR": data_dir}
        started = time.perf_counter()
        proc = subprocess.Popen([console(), "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(request) + "\n").encode())
        proc.stdin.flush()
        line = proc.stdout.readline()
        took = (time.perf_counter() - started) * 1000
        assert b'"result"' in line, line
        proc.kill()
        proc.wait()
        return took

    python: list[float] = []
    timings: dict[tuple[str, str], list[float]] = {}
    for request in (INITIALIZE, DISCOVER):
        answered(request, f"{tmp}/warm")  # learns the answer
    for i in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        python.append((time.perf_counter() - started) * 1000)
        for request in (INITIALIZE, DISCOVER):
            method = str(request["method"])
            timings.setdefault((method, "cold"), []).append(answered(request, f"{tmp}/cold-{method[:4]}-{i}"))
            timings.setdefault((method, "warm"), []).append(answered(request, f"{tmp}/warm"))
    emit_line("mcp", "python_startup", runs=runs, **ms_stats(python, digits=1))
    for (method, kind), values in timings.items():
        emit_line("mcp", "start_to_answer", request=method, cache=kind, runs=runs, **ms_stats(values, digits=1))


def time_to_initialize(runs: int) -> list[float]:
    """Seconds from spawning `hivemind-app mcp` to its answer to `initialize`."""
    import subprocess

    timings = []
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [console(), "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()
        proc.stdout.readline()
        timings.append(time.perf_counter() - started)
        proc.kill()
        proc.wait()
    return timings


HOOK_PAYLOADS = {
    "SessionStart": {"hook_event_name": "SessionStart", "source": "startup", "cwd": "/home/me/src/hivemind-app"},
    "UserPromptSubmit": {"hook_event_name": "UserPromptSubmit", "prompt": "Fix the flaky reconnect test"},
    "PostToolUse": {
        "hook_event_name": "PostToolUse",
        "tool_name": "Edit",
        "tool_input": {"file_path": "/home/me/src/hivemind-app/tests/hub/test_sync.py", "old_string": "a"},
        "tool_response": {"filePath": "/home/me/src/hivemind-app/tests/hub/test_sync.py", "success": True},
    },
    "Stop": {"hook_event_name": "Stop", "stop_hook_active": False},
}


def hook_timings(runs: int) -> dict[str, list[float]]:
    """Seconds for `hivemind-app hook EVENT` to run to its end, interpreter start included, as Claude Code waits."""
    import subprocess

    timings: dict[str, list[float]] = {}
    for event, body in HOOK_PAYLOADS.items():
        payload = json.dumps({"session_id": "bench-session", "transcript_path": "/tmp/t.jsonl", "cwd": "/tmp", **body})
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run([console(), "hook", event], input=payload.encode(), capture_output=True, check=True)
            timings.setdefault(event, []).append(time.perf_counter() - started)
            if done.stderr:
                raise RuntimeError(f"{event} hook warned: {done.stderr.decode()}")
    return timings


async def stdio_recalls(queries: list[str]) -> list[float]:
    from mcp import Client, StdioServerParameters

    env = {k: v for k, v in os.environ.items() if k.startswith(("HIVEMIND_", "HF_", "PATH", "HOME"))}
    params = StdioServerParameters(command=console(), args=["mcp"], env=env)
    timings = []
    async with Client(params, read_timeout_seconds=300) as client:
        await client.call_tool("memory_recall", {"query": "warm up the model"})
        for query in queries:
            started = time.perf_counter()
            result = await client.call_tool("memory_recall", {"query": query, "limit": 10})
            timings.append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result.content
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--start-only", action="store_true", help="time the server's start alone (see above)")
    args = parser.parse_args()
    if args.start_only:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ.update({"HIVEMIND_CONFIG": f"{tmp}/config.toml", "HIVEMIND_NODE__PORT": "0"})
            start_timings(args.starts, tmp)
        return

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            {
                "HIVEMIND_DATA_DIR": f"{tmp}/data",
                "HIVEMIND_CONFIG": f"{tmp}/config.toml",
                "HIVEMIND_NODE__PORT": "0",
                "HF_HUB_OFFLINE": "1",
            }
        )
        starts = time_to_initialize(args.starts)
        emit(metric="start_to_initialize_s", p50=round(statistics.median(starts), 3), max=round(max(starts), 3))

        notes = load_corpus(args.n)
        vectors = all_vectors(notes, real_vectors(notes[: min(3000, args.n)], DEFAULT_SEED), DEFAULT_SEED)
        open_store(Path(tmp) / "data", notes, vectors, 1000)
        rng = random.Random(7)
        queries = [rng.choice(notes).query for _ in range(args.queries)]

        with Hive(load_settings()) as hive:
            hive.search_memory("warm up the model")
            direct = []
            for query in queries:
                started = time.perf_counter()
                hive.search_memory(query, limit=10)
                direct.append((time.perf_counter() - started) * 1000)
            # both sides embed each query for real: empty the query-embedding cache the facade just filled
            hive.parts.db.conn.execute("DELETE FROM embedding_cache")
        for event, values in hook_timings(args.starts).items():
            p50, worst = round(statistics.median(values), 3), round(max(values), 3)
            emit(metric="hook_s", event=event, n=args.n, p50=p50, max=worst)
        over_stdio = asyncio.run(stdio_recalls(queries))
        emit(
            metric="memory_recall_ms",
            n=args.n,
            mode="hybrid",
            stdio_p50=round(statistics.median(over_stdio), 2),
            stdio_p99=pct(over_stdio, 99),
            facade_p50=round(statistics.median(direct), 2),
            facade_p99=pct(direct, 99),
        )


if __name__ == "__main__":
    main()
