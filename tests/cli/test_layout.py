"""The CLI package's shape: one module per area with `register_commands`, areas that never import each
other or anything private, only the facade's public face, and a start-up that loads no hive and no front end."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import click

import hivemind_app.cli

CLI = Path(hivemind_app.cli.__file__).parent
SHARED = {"__init__", "__main__", "common", "group"}
AREAS = sorted(p.stem for p in CLI.glob("*.py") if p.stem not in SHARED)
# Hive members that are its parts, not its interface: a front end never reaches into them.
HIVE_PARTS = {"hub", "db", "memories", "local", "learning"}


def _tree(name: str) -> ast.Module:
    return ast.parse((CLI / f"{name}.py").read_text())


def _imported(tree: ast.Module) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_each_area_registers_its_commands_and_they_all_reach_the_group() -> None:
    assert AREAS == ["claude", "config", "hive", "hub", "memories", "nodes", "status", "training", "watch"]
    registered: set[str] = set()
    for area in AREAS:
        module = getattr(hivemind_app.cli, area)
        group = click.Group("probe")
        module.register_commands(group)
        assert group.commands, area
        assert not registered & set(group.commands), area
        registered |= set(group.commands)
    assert registered == set(hivemind_app.cli.cli.commands)


def test_areas_import_only_the_shared_modules_and_nothing_private() -> None:
    for name in [*AREAS, *SHARED]:
        for module, names in _imported(_tree(name)):
            if module.startswith("hivemind_app.cli.") and name in AREAS:
                assert module in ("hivemind_app.cli.common", "hivemind_app.cli.group"), (name, module)
            if module.startswith("hivemind_app"):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                assert not private, (name, module, private)
            if name not in ("__init__", "__main__"):
                assert module != "hivemind_app.cli", (name, names)  # the package imports the areas, not back
    assert {m for m, _ in _imported(_tree("group")) if m.startswith("hivemind_app.cli")} == {"hivemind_app.cli.common"}
    assert not [m for m, _ in _imported(_tree("common")) if m.startswith("hivemind_app.cli")]


def test_the_cli_uses_only_the_public_face_of_the_hive() -> None:
    for name in [*AREAS, *SHARED]:
        for node in ast.walk(_tree(name)):
            if isinstance(node, ast.Attribute) and node.attr in HIVE_PARTS:
                owner = node.value
                is_hive = (isinstance(owner, ast.Name) and owner.id == "hive") or (
                    isinstance(owner, ast.Attribute) and owner.attr == "hive"
                )
                assert not is_hive, f"{name}.py:{node.lineno} reaches into hive.{node.attr}"


def test_starting_the_cli_loads_no_hive_no_front_end_and_no_area_s_heavy_module() -> None:
    heavy = ["hivemind_app.hive", "hivemind_app.store", "hivemind_app.hub", "hivemind_app.tui", "hivemind_app.nodes"]
    heavy += ["hivemind_app.claude", "hivemind_app.doctor", "hivemind_app.importer", "apsw", "redis"]
    code = f"import sys, json\nimport hivemind_app.cli\nprint(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
