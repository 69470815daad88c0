"""Claude Code: `mcp` (the MCP stdio server), `hook EVENT` (the hooks), `claude install/uninstall/doctor`.

The server and the hook handlers live in `hivemind_app.claude`; they are imported inside the command
functions, never at module level. `hook` runs on Claude Code's hot path: add no import to it.
"""

from __future__ import annotations

import logging
import shlex
import sys
from typing import TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:
    from hivemind_app.hive import Hive

log = logging.getLogger("hivemind_app.claude")
HOOK_REDIS_TIMEOUT_S = 0.25
SESSION_START_DRAIN_WAIT_S = 5.0  # for a drainer already at work; Claude Code gives a hook 10 s


def register_commands(cli: click.Group) -> None:
    cli.add_command(mcp_command)
    cli.add_command(hook_command)
    cli.add_command(claude_group)


def _log_to_stderr(level: int) -> None:
    """stdout belongs to the protocol (MCP) or to Claude Code (hooks): every log line goes to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hivemind: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@click.command("mcp")
def mcp_command() -> None:
    """Serve the MCP tools over stdio (started by Claude Code, as `hivemind-app claude install` registers it)."""
    _log_to_stderr(logging.WARNING)
    from hivemind_app.claude.quickstart import serve  # the console script goes there directly (entry.py)

    serve()


@click.command("hook")
@click.argument("event")
def hook_command(event: str) -> None:
    """Handle one Claude Code hook EVENT, reading its JSON on stdin. Never fails Claude Code."""
    _log_to_stderr(logging.WARNING)
    try:
        from hivemind_app.claude.hooks import handle
        from hivemind_app.claude.payloads import EVENTS, parse_payload

        if event not in EVENTS:
            log.warning("unknown hook event %r (known: %s); ignored", event, ", ".join(EVENTS))
            return
        payload = parse_payload(sys.stdin.buffer.read())
        if payload is None:
            return
        from hivemind_app.config import load_settings
        from hivemind_app.hive import Hive

        settings = load_settings()
        # A hook must not wait on an unreachable hub: writes land locally and the outbox drains later.
        settings.redis.connect_timeout_s = min(settings.redis.connect_timeout_s, HOOK_REDIS_TIMEOUT_S)
        with Hive(settings, sync_on_read=False) as hive:  # pulling is the node's job, not a hook's
            if event == "SessionStart":
                try:  # the events spooled before it, in order, before the new session starts
                    _drain_spool(hive, wait=SESSION_START_DRAIN_WAIT_S)
                except Exception as exc:  # they stay spooled; the session starts regardless
                    log.warning("spooled hook events not applied yet: %s: %s", type(exc).__name__, exc)
            output = handle(hive, event, payload)
        if output:
            click.echo(output)
    except Exception as exc:  # a hook reports, it never blocks Claude Code
        log.warning("%s hook failed: %s: %s", event, type(exc).__name__, exc)


@click.group("claude")
def claude_group() -> None:
    """Claude Code integration."""


def _scope_options(fn: Any) -> Any:
    fn = click.option("--project", "scope", flag_value="project",
                      help="This project (the current directory): .claude/settings.json and .mcp.json.")(fn)
    return click.option("--user", "scope", flag_value="user", default=True,
                        help="Every project: ~/.claude/settings.json and ~/.claude.json (the default).")(fn)


_force_option = click.option("--force", is_flag=True,
                             help="Install even though the hivemind plugin is enabled (every event recorded twice).")


@claude_group.command("install")
@_scope_options
@_force_option
def install_command(scope: Literal["user", "project"], force: bool) -> None:
    """Register hivemind's MCP server and all its hooks with Claude Code, in one step (idempotent)."""
    from hivemind_app.claude.checkup import refuse_beside_plugin, warm_handshakes
    from hivemind_app.claude.registration import Paths, install, server_entry

    if not force:
        refuse_beside_plugin()
    changes = install(Paths.of(scope))
    for change in changes:
        click.echo(change.describe())
    if any(change.changed for change in changes):
        entry = server_entry()
        warm_handshakes([entry["command"], *entry["args"]])  # Claude Code's very first session starts fast too


@claude_group.command("uninstall")
@_scope_options
def uninstall_command(scope: Literal["user", "project"]) -> None:
    """Remove exactly what `claude install` added (the MCP server and the hooks), keeping everything else."""
    from hivemind_app.claude.registration import Paths, uninstall

    for change in uninstall(Paths.of(scope)):
        click.echo(change.describe())


@claude_group.command("doctor")
@click.option("--json", "as_json", is_flag=True)
def claude_doctor_command(as_json: bool) -> None:
    """Check what Claude Code will run (executable, hooks, MCP server, spool) and say what to fix."""
    from hivemind_app.claude.checkup import run_checks
    from hivemind_app.cli.common import report_checks

    report_checks(run_checks(), as_json, name_width=24)


@claude_group.command("install-hooks")
@_scope_options
@_force_option
def install_hooks_command(scope: Literal["user", "project"], force: bool) -> None:
    """The hooks alone (`claude install` also registers the MCP server): kept for older set-ups."""
    from hivemind_app.claude.checkup import refuse_beside_plugin
    from hivemind_app.claude.registration import Paths, install_hooks
    from hivemind_app.install import this_installation

    if not force:
        refuse_beside_plugin()
    click.echo(install_hooks(Paths.of(scope)).describe())
    # not `claude mcp add`: that registers the server in the local scope (one directory's entry in
    # ~/.claude.json), which overrides the user-scope one there; `claude install` registers it in this scope
    command = shlex.join([*this_installation().executable, "claude", "install", f"--{scope}"])
    click.echo(f"the MCP server is not registered by this command; to register it and the hooks in one step: {command}")


def _drain_spool(hive: Hive, wait: float = 0.0) -> tuple[int, int]:
    from hivemind_app.claude.hooks import handle
    from hivemind_app.claude.spool import drain
    from hivemind_app.errors import InvalidInputError

    return drain(
        lambda event, payload, at: handle(hive, event, payload, at),
        report=log.warning,
        wait=wait,
        refused=lambda exc: isinstance(exc, InvalidInputError),  # bad input stays bad; anything else may pass
    )


@claude_group.command("drain-hooks")
@click.option("--quiet", is_flag=True, help="Print nothing (the background drainer a hook starts).")
def drain_hooks_command(quiet: bool) -> None:
    """Apply the hook events spooled in the data dir (hooks start this by themselves; see README)."""
    if quiet:
        _log_to_stderr(logging.ERROR)
    from hivemind_app.config import load_settings
    from hivemind_app.hive import Hive

    with Hive(load_settings(), sync_on_read=False) as hive:
        # the background drainer returns at once if another runs; asked for by hand, wait for it
        applied, set_aside = _drain_spool(hive, wait=0.0 if quiet else 600.0)
    if not quiet:
        aside = f", {set_aside} set aside in spool/bad/ (unreadable or refused)" if set_aside else ""
        click.echo(f"applied {applied} spooled hook events{aside}")
