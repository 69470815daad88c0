"""`claude doctor`: check what Claude Code will run, and say what to do about each problem.

It reads the same files Claude Code reads (registration.py names them), in both scopes (user, and the project
in the current directory), plus the plugin's switch in `enabledPlugins`, and checks:
- this installation's executable exists and runs;
- every hook event has exactly one hivemind hook (from `claude install` or the plugin, not both: twice would
  record each event twice), and each hook command's executable exists;
- an MCP server answers `initialize` over stdio, spawned exactly as Claude Code spawns it, within Claude Code's
  ~3 s patience, and then `tools/list` with our tools (the handshake alone may come from the cache);
- no `hivemind` server is left in a project's local scope (`~/.claude.json` `projects[*].mcpServers`);
- the hook spool (in the data dir the settings name) is writable.

What it changes: nothing in Claude Code's files; starting the server writes what any start writes (the
handshake cache `<data dir>/mcp-handshake.json`, and the store's files if they are not there yet). It does not
import the store or the MCP SDK, and loads no settings itself (the server it starts does, and a bad setting
shows up as that server's error), so it still reports when those are broken.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from hivemind_app.claude.registration import (
    HOOKS,
    PLUGIN_NAME,
    SERVER_NAME,
    Paths,
    Scope,
    claude_config_dir,
    is_our_block,
    is_our_server,
    read_json,
)
from hivemind_app.doctor import Check
from hivemind_app.errors import ConfigError
from hivemind_app.install import this_installation

CLAUDE_CODE_PATIENCE_S = 3.0  # Claude Code gives up on a server's handshake after ~3 s (measured)
INITIALIZE_TIMEOUT_S = 15.0
FIX_INSTALL = "run `hivemind-app claude install` (or install the plugin: see README, Claude Code)"


def _read(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        return read_json(path), None
    except ConfigError as exc:
        return {}, str(exc)


def plugin_enabled(settings: dict[str, Any]) -> list[str]:
    enabled = settings.get("enabledPlugins")
    if not isinstance(enabled, dict):
        return []
    return [key for key, on in enabled.items() if on is True and key.split("@")[0] == PLUGIN_NAME]


def plugin_in_use(project: Path | None = None) -> list[str]:
    """The hivemind plugin keys enabled in either scope's settings (unreadable files count as none here: doctor
    reports them)."""
    keys: list[str] = []
    scope: Scope
    for scope in ("user", "project"):
        keys += plugin_enabled(_read(Paths.of(scope, project).settings)[0])
    return sorted(set(keys))


def refuse_beside_plugin(project: Path | None = None) -> None:
    """ConfigError when the plugin is enabled: its hooks plus ours would record every event twice."""
    keys = plugin_in_use(project)
    if keys:
        raise ConfigError(f"the hivemind plugin is enabled ({', '.join(keys)}): it already registers the hooks and "
                          "the MCP server, and both would record every event twice; use one of them (disable it "
                          "with `claude plugin disable hivemind`, or pass --force to install anyway).")


def _our_hook_commands(settings: dict[str, Any], event: str) -> list[str]:
    hooks = settings.get("hooks")
    blocks = hooks.get(event) if isinstance(hooks, dict) else None
    if not isinstance(blocks, list):
        return []
    return [
        str(h.get("command"))
        for block in blocks
        if is_our_block(block)
        for h in block["hooks"]
        if isinstance(h, dict) and "command" in h
    ]


def _executable_problem(command: list[str]) -> str | None:
    if not command:
        return "an empty command"
    exe = Path(command[0])
    if not exe.is_absolute():
        return f"{command[0]} is not an absolute path (Claude Code's PATH decides which copy runs)"
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        return f"{exe} does not exist or is not executable"
    return None


def check_executable() -> Check:
    installation = this_installation()
    problem = _executable_problem(installation.executable)
    if problem:
        return Check("executable", False, f"{problem}; reinstall hivemind-app")
    return Check("executable", True, installation.command())


def check_hooks(scopes: list[tuple[Paths, dict[str, Any]]], plugin: list[str]) -> list[Check]:
    checks = []
    mine = shlex.join(this_installation().executable)
    for spec in HOOKS:
        commands = [c for _, settings in scopes for c in _our_hook_commands(settings, spec.event)]
        sources = len(commands) + (1 if plugin else 0)
        name = f"hook {spec.event}"
        if sources == 0:
            checks.append(Check(name, False, f"not installed; {FIX_INSTALL}"))
            continue
        if sources > 1:
            where = ", ".join([*(f"{p.settings}" for p, s in scopes if _our_hook_commands(s, spec.event)), *plugin])
            checks.append(Check(name, False, f"installed {sources} times ({where}): each event would be recorded "
                                             f"{sources} times; keep one (`hivemind-app claude uninstall --user` or "
                                             f"`--project`, or `claude plugin uninstall {PLUGIN_NAME}`)"))
            continue
        if plugin:
            checks.append(Check(name, True, f"from the plugin {plugin[0]}"))
            continue
        words = shlex.split(commands[0])
        exe = words[: words.index("hook")]
        problem = _executable_problem(exe)
        if problem:
            checks.append(Check(name, False, f"{problem}; run `hivemind-app claude install` again"))
        elif shlex.join(exe) != mine:
            checks.append(Check(name, True, f"runs another installation ({shlex.join(exe)}); "
                                            "`hivemind-app claude install` points it at this one", required=False))
        else:
            checks.append(Check(name, True, commands[0]))
    return checks


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "hivemind-doctor", "version": "1"}},
}
# Claude Code 2.1.x's first request: the 2026-07-28 probe (then `initialize` if it gets no answer in ~3 s)
DISCOVER = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "server/discover",
    "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                         "io.modelcontextprotocol/clientInfo": {"name": "hivemind-doctor", "version": "1"},
                         "io.modelcontextprotocol/clientCapabilities": {}}},
}


INITIALIZED: dict[str, Any] = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST: dict[str, Any] = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
OUR_TOOL = "memory_store"  # one of the tools claude/server.py registers


def warm_handshakes(command: list[str]) -> None:
    """Start the server once per handshake Claude Code may send, so that even its first session gets the
    handshake answered from the cache (claude/quickstart.py). Best effort, each one on its own: a failure is
    doctor's to report, and does not keep the other handshake from being warmed."""
    for request in (DISCOVER, INITIALIZE):
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            answers_initialize(command, dict(os.environ), request=request, whole_start=False)  # the handshake is enough


def _stderr_tail(text: str) -> str:
    """What a dying server said last that explains it: the last error line of its traceback (an exception
    group's box drawing removed), else its last line; "" when it said nothing."""
    lines = [line.strip().lstrip("|+").strip() for line in text.splitlines()]
    lines = [line for line in lines if line.strip("-")]
    errors = [line for line in lines if re.match(r"[\w.]*(Error|Exception)\b", line)]
    tail = (errors or lines or [""])[-1]
    return f": {tail[:500]}" if tail else ""


class _Lines:
    """Answer lines from the server's stdout, each waited for until a shared deadline (select on the raw fd, so
    nothing waits unseen in a buffer)."""

    def __init__(self, fd: int, deadline: float) -> None:
        self._fd, self._deadline, self._buffer = fd, deadline, b""

    def next(self) -> bytes:
        """The next line (b"" at EOF or when the deadline passed)."""
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._fd], [], [], max(0.0, self._deadline - time.monotonic()))
            chunk = os.read(self._fd, 65536) if ready else b""
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def answer_to(self, request_id: int) -> dict[str, Any] | None:
        """The answer with REQUEST_ID, skipping notifications and log lines; None when none came."""
        while line := self.next():
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("id") == request_id and "method" not in message:
                    return message
        return None


def answers_initialize(
    command: list[str],
    env: dict[str, str],
    timeout: float = INITIALIZE_TIMEOUT_S,
    request: dict[str, Any] = INITIALIZE,
    whole_start: bool = True,
) -> float:
    """Seconds from spawning COMMAND to its answer to `initialize` (or REQUEST; RuntimeError saying why when
    none comes). For `initialize` (with `whole_start`), the session then goes on as Claude Code's does
    (`notifications/initialized`, `tools/list`), and only an answer listing our tools counts: a handshake
    answered from the cache says nothing about whether the server itself starts. stderr goes to a temp file (a
    pipe nobody reads could fill and block the server), and its last error line is in the error when it dies."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        lines = _Lines(proc.stdout.fileno(), started + timeout)

        def send(message: dict[str, Any]) -> None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # it exited: said by whoever reads its answer
                proc.stdin.write((json.dumps(message) + "\n").encode())
                proc.stdin.flush()

        def died(what: str) -> RuntimeError:
            try:  # its stdout closed (EOF) or it went quiet: give it a moment to say with which status
                exited: int | None = proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                exited = None
            proc.kill()
            errors.seek(0)
            last = _stderr_tail(errors.read().decode(errors="replace"))
            why = f"exited with status {exited}" if exited is not None else f"gave no answer within {timeout:.0f} s"
            return RuntimeError(f"{why} instead of answering {what}{last}")

        try:
            send(request)
            answer = lines.answer_to(request["id"])
            elapsed = time.monotonic() - started
            if answer is None:
                raise died(request["method"])
            if "result" not in answer:
                raise RuntimeError(f"{request['method']} failed: {json.dumps(answer)[:200]}")
            if whole_start and request["method"] == "initialize":
                send(INITIALIZED)
                send(TOOLS_LIST)
                tools = lines.answer_to(TOOLS_LIST["id"])
                if tools is None:
                    raise died("tools/list after initialize")
                result = tools.get("result")
                names = [t.get("name") for t in result.get("tools", []) if isinstance(t, dict)] \
                    if isinstance(result, dict) else []
                if OUR_TOOL not in names:
                    raise RuntimeError(f"tools/list does not list {OUR_TOOL}: {json.dumps(tools)[:200]}")
            return elapsed
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):  # stdin may still hold the request a dead server never read
                    stream.close()


def plugin_root(key: str) -> Path | None:
    """Where Claude Code runs the plugin KEY (`hivemind@<marketplace>`) from: a directory marketplace's own folder
    (Claude Code reads it in place), else the installed copy; None when Claude Code's records do not say."""
    plugins = claude_config_dir() / "plugins"
    marketplace = key.partition("@")[2]
    known, _ = _read(plugins / "known_marketplaces.json")
    entry = known.get(marketplace)
    source = entry.get("source") if isinstance(entry, dict) else None
    if isinstance(source, dict) and source.get("source") == "directory" and isinstance(entry, dict):
        location = entry.get("installLocation")
        if isinstance(location, str):
            return Path(location)
    installed, _ = _read(plugins / "installed_plugins.json")
    records = installed.get("plugins", {}).get(key) if isinstance(installed.get("plugins"), dict) else None
    if isinstance(records, list) and records and isinstance(records[0], dict):
        path = records[0].get("installPath")
        return Path(path) if isinstance(path, str) else None
    return None


def _server_command(entry: dict[str, Any]) -> list[str]:
    return [str(entry["command"]), *map(str, entry.get("args", []))]


def check_server(registered: list[tuple[Path, dict[str, Any]]], plugin: list[str]) -> list[Check]:
    ours = [(path, entry) for path, entry in registered if is_our_server(entry)]
    if not ours and not plugin:
        return [Check("mcp server", False, f"not registered; {FIX_INSTALL}")]
    if plugin and not ours:
        root = plugin_root(plugin[0])
        launcher = root / ".claude-plugin" / "launch" if root else None
        if launcher is not None and launcher.exists():  # exactly what Claude Code runs, the launcher's search too
            command, where = [str(launcher), "mcp"], f"the plugin {plugin[0]}"
        else:
            command, where = [*this_installation().executable, "mcp"], f"the plugin {plugin[0]} (its folder not found)"
    else:
        path, entry = ours[0]
        command, where = _server_command(entry), str(path)
    checks = []
    if len(ours) + (1 if plugin else 0) > 1:
        places = ", ".join([*(str(p) for p, _ in ours), *plugin])
        checks.append(Check("mcp server", True, f"registered more than once ({places}); Claude Code starts one per "
                                                "name and scope: harmless, but one is enough", required=False))
    problem = _executable_problem(command[:1])
    if problem:
        return [*checks, Check("mcp server", False, f"{where}: {problem}; run `hivemind-app claude install` again")]
    first: float | None = None
    try:
        took = answers_initialize(command, dict(os.environ))
        if took > CLAUDE_CODE_PATIENCE_S:  # a first start answers late (nothing kept yet): what do later ones do?
            first, took = took, answers_initialize(command, dict(os.environ))
    except (OSError, RuntimeError, ValueError) as exc:
        return [*checks, Check("mcp server", False, f"{shlex.join(command)} ({where}): {exc}; run it by hand to "
                                                    "see why (its errors go to stderr)")]
    if took > CLAUDE_CODE_PATIENCE_S:
        late = f"answered initialize after {took:.1f} s: Claude Code gives up after ~{CLAUDE_CODE_PATIENCE_S:.0f} s"
        return [*checks, Check("mcp server", False, f"{late}; is the machine overloaded?")]
    once = f" (its first start, with no handshake kept yet, took {first:.1f} s)" if first is not None else ""
    return [*checks, Check("mcp server", True, f"{shlex.join(command)} answered initialize in {took * 1000:.0f} ms"
                                               f"{once}")]


def check_project_registrations(state: dict[str, Any], path: Path) -> list[Check]:
    """`claude mcp add hivemind -- ...` (what older instructions said) lands in `~/.claude.json`
    `projects[<dir>].mcpServers.hivemind`, the local scope, which overrides the user-scope server in that project:
    one left behind runs an old command there. Each is reported with the command that removes it."""
    projects = state.get("projects")
    checks = []
    for directory, project in sorted(projects.items()) if isinstance(projects, dict) else []:
        servers = project.get("mcpServers") if isinstance(project, dict) else None
        entry = servers.get(SERVER_NAME) if isinstance(servers, dict) else None
        if entry is None:
            continue
        fix = f"remove it: `cd {shlex.quote(directory)} && claude mcp remove {SERVER_NAME} --scope local`"
        if not is_our_server(entry):
            problem: str | None = "is not hivemind-app's"
        else:
            found = _executable_problem(_server_command(entry)[:1])
            problem = f"cannot start ({found})" if found else None
        where = f"{path} projects[{directory}].mcpServers.{SERVER_NAME}"
        if problem:
            checks.append(Check("mcp server (local)", False, f"{where} {problem} and overrides the user-scope "
                                                             f"server in that project; {fix}"))
        else:
            checks.append(Check("mcp server (local)", True, f"{where} (from `claude mcp add`) overrides the "
                                                            f"user-scope server in that project; {fix}",
                                required=False))
    return checks


def check_spool() -> Check:
    from hivemind_app.claude.spool import spool_dir

    directory = spool_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("hook spool", False, f"{directory} is not writable ({exc.strerror}); fix its permissions or "
                                          "set HIVEMIND_DATA_DIR to a writable directory")
    waiting = len(list(directory.glob("*.json")))
    backlog = f", {waiting} events waiting (`hivemind-app claude drain-hooks` applies them)" if waiting else ""
    return Check("hook spool", True, f"{directory} is writable{backlog}")


def run_checks(project: Path | None = None) -> list[Check]:
    checks = [check_executable()]
    scopes: list[tuple[Paths, dict[str, Any]]] = []
    registered: list[tuple[Path, dict[str, Any]]] = []
    plugin: list[str] = []
    local: list[Check] = []
    scope: Scope
    for scope in ("user", "project"):
        paths = Paths.of(scope, project)
        settings, settings_error = _read(paths.settings)
        servers, servers_error = _read(paths.mcp)
        for error in (settings_error, servers_error):
            if error:
                checks.append(Check(f"{scope} files", False, error))
        scopes.append((paths, settings))
        plugin += plugin_enabled(settings)
        entry = servers.get("mcpServers", {}).get(SERVER_NAME) if isinstance(servers.get("mcpServers"), dict) else None
        if entry is not None:
            registered.append((paths.mcp, entry))
        if scope == "user":
            local = check_project_registrations(servers, paths.mcp)
    checks += check_hooks(scopes, sorted(set(plugin)))
    checks += check_server(registered, sorted(set(plugin)))
    checks += local
    checks.append(check_spool())
    return checks
