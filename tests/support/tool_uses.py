"""Realistic successful tool uses for the learning loop: a dozen developer tools, requests phrased many ways.

Each entry has the learning queue's fields. Arguments are taken from the request (a path, a revision, a
package name), so the model must both pick the tool and copy the right words into its arguments.
Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

PATHS = [
    "src/app.py",
    "src/api/routes.py",
    "hivemind/store.py",
    "lib/parser.ts",
    "cmd/server/main.go",
    "tests/test_api.py",
    "tests/test_sync.py",
    "README.md",
    "setup.cfg",
    "docs/index.md",
    "web/index.html",
    "src/utils/dates.py",
    "pkg/cache/lru.go",
    "app/models/user.rb",
    "scripts/deploy.sh",
    "src/lib.rs",
]
DIRS = ["src", "tests", "docs", "scripts", "src/api", "pkg/cache", "web", "migrations", "bench", "app/models"]
PACKAGES = ["requests", "numpy", "pandas", "httpx", "pydantic", "rich", "pytest-cov", "fastapi", "torch", "redis"]
SYMBOLS = [
    "parse_config",
    "def main",
    "class Session",
    "TODO",
    "load_settings",
    "retry_with_backoff",
    "handle_request",
    "useEffect",
    "fn spawn",
    "import asyncio",
    "SELECT count",
    "api_key",
]
TOPICS = [
    "pytorch benchmarks",
    "the redis outage",
    "flaky sync tests",
    "the login bug",
    "docker build caching",
    "the release checklist",
    "sqlite locking",
    "the embedding model switch",
    "memory leaks in the worker",
]
URLS = [
    "http://localhost:8080/health",
    "http://127.0.0.1:5000/api/items",
    "http://localhost:3000/login",
    "http://localhost:9090/metrics",
    "http://127.0.0.1:8000/docs",
]
BRANCHES = ["main", "develop", "feature/search", "fix/login", "release-1.2"]
NUMBERS = {1: "one", 2: "two", 3: "three", 5: "five", 10: "ten"}


def _rev(rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    n = rng.choice([1, 2, 3, 5])
    return {"rev": f"HEAD~{n}"}, {"n": str(n), "word": NUMBERS[n]}


def _path(choices: list[str]) -> Callable[[random.Random], tuple[dict[str, Any], dict[str, str]]]:
    def pick(rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
        value = rng.choice(choices)
        return {"path": value}, {"path": value}

    return pick


def _single(key: str, choices: list[str]) -> Callable[[random.Random], tuple[dict[str, Any], dict[str, str]]]:
    def pick(rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
        value = rng.choice(choices)
        return {key: value}, {key: value}

    return pick


def _count(rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    n = rng.choice([1, 2, 3, 5, 10])
    return {"limit": n}, {"n": str(n), "word": NUMBERS[n]}


def _nothing(rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    return {}, {}


def _pid(rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    pid = rng.randint(1000, 65000)
    return {"pid": pid}, {"pid": str(pid)}


TOOLS: dict[str, tuple[list[str], Callable[[random.Random], tuple[dict[str, Any], dict[str, str]]]]] = {
    "git_diff": (
        [
            "show me what changed in the last {word} commits",
            "what did the last {n} commits change",
            "diff against HEAD~{n}",
            "what changed since {n} commits ago?",
            "show the diff of the last {word} commits",
        ],
        _rev,
    ),
    "git_log": (
        [
            "list the last {word} commits",
            "show me the {n} most recent commits",
            "git log, last {n} entries",
            "what are the latest {n} commits?",
            "print the commit history, {word} entries",
        ],
        _count,
    ),
    "git_status": (
        [
            "which files have I modified?",
            "what is uncommitted right now",
            "show the working tree status",
            "do I have unstaged changes?",
            "anything not committed yet?",
            "git status please",
        ],
        _nothing,
    ),
    "git_checkout": (
        [
            "switch to the {branch} branch",
            "check out {branch}",
            "move me onto branch {branch}",
            "go to {branch}",
            "change branch to {branch}",
        ],
        _single("branch", BRANCHES),
    ),
    "run_tests": (
        [
            "run the tests in {path}",
            "execute {path} with pytest",
            "does {path} pass?",
            "run pytest on {path}",
            "check that the tests in {path} still pass",
        ],
        _path([p for p in PATHS if "test" in p]),
    ),
    "read_file": (
        [
            "open {path}",
            "show me the contents of {path}",
            "what is in {path}?",
            "print {path}",
            "let me see {path}",
            "read {path} for me",
        ],
        _path(PATHS),
    ),
    "format_code": (
        [
            "reformat {path}",
            "run the formatter on {path}",
            "fix the formatting of {path}",
            "tidy up the style in {path}",
            "apply black to {path}",
        ],
        _path([p for p in PATHS if p.endswith((".py", ".ts", ".go", ".rs"))]),
    ),
    "list_dir": (
        [
            "what's in the {path} folder",
            "list the files under {path}",
            "ls {path}",
            "show the directory {path}",
            "which files does {path} contain?",
        ],
        _path(DIRS),
    ),
    "search_code": (
        [
            "where is {pattern} used",
            "find {pattern} in the code",
            "grep for {pattern}",
            "search the repo for {pattern}",
            "which files mention {pattern}?",
        ],
        _single("pattern", SYMBOLS),
    ),
    "install_package": (
        [
            "add {name} to the project",
            "pip install {name}",
            "install the {name} package",
            "I need {name}, install it",
            "add a dependency on {name}",
        ],
        _single("name", PACKAGES),
    ),
    "http_get": (
        [
            "fetch {url}",
            "is {url} answering?",
            "call {url} and show me the response",
            "curl {url}",
            "GET {url}",
        ],
        _single("url", URLS),
    ),
    "kill_process": (
        [
            "stop process {pid}",
            "kill pid {pid}",
            "terminate the process with id {pid}",
            "process {pid} is stuck, end it",
            "send SIGTERM to {pid}",
        ],
        _pid,
    ),
    "search_memory": (
        [
            "what was I doing with {query}?",
            "remind me about {query}",
            "what do my notes say about {query}",
            "recall what we decided on {query}",
            "anything in memory about {query}?",
        ],
        _single("query", TOPICS),
    ),
}


def tool_uses(count: int, seed: int = 0, failures: float = 0.1) -> list[dict[str, Any]]:
    """`count` learning-queue entries over the tools above, a fraction of them failed tool uses."""
    rng = random.Random(seed)
    names = sorted(TOOLS)
    entries = []
    for i in range(count):
        tool = names[i % len(names)] if i < len(names) else rng.choice(names)
        templates, arguments = TOOLS[tool]
        args, slots = arguments(rng)
        query = rng.choice(templates).format(**slots)
        ok = rng.random() >= failures
        entries.append(
            {
                "user_query": query,
                "tool_used": tool,
                "tool_input": json.dumps(args),
                "result": f"{tool} finished" if ok else f"{tool} failed: exit status 1",
                "success": ok,
                "timestamp": 1_790_000_000.0 + i,
            }
        )
    return entries


def shuffled_labels(entries: list[dict[str, Any]], seed: int = 1) -> list[dict[str, Any]]:
    """The same requests with tools and arguments dealt out at random: nothing true left to learn."""
    rng = random.Random(seed)
    answers = [(e["tool_used"], e["tool_input"]) for e in entries]
    rng.shuffle(answers)
    return [{**e, "tool_used": t, "tool_input": a} for e, (t, a) in zip(entries, answers, strict=True)]
