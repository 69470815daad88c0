"""The real Claude Code CLI (`claude -p`, the pinned npm package) driving hivemind-app end to end.

Claude Code talks to the scripted Messages API stand-in on loopback (tests/support/messages_api.py), in an
isolated HOME and CLAUDE_CONFIG_DIR, with the variables that keep it off the network: nothing leaves
127.0.0.1. What reaches hivemind-app is what a user's Claude Code sends: real hook payloads, real MCP
handshakes and tool calls (through ToolSearch, as 2.1.x defers MCP tools).

- set up by `hivemind-app claude install --user`: a session stores a fact through `memory_store`, its tool
  uses land in the learning queue, and a second session gets the fact injected at SessionStart and recalls it;
- set up as a plugin (`claude plugin marketplace add <repo>` + `claude plugin install`): its hooks and its MCP
  server run through the launcher, which takes the first of: $HIVEMIND_APP, the plugin folder's own
  `.venv/bin/hivemind-app` (the marketplace here is the repository, so in a checkout with a `.venv`, as in CI,
  that one wins), hivemind-app on PATH, pipx's.

Each `claude -p` run costs a few seconds; `memory_store` needs the embedding model converted once per pytest run
(the `minilm` fixture does it, shared with the ranking tests), hence `slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from tests.support.claude_cli import REPO_ROOT, ClaudeHome, require_claude, run_claude, run_cli
from tests.support.console import console_script
from tests.support.messages_api import MessagesAPI, mcp_tool, mcp_tool_name, text

pytestmark = pytest.mark.slow
EXE = console_script()
FACT = "The staging Postgres database listens on port 5433"


@pytest.fixture
def home(tmp_path: Path) -> ClaudeHome:
    require_claude()
    return ClaudeHome.create(tmp_path / "claude-home")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    path.mkdir()
    return path


def hivemind_env(home: ClaudeHome) -> dict[str, str]:
    """What Claude Code's children (hooks, the MCP server) need beyond its own isolated environment: this test's
    data dir and settings (isolated_env), the interpreter's import path, and hivemind-app on PATH (used by the
    launcher only where the repository has no `.venv`: a checkout's `.venv` comes first)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("HIVEMIND_") or k == "PYTHONPATH"}
    env["PATH"] = f"{Path(EXE).parent}:{home.env('')['PATH']}"
    return env


def hivemind(home: ClaudeHome, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home.home), "CLAUDE_CONFIG_DIR": str(home.config_dir),
           "PATH": hivemind_env(home)["PATH"]}
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=120)


def applied_learning_entries() -> list[tuple[str, str | None]]:
    assert hivemind_drain().returncode == 0
    with Hive(Settings(), embedder=None) as hive:
        return [(entry.tool_used, entry.session_id) for entry in hive.learning_entries()]


def hivemind_drain() -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, "claude", "drain-hooks"], capture_output=True, text=True, timeout=120)


def test_claude_code_stores_a_fact_and_a_later_session_gets_it_injected_and_recalls_it(
    home: ClaudeHome, project: Path, isolated_env: Path, minilm: object
) -> None:
    data_dir = isolated_env  # minilm: the run's converted model, which the MCP server's memory_store then finds
    installed = hivemind(home, "claude", "install", "--user")
    assert installed.returncode == 0, installed.stderr
    handshakes = json.loads((data_dir / "mcp-handshake.json").read_text())  # warmed for Claude Code's first start
    assert any("supportedVersions" in answer.get("result", {}) for answer in handshakes.values()), handshakes
    env = hivemind_env(home)

    store = mcp_tool("hivemind", "memory_store", {"text": FACT, "tags": ["infra"]})
    with MessagesAPI([*store, text("Stored.")]) as api:
        first = run_claude("remember: staging postgres is on 5433", home=home, cwd=project, api=api, env=env,
                           timeout=180)
    assert first.ok and api.exhausted == 0, first.describe() + "\n".join(api.summary())
    stored = json.loads(api.main_requests[-1].tool_results()[0]["content"])
    assert stored["created"] is True, stored
    session = first.result["session_id"]
    # every tool Claude Code ran reached the learning queue through the (spooled) PostToolUse hook
    entries = applied_learning_entries()
    assert ("mcp__hivemind__memory_store", session) in entries and ("ToolSearch", session) in entries, entries

    recall = mcp_tool("hivemind", "memory_recall", {"query": "staging postgres port", "mode": "keyword"})
    with MessagesAPI([*recall, text("Port 5433.")]) as api:
        second = run_claude("which port is staging postgres on?", home=home, cwd=project, api=api, env=env)
    assert second.ok and api.exhausted == 0, second.describe() + "\n".join(api.summary())
    injected = "\n".join(api.main_requests[0].system_messages())
    assert "SessionStart hook additional context" in injected and FACT in injected, injected[:3000]
    recalled = json.loads(api.main_requests[-1].tool_results()[0]["content"])
    assert recalled["results"][0]["id"] == stored["id"], recalled
    assert second.result["session_id"] != session


def test_the_plugin_installs_from_the_repository_and_its_hooks_and_server_run(
    home: ClaudeHome, project: Path
) -> None:
    with Hive(Settings(), embedder=None) as hive:  # keyword search needs no model
        hive.store_memory(FACT)
    added = run_cli(["plugin", "marketplace", "add", str(REPO_ROOT)], home=home, cwd=project)
    assert added.ok, added.describe()
    installed = run_cli(["plugin", "install", "hivemind@hivemind-app"], home=home, cwd=project)
    assert installed.ok and "Successfully installed plugin: hivemind@hivemind-app" in installed.stdout, (
        installed.describe()
    )
    env = hivemind_env(home)

    tool = mcp_tool("hivemind", "memory_recall", {"query": "staging postgres", "mode": "keyword"}, plugin="hivemind")
    with MessagesAPI([*tool, text("5433")]) as api:
        run = run_claude("which port is staging on?", home=home, cwd=project, api=api, env=env)

    assert run.ok and api.exhausted == 0, run.describe() + "\n".join(api.summary())
    assert FACT in "\n".join(api.main_requests[0].system_messages())  # the plugin's SessionStart hook
    tool_name = mcp_tool_name("hivemind", "memory_recall", plugin="hivemind")
    assert tool_name == "mcp__plugin_hivemind_hivemind__memory_recall"
    recalled = json.loads(api.main_requests[-1].tool_results()[0]["content"])
    assert recalled["results"][0]["text"] == FACT
    used = [tool for tool, session in applied_learning_entries() if session == run.result["session_id"]]
    assert tool_name in used, used
    doctor = hivemind(home, "claude", "doctor")  # spawns the plugin's launcher, as Claude Code does
    assert "from the plugin hivemind@hivemind-app" in doctor.stdout, doctor.stdout + doctor.stderr
    assert f"{REPO_ROOT}/.claude-plugin/launch mcp answered initialize" in doctor.stdout, doctor.stdout
