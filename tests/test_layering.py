"""The core stays light and front-end free: DESIGN.md's layering, checked."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hivemind_app"
CORE = [
    "store", "hub", "ml", "services", "retrieval", "records", "trust", "config",
    "hive.py", "wiring.py", "seed.py", "errors.py", "content.py", "timespec.py", "importer.py",
    "sourcefiles.py",
]
HEAVY = ["torch", "transformers", "sentence_transformers", "onnxruntime", "llama_cpp", "peft", "textual", "mcp"]


def test_importing_the_core_loads_no_model_library_and_no_front_end() -> None:
    code = (
        "import sys, json\n"
        "import hivemind_app.hive, hivemind_app.store.memory_store, hivemind_app.ml.embedder\n"
        "import hivemind_app.hub.connection, hivemind_app.importer, hivemind_app.cli\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_never_import_textual_or_mcp_even_lazily() -> None:
    files = [
        p for entry in CORE for p in ([PACKAGE / entry] if entry.endswith(".py") else (PACKAGE / entry).rglob("*.py"))
    ]
    assert len(files) > 8
    offenders = {str(p.relative_to(PACKAGE)): sorted(_imports(p) & {"textual", "mcp"}) for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_front_ends_reach_sqlite_and_redis_only_through_the_facade() -> None:
    front_ends = [p for package in ("cli", "claude", "tui") for p in (PACKAGE / package).rglob("*.py")]
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(_imports(p) & {"apsw", "sqlite3", "redis", "sqlite_vec"})
        for p in front_ends
        if p.exists()
    }
    assert {k: v for k, v in offenders.items() if v} == {}
