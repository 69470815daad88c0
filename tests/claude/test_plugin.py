"""The Claude Code plugin in `.claude-plugin/`: the same hooks as `claude install`, a launcher that finds
hivemind-app, and manifests the real `claude plugin validate` accepts (installing and running it is
tests/claude/test_e2e_claude.py's part)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hivemind_app.claude.registration import HOOKS, hook_entry
from tests.support.claude_cli import REPO_ROOT, ClaudeHome, require_claude, run_cli

PLUGIN = REPO_ROOT / ".claude-plugin"
LAUNCH = PLUGIN / "launch"


def test_the_plugin_declares_every_hook_claude_install_writes_with_the_same_options() -> None:
    manifest = json.loads((PLUGIN / "plugin.json").read_text())
    launcher = '"${CLAUDE_PLUGIN_ROOT}/.claude-plugin/launch"'
    expected = {}
    for spec in HOOKS:
        entry = hook_entry(spec, ["X"])
        entry["hooks"][0]["command"] = f"{launcher} hook {spec.event}"
        expected[spec.event] = [entry]
    assert manifest["hooks"] == expected
    assert manifest["mcpServers"] == {"hivemind": {"command": "${CLAUDE_PLUGIN_ROOT}/.claude-plugin/launch",
                                                   "args": ["mcp"]}}
    market = json.loads((PLUGIN / "marketplace.json").read_text())
    assert [(p["name"], p["source"]) for p in market["plugins"]] == [(manifest["name"], "./")]


def test_claude_plugin_validate_accepts_the_plugin_and_the_marketplace_without_a_warning(tmp_path: Path) -> None:
    require_claude()
    home = ClaudeHome.create(tmp_path / "home")
    for target in (REPO_ROOT, PLUGIN / "plugin.json"):
        result = run_cli(["plugin", "validate", "--strict", str(target)], home=home, cwd=tmp_path)
        assert result.ok and "Validation passed" in result.stdout, result.describe()


def fake_app(path: Path) -> Path:
    """An executable that says where it is and what it was given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "{path} $*"\n')
    path.chmod(0o755)
    return path


def launch(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The launcher run from a copy of the plugin at tmp_path/plugin (the repository's own may have a .venv)."""
    copy = tmp_path / "plugin" / ".claude-plugin" / "launch"
    if not copy.exists():
        copy.parent.mkdir(parents=True)
        shutil.copy2(LAUNCH, copy)
    base = {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(copy), *args], env={**base, **env}, capture_output=True, text=True, timeout=30)


def test_the_launcher_prefers_hivemind_app_then_the_checkouts_venv_then_path_then_pipxs_places(
    tmp_path: Path,
) -> None:
    explicit = fake_app(tmp_path / "explicit" / "hivemind-app")
    checkout = fake_app(tmp_path / "plugin" / ".venv" / "bin" / "hivemind-app")
    on_path = fake_app(tmp_path / "path-bin" / "hivemind-app")
    pipx_bin = fake_app(tmp_path / "home" / ".local" / "bin" / "hivemind-app")
    path = f"{on_path.parent}:/usr/bin:/bin"

    assert launch(tmp_path, "hook", "Stop", env={"HIVEMIND_APP": str(explicit), "PATH": path}).stdout == (
        f"{explicit} hook Stop\n"
    )
    assert launch(tmp_path, "mcp", env={"PATH": path}).stdout == f"{checkout} mcp\n"
    checkout.unlink()
    assert launch(tmp_path, "mcp", env={"PATH": path}).stdout == f"{on_path} mcp\n"
    assert launch(tmp_path, "mcp", env={}).stdout == f"{pipx_bin} mcp\n"  # ~/.local/bin not on PATH
    pipx_bin.unlink()
    venv = fake_app(tmp_path / "pipx-home" / "venvs" / "hivemind-app" / "bin" / "hivemind-app")
    assert launch(tmp_path, "mcp", env={"PIPX_HOME": str(tmp_path / "pipx-home")}).stdout == f"{venv} mcp\n"


@pytest.mark.parametrize(("args", "status"), [(("hook", "PostToolUse"), 0), (("mcp",), 127)])
def test_without_hivemind_app_the_launcher_says_what_to_do_and_a_hook_still_exits_zero(
    tmp_path: Path, args: tuple[str, ...], status: int
) -> None:
    result = launch(tmp_path, *args, env={})
    assert result.returncode == status
    assert "hivemind-app not found" in result.stderr and "HIVEMIND_APP" in result.stderr


def test_a_hivemind_app_setting_that_is_not_an_executable_is_reported_not_skipped(tmp_path: Path) -> None:
    fake_app(tmp_path / "path-bin" / "hivemind-app")
    result = launch(tmp_path, "mcp", env={"HIVEMIND_APP": "/nowhere/hivemind-app",
                                          "PATH": f"{tmp_path / 'path-bin'}:/usr/bin"})
    assert result.returncode == 127 and result.stdout == ""
    assert "HIVEMIND_APP=/nowhere/hivemind-app is not an executable" in result.stderr


def test_the_launcher_is_executable_in_the_repository() -> None:
    assert os.access(LAUNCH, os.X_OK)
    mode = subprocess.run(["git", "ls-files", "-s", str(LAUNCH)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert mode.stdout.startswith("100755"), mode.stdout  # what a clone gets
