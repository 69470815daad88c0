"""Front ends reach the hive only through `Hive`'s methods: never its parts (store, hub, services)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONT_ENDS = ["cli", "claude", "tui", "nodes"]
# Tests of the core's own parts may build and inspect them; tests of front ends may not.
CORE_TESTS = ["store", "hub", "ml", "services", "retrieval", "trust"]
PARTS = {"parts", "_parts"}
PART_NAMES = {"db", "memories", "hub", "local", "learning"}


def _reach_ins(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value.id if isinstance(node.value, ast.Name) else None
        if node.attr in PARTS or (owner in {"hive", "self.hive"} and node.attr in PART_NAMES):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node.value, ast.Attribute) and node.value.attr == "hive" and node.attr in PART_NAMES:
            found.append(f"{path.name}:{node.lineno} .hive.{node.attr}")
    return found


def test_front_end_modules_use_only_the_facades_methods() -> None:
    files = [p for area in FRONT_ENDS for p in (ROOT / "hivemind_app" / area).rglob("*.py")]
    assert len(files) > 20
    assert [hit for p in files for hit in _reach_ins(p)] == []


def test_front_end_tests_use_only_the_facades_methods() -> None:
    files = [
        p
        for p in (ROOT / "tests").rglob("test_*.py")
        if p.relative_to(ROOT / "tests").parts[0] not in CORE_TESTS and p.name != "test_facade.py"
    ]
    assert len(files) > 20
    assert [hit for p in files for hit in _reach_ins(p)] == []


def test_the_check_sees_a_reach_in(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f(hive):\n    return hive.db, hive.parts.store, self.hive.hub, hive.status()\n")
    assert len(_reach_ins(probe)) == 3
