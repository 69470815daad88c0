"""Run the real Claude Code CLI (`claude -p`) against the loopback Messages API stand-in, fully isolated.

The CLI is the npm package pinned below, installed into `.ci/node` (git-ignored) by `.ci/run`, which runs
`python -m tests.support.claude_cli --install` where `npm` exists, that is

    npm install --prefix .ci/node --save-exact --no-audit --no-fund @anthropic-ai/claude-code@2.1.328

(the package's postinstall step puts the native binary in place; with --ignore-scripts `claude` is a stub that
exits 1.)

Tests call `require_claude()`: it skips, naming the reason, only where node is absent (the CLI cannot be
installed there); where node exists a missing or wrong CLI is a failure that names the install command, so a
CI run cannot pass with the end-to-end tests silently skipped. Every run gets its own HOME and CLAUDE_CONFIG_DIR
(nothing from the developer's ~/.claude leaks in, nothing is written there), a clean environment (not the
caller's) and the variables that keep Claude Code off the network: with them a `-p` run makes no DNS lookup and
no connection other than to ANTHROPIC_BASE_URL (measured: docs/claude-code-internals.md).

    home = ClaudeHome.create(tmp_path / "claude-home")
    with MessagesAPI([text("hi")]) as api:
        run = run_claude("say hi", home=home, cwd=project, api=api)
    assert run.ok, run.describe()
    assert run.result["result"] == "hi"
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CLAUDE_CODE_VERSION = "2.1.328"
REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_PREFIX = REPO_ROOT / ".ci" / "node"
INSTALL_COMMAND = (
    f"npm install --prefix .ci/node --save-exact --no-audit --no-fund @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"
)

# Keep Claude Code off the network (all but ANTHROPIC_BASE_URL). CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC alone
# already stops every lookup a `-p` run makes (api.anthropic.com for telemetry, feature flags, the `HEAD /api/hello`
# reachability probe); the others are belt and braces for what it may not cover in later versions or other
# subcommands (auto-update, error reporting, the official plugin marketplace's auto-install).
OFFLINE_ENV: dict[str, str] = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_UPDATES": "1",
    "DO_NOT_TRACK": "1",
    "CLAUDE_CODE_DISABLE_FEATURE_FLAGS": "1",
    "DISABLE_GROWTHBOOK": "1",
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
    "DISABLE_INSTALLATION_CHECKS": "1",
    "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
}

# Inherited from the caller's environment when set (nothing else is: no ANTHROPIC_*, no CLAUDE_*, no proxies).
PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


class _HasBaseUrl(Protocol):
    @property
    def base_url(self) -> str: ...


# ------------------------------------------------------------------------------------------------------- binary


def binary_path() -> Path:
    """Where `.ci/run` installs the CLI (the path need not exist)."""
    return NODE_PREFIX / "node_modules" / ".bin" / "claude"


@functools.cache
def installed_version(binary: Path | None = None) -> str | None:
    """`claude --version`'s number, or None when it does not run (e.g. npm skipped the postinstall step that puts
    the native binary in place: `bin/claude.exe` then is a stub)."""
    path = binary or binary_path()
    if not (path.exists() and os.access(path, os.X_OK)):
        return None
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **OFFLINE_ENV})
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.stdout.split()
    return words[0] if out.returncode == 0 and words else None


def claude_binary() -> Path | None:
    """The pinned Claude Code CLI when it is installed and runs, else None."""
    path = binary_path()
    return path if installed_version(path) is not None else None


def claude_missing_reason() -> str | None:
    """None when the CLI is usable; otherwise the reason to give `pytest.skip` (names the install command)."""
    path = binary_path()
    if not path.exists():
        return f"Claude Code CLI not installed at {path.relative_to(REPO_ROOT)} (run: {INSTALL_COMMAND})"
    version = installed_version(path)
    if version is None:
        return (
            f"Claude Code CLI at {path.relative_to(REPO_ROOT)} does not run (`claude --version` failed; without its"
            " postinstall step it is a stub: node .ci/node/node_modules/@anthropic-ai/claude-code/install.cjs)"
        )
    if version != CLAUDE_CODE_VERSION:
        return f"Claude Code CLI is {version}, the tests are written for {CLAUDE_CODE_VERSION} (run: {INSTALL_COMMAND})"
    return None


def require_claude() -> Path:
    """The pinned CLI, installed into .ci/node on first need where npm exists (so the README's two set-up
    commands stay enough); otherwise `pytest.skip` where node is absent, `pytest.fail` (naming the fix) where the
    install did not give a usable CLI."""
    import pytest

    reason = claude_missing_reason()
    if reason is not None and shutil.which("node") is not None and shutil.which("npm") is not None:
        _install_once()
        reason = claude_missing_reason()
    if reason is None:
        binary = claude_binary()
        assert binary is not None
        return binary
    if shutil.which("node") is None:
        pytest.skip(f"node is not installed, so the Claude Code CLI cannot be ({reason})")
    pytest.fail(f"node is installed but the pinned Claude Code CLI is not usable: {reason}", pytrace=False)


@functools.cache
def _install_once() -> int:
    """One npm install per test run, however many tests ask (its output goes to the test's captured stderr)."""
    return install()


def install() -> int:
    """`.ci/run`'s step: install the pinned CLI into .ci/node with npm, then check that it runs (exit status)."""
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: the Claude Code CLI is not installed (its tests will be skipped)", file=sys.stderr)
        return 0
    done = subprocess.run([npm, *INSTALL_COMMAND.split()[1:]], cwd=REPO_ROOT)
    if done.returncode != 0:
        return done.returncode
    installed_version.cache_clear()
    reason = claude_missing_reason()
    print(reason or f"Claude Code {CLAUDE_CODE_VERSION} installed at {binary_path().relative_to(REPO_ROOT)}")
    return 1 if reason else 0


# --------------------------------------------------------------------------------------------------------- home


@dataclass(frozen=True)
class ClaudeHome:
    """An isolated HOME with its own CLAUDE_CONFIG_DIR (`<home>/.claude`): user settings, ~/.claude.json,
    plugins, transcripts (`projects/<cwd with / as ->/<session>.jsonl`) all live under it."""

    home: Path

    @classmethod
    def create(cls, home: Path) -> ClaudeHome:
        home.mkdir(parents=True, exist_ok=True)
        (home / ".claude").mkdir(exist_ok=True)
        (home / "tmp").mkdir(exist_ok=True)
        return cls(home)

    @property
    def config_dir(self) -> Path:
        return self.home / ".claude"

    @property
    def user_settings(self) -> Path:
        return self.config_dir / "settings.json"

    def write_user_settings(self, settings: Mapping[str, Any]) -> Path:
        self.user_settings.write_text(json.dumps(settings, indent=2) + "\n")
        return self.user_settings

    def transcripts(self) -> list[Path]:
        return sorted((self.config_dir / "projects").glob("*/*.jsonl"))

    def env(self, base_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment for a claude process (not merged with os.environ)."""
        env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.setdefault("LANG", "C.UTF-8")
        env.update(
            {
                "HOME": str(self.home),
                "CLAUDE_CONFIG_DIR": str(self.config_dir),
                "TMPDIR": str(self.home / "tmp"),
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "XDG_CACHE_HOME": str(self.home / ".cache"),
                "XDG_DATA_HOME": str(self.home / ".local" / "share"),
                "ANTHROPIC_BASE_URL": base_url,
                "ANTHROPIC_API_KEY": "test",
                "TERM": "dumb",
                "NO_COLOR": "1",
                **OFFLINE_ENV,
            }
        )
        if os.geteuid() == 0:
            env["IS_SANDBOX"] = "1"  # as root, --dangerously-skip-permissions is refused without it
        env.update(extra or {})
        return env


# --------------------------------------------------------------------------------------------- project files


def write_project_settings(project: Path, settings: Mapping[str, Any], local: bool = False) -> Path:
    """`.claude/settings.json` (or settings.local.json) of a project: hooks, permissions, env."""
    path = project / ".claude" / ("settings.local.json" if local else "settings.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


def write_mcp_json(project: Path, servers: Mapping[str, Mapping[str, Any]]) -> Path:
    """The project's `.mcp.json`: {"mcpServers": {name: {"command", "args", "env"}}}. In `-p` mode its servers
    start without the approval prompt an interactive session would show."""
    path = project / ".mcp.json"
    path.write_text(json.dumps({"mcpServers": dict(servers)}, indent=2) + "\n")
    return path


def command_hook(command: str, *, timeout: float | None = None, is_async: bool = False) -> dict[str, Any]:
    """One hook entry: {"type": "command", "command": ..., "timeout": seconds, "async": true}."""
    hook: dict[str, Any] = {"type": "command", "command": command}
    if timeout is not None:
        hook["timeout"] = timeout
    if is_async:
        hook["async"] = True
    return hook


def hooks_settings(commands: Mapping[str, str | Sequence[dict[str, Any]]], matcher: str | None = "*") -> dict[str, Any]:
    """{"hooks": {event: [{"matcher": "*", "hooks": [...]}]}} from {event: command or hook entries}.

    The matcher applies to the tool events (PreToolUse, PostToolUse, PostToolUseFailure, PermissionRequest);
    other events take none."""
    tool_events = {"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest"}
    hooks: dict[str, list[dict[str, Any]]] = {}
    for event, spec in commands.items():
        entries = [command_hook(spec)] if isinstance(spec, str) else [dict(h) for h in spec]
        group: dict[str, Any] = {"hooks": entries}
        if matcher is not None and event in tool_events:
            group = {"matcher": matcher, **group}
        hooks[event] = [group]
    return {"hooks": hooks}


# ---------------------------------------------------------------------------------------------------------- runs


@dataclass
class ClaudeRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def result(self) -> dict[str, Any]:
        """The `--output-format json` result object ({"result", "session_id", "is_error", "num_turns", ...})."""
        parsed = json.loads(self.stdout)
        if not isinstance(parsed, dict):
            raise ValueError(f"not a result object: {self.stdout[:200]}")
        return parsed

    @property
    def events(self) -> list[dict[str, Any]]:
        """`--output-format stream-json` lines, parsed."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip().startswith("{")]

    def describe(self) -> str:
        return (f"claude {' '.join(self.args[1:])!r} exited {self.returncode} after {self.wall_s:.1f}s\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}")


def run_cli(
    args: Sequence[str],
    *,
    home: ClaudeHome,
    cwd: Path,
    base_url: str = "http://127.0.0.1:9",
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
    nice: int | None = 10,
) -> ClaudeRun:
    """Any `claude` subcommand (`mcp list`, `plugin validate ...`) in the isolated home. base_url defaults to a
    closed loopback port for commands that make no model request."""
    binary = claude_binary()
    if binary is None:
        raise RuntimeError(claude_missing_reason() or "Claude Code CLI unavailable")
    command = [str(binary), *args]
    prefix = ["nice", "-n", str(nice)] if nice is not None and os.name == "posix" else []
    started = time.monotonic()
    proc = subprocess.run(
        [*prefix, *command],
        cwd=cwd,
        env=home.env(base_url, env),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return ClaudeRun(command, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def run_claude(
    prompt: str,
    *,
    home: ClaudeHome,
    cwd: Path,
    api: _HasBaseUrl | str,
    allowed_tools: Iterable[str] | None = None,
    output_format: str = "json",
    session_id: str | None = None,
    mcp_config: Path | None = None,
    strict_mcp_config: bool = False,
    plugin_dirs: Iterable[Path] = (),
    permission_mode: str | None = None,
    debug_file: Path | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> ClaudeRun:
    """`claude -p PROMPT` in `cwd` against the stand-in (`api`, or a base URL).

    Permissions: with `allowed_tools` None every tool is allowed (`--dangerously-skip-permissions`; IS_SANDBOX=1 is
    set when running as root); otherwise those (`--allowedTools`, e.g. ["mcp__hivemind__memory_store"]) plus what
    the permission mode allows by itself (the default mode also runs read-only Bash such as `echo`; pass
    permission_mode="dontAsk" to deny everything not listed). ToolSearch needs no permission.
    debug_file: `--debug-file` (Claude Code's own log: hooks run and their output, MCP connections, retries).
    `--plugin-dir` loads a plugin folder for this run only, without a marketplace.
    stream-json output needs --verbose, which is added."""
    base_url = api if isinstance(api, str) else api.base_url
    args = ["-p", prompt, "--output-format", output_format]
    if output_format == "stream-json":
        args.append("--verbose")
    if allowed_tools is None:
        args.append("--dangerously-skip-permissions")
    else:
        args += ["--allowedTools", ",".join(allowed_tools)]
    if permission_mode is not None:
        args += ["--permission-mode", permission_mode]
    if session_id is not None:
        args += ["--session-id", session_id]
    if debug_file is not None:
        args += ["--debug-file", str(debug_file)]
    if mcp_config is not None:
        args += ["--mcp-config", str(mcp_config)]
    if strict_mcp_config:
        args.append("--strict-mcp-config")
    for plugin_dir in plugin_dirs:
        args += ["--plugin-dir", str(plugin_dir)]
    args += list(extra_args)
    return run_cli(args, home=home, cwd=cwd, base_url=base_url, env=env, timeout=timeout)


if __name__ == "__main__":
    if sys.argv[1:] != ["--install"]:
        sys.exit(f"usage: python -m tests.support.claude_cli --install\n(runs: {INSTALL_COMMAND})")
    sys.exit(install())
