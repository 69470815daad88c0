"""`claude install` / `uninstall` / `doctor`: hivemind's MCP server and hooks in Claude Code's own files.

Where Claude Code reads them (2.1.x, docs/claude-code-internals.md):
- user scope: hooks in `<config>/settings.json`, the MCP server in `.claude.json` (`mcpServers`), where
  `<config>` is `$CLAUDE_CONFIG_DIR` or `~/.claude`, and `.claude.json` is `$CLAUDE_CONFIG_DIR/.claude.json`
  or `~/.claude.json`;
- project scope: hooks in `<project>/.claude/settings.json`, the server in `<project>/.mcp.json`.

Invariants:
- every command is this installation's own executable, absolute (`install.this_installation()`), so PATH
  does not matter;
- installing is idempotent and keeps everything else in those files: ours are recognised by what they run
  (`.../hivemind-app hook EVENT`, `... -m hivemind_app mcp`, whichever installation wrote them) and replaced,
  never duplicated; a server named `hivemind` that is not ours is refused, not overwritten;
- uninstalling removes exactly those entries (an event, `hooks` or `mcpServers` left empty by it goes too, and a
  `.mcp.json` or project settings file left holding nothing is deleted; the one thing it cannot tell apart is
  an empty `hooks: {}` or event list that was there before install: it goes as well);
- a file that is not a JSON object is refused with nothing changed; writes are atomic (temp file + rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hivemind_app.errors import ConfigError
from hivemind_app.install import SCRIPT, this_installation

Scope = Literal["user", "project"]
SERVER_NAME = "hivemind"
PLUGIN_NAME = "hivemind"
HOOK_TIMEOUT_S = 10


@dataclass(frozen=True)
class HookSpec:
    event: str
    matcher: str | None = None  # tool events only
    is_async: bool = False  # Claude Code does not wait; only for hooks whose output nobody reads


# Async only where nothing is printed AND Claude Code lets the hook finish: in `claude -p` an async hook still
# running when the turn ends is killed (measured, docs/claude-code-internals.md), so Stop (which fires at the end
# of the turn) and the tool hooks (the last tool's hook races the turn's end) stay synchronous: spooled, they cost
# ~50 ms. An async SessionEnd hook runs to its end after `claude` exits.
HOOKS: tuple[HookSpec, ...] = (
    HookSpec("SessionStart"),
    HookSpec("UserPromptSubmit"),
    HookSpec("PostToolUse", matcher="*"),
    HookSpec("PostToolUseFailure", matcher="*"),
    HookSpec("Stop"),
    HookSpec("SessionEnd", is_async=True),
    HookSpec("PreCompact"),
)


@dataclass(frozen=True)
class Paths:
    scope: Scope
    settings: Path  # where the hooks go
    mcp: Path  # where the MCP server goes

    @classmethod
    def of(cls, scope: Scope, project: Path | None = None) -> Paths:
        if scope == "project":
            root = (project or Path.cwd()).resolve()
            return cls(scope, root / ".claude" / "settings.json", root / ".mcp.json")
        return cls(scope, claude_config_dir() / "settings.json", claude_json())


def claude_config_dir() -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".claude"


def claude_json() -> Path:
    """Claude Code's own state file, which holds user-scope MCP servers."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured).expanduser() / ".claude.json" if configured else Path.home() / ".claude.json"


# ---------------------------------------------------------------------------------------------------- entries


def hook_entry(spec: HookSpec, executable: list[str] | None = None) -> dict[str, Any]:
    command = shlex.join([*(executable or this_installation().executable), "hook", spec.event])
    hook: dict[str, Any] = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}
    if spec.is_async:
        hook["async"] = True
    block: dict[str, Any] = {"hooks": [hook]}
    if spec.matcher is not None:
        block = {"matcher": spec.matcher, **block}
    return block


def server_entry(executable: list[str] | None = None) -> dict[str, Any]:
    exe = executable or this_installation().executable
    return {"type": "stdio", "command": exe[0], "args": [*exe[1:], "mcp"], "env": {}}


def _runs_ours(words: list[str], verb: str) -> bool:
    """`.../hivemind-app VERB ...` or `python -m hivemind_app VERB ...`."""
    for i, word in enumerate(words[:-1]):
        ours = Path(word).name == SCRIPT or (word == "hivemind_app" and i > 0 and words[i - 1] == "-m")
        if ours and words[i + 1] == verb:
            return True
    return False


def is_our_hook_command(command: str) -> bool:
    try:
        return _runs_ours(shlex.split(command), "hook")
    except ValueError:
        return False


def is_our_block(block: Any) -> bool:
    hooks = block.get("hooks") if isinstance(block, dict) else None
    return isinstance(hooks, list) and any(
        isinstance(h, dict) and is_our_hook_command(str(h.get("command", ""))) for h in hooks
    )


def is_our_server(entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return False
    args = entry.get("args", [])
    return isinstance(args, list) and _runs_ours([entry["command"], *map(str, args)], "mcp")


# ------------------------------------------------------------------------------------------------------ files


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix it first, nothing was changed.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object; fix it first, nothing was changed.")
    return data


def _new_file_mode() -> int:
    """The mode a plain open() would give a new file (0666 less the umask)."""
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


def write_json(path: Path, data: dict[str, Any], backup: bool = False) -> Path | None:
    """Atomically replace PATH; with `backup`, the previous file is kept beside it first. The temp file is made
    by mkstemp in PATH's folder (a unique name, 0600 from birth) and given the original's mode before anything
    is written into it, so `~/.claude.json` is never readable by others even for a moment."""
    saved = None
    if backup and path.exists():
        saved = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, saved)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else _new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".hivemind-tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return saved


def _hooks_of(data: dict[str, Any], path: Path) -> dict[str, Any]:
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ConfigError(f"{path}: `hooks` is not a JSON object; fix it first, nothing was changed.")
    return hooks


def _without_ours(blocks: list[Any]) -> list[Any]:
    """BLOCKS with our hooks taken out one by one: a block that also holds the user's hooks keeps them (only a
    block left with no hook at all goes)."""
    kept = []
    for block in blocks:
        if not is_our_block(block):
            kept.append(block)
            continue
        theirs = [h for h in block["hooks"]
                  if not (isinstance(h, dict) and is_our_hook_command(str(h.get("command", ""))))]
        if theirs:
            kept.append({**block, "hooks": theirs})
    return kept


def merged_hooks(current: dict[str, Any], path: Path, executable: list[str] | None = None) -> dict[str, Any]:
    """CURRENT with our hook once per event; an event that is not a list (not what Claude Code reads) is
    refused, so nothing of the user's is replaced."""
    merged: dict[str, Any] = json.loads(json.dumps(current))
    hooks = _hooks_of(merged, path)
    for spec in HOOKS:
        blocks = hooks.get(spec.event, [])
        if not isinstance(blocks, list):
            raise ConfigError(f"{path}: hooks.{spec.event} is not a list (Claude Code reads a list of hook blocks "
                              "there); fix it first, nothing was changed.")
        hooks[spec.event] = [*_without_ours(blocks), hook_entry(spec, executable)]
    return merged


def without_hooks(current: dict[str, Any], path: Path) -> dict[str, Any]:
    if "hooks" not in current:
        return current
    cleaned: dict[str, Any] = json.loads(json.dumps(current))
    hooks = _hooks_of(cleaned, path)
    for event in list(hooks):
        blocks = hooks[event]
        if not isinstance(blocks, list) or not any(is_our_block(b) for b in blocks):
            continue
        hooks[event] = _without_ours(blocks)
        if not hooks[event]:
            del hooks[event]
    if not hooks:
        del cleaned["hooks"]
    return cleaned


def _servers_of(data: dict[str, Any], path: Path) -> dict[str, Any]:
    servers = data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}: `mcpServers` is not a JSON object; fix it first, nothing was changed.")
    return servers


def merged_servers(current: dict[str, Any], path: Path, executable: list[str] | None = None) -> dict[str, Any]:
    merged: dict[str, Any] = json.loads(json.dumps(current))
    servers = _servers_of(merged, path)
    existing = servers.get(SERVER_NAME)
    if existing is not None and not is_our_server(existing):
        raise ConfigError(
            f"{path} already registers an MCP server named {SERVER_NAME!r} that is not hivemind-app "
            f"({json.dumps(existing)[:200]}); remove or rename it, then run this again. Nothing was changed."
        )
    servers[SERVER_NAME] = server_entry(executable)
    return merged


def without_server(current: dict[str, Any], path: Path) -> dict[str, Any]:
    servers = current.get("mcpServers")
    if not isinstance(servers, dict) or not is_our_server(servers.get(SERVER_NAME)):
        return current
    cleaned: dict[str, Any] = json.loads(json.dumps(current))
    del _servers_of(cleaned, path)[SERVER_NAME]
    if not cleaned["mcpServers"]:
        del cleaned["mcpServers"]
    return cleaned


# ------------------------------------------------------------------------------------------- install, uninstall


@dataclass(frozen=True)
class Change:
    path: Path
    what: str  # what was done, for the user
    changed: bool
    backup: Path | None = None
    preposition: str = "in"

    def describe(self) -> str:
        if not self.changed:
            return f"{self.what} in {self.path}; nothing changed"
        saved = f" (previous file saved as {self.backup.name})" if self.backup else ""
        return f"{self.what} {self.preposition} {self.path}{saved}"


def _hook_summary() -> str:
    names = [f"{s.event} (async)" if s.is_async else s.event for s in HOOKS]
    return ", ".join(names)


def install_hooks(paths: Paths, executable: list[str] | None = None) -> Change:
    current = read_json(paths.settings)
    merged = merged_hooks(current, paths.settings, executable)
    if merged == current:
        return Change(paths.settings, "hooks already installed", False)
    backup = write_json(paths.settings, merged, backup=True)
    return Change(paths.settings, f"hooks installed: {_hook_summary()}", True, backup)


def install_server(paths: Paths, executable: list[str] | None = None) -> Change:
    current = read_json(paths.mcp)
    merged = merged_servers(current, paths.mcp, executable)
    if merged == current:
        return Change(paths.mcp, f"MCP server {SERVER_NAME!r} already registered", False)
    entry = merged["mcpServers"][SERVER_NAME]
    backup = write_json(paths.mcp, merged, backup=True)
    command = shlex.join([entry["command"], *entry["args"]])
    return Change(paths.mcp, f"MCP server {SERVER_NAME!r} registered: {command}", True, backup)


def install(paths: Paths, executable: list[str] | None = None) -> list[Change]:
    """Both files checked before either is written: a refused file leaves the other untouched too."""
    merged_hooks(read_json(paths.settings), paths.settings, executable)
    merged_servers(read_json(paths.mcp), paths.mcp, executable)
    return [install_server(paths, executable), install_hooks(paths, executable)]


def _remove(path: Path, cleaned: dict[str, Any], current: dict[str, Any], deletable: bool) -> bool:
    if cleaned == current:
        return False
    if deletable and not cleaned:
        path.unlink()
    else:
        write_json(path, cleaned)
    return True


def uninstall(paths: Paths) -> list[Change]:
    settings, mcp = read_json(paths.settings), read_json(paths.mcp)
    hooks_cleaned, server_cleaned = without_hooks(settings, paths.settings), without_server(mcp, paths.mcp)
    deletable = paths.scope == "project"  # never delete the user's settings or Claude Code's state file
    removed_server = _remove(paths.mcp, server_cleaned, mcp, deletable)
    removed_hooks = _remove(paths.settings, hooks_cleaned, settings, deletable)
    return [
        Change(paths.mcp, f"MCP server {SERVER_NAME!r} removed" if removed_server else "no hivemind MCP server",
               removed_server, preposition="from"),
        Change(paths.settings, "hooks removed" if removed_hooks else "no hivemind hooks", removed_hooks,
               preposition="from"),
    ]
