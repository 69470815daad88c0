"""Claude Code: `mcp` (the MCP stdio server), `hook EVENT` (the hooks), `claude install-hooks`.

The server and the hook handlers live in `hivemind_app.claude`; they are imported inside the command
functions, never at module level. `hook` runs on Claude Code's hot path: add no import to it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
    """Serve the MCP tools over stdio (started by Claude Code: `claude mcp add hivemind -- hivemind-app mcp`)."""
    _log_to_stderr(logging.WARNING)
    from hivemind_app.claude.server import run_stdio

    run_stdio()


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


@claude_group.command("install-hooks")
@click.option("--project", "scope", flag_value="project", help="This project's .claude/settings.json.")
@click.option("--user", "scope", flag_value="user", default=True, help="~/.claude/settings.json (the default).")
def install_hooks_command(scope: str) -> None:
    """Write hivemind's hooks into Claude Code's settings.json, keeping everything else (with a backup)."""
    from hivemind_app.claude.hooks import hooks_block, install_hooks, mcp_registration

    path = Path(".claude/settings.json") if scope == "project" else Path.home() / ".claude" / "settings.json"
    backup, changed = install_hooks(path)
    if not changed:
        click.echo(f"hooks already installed in {path}; nothing changed")
        return
    saved = f" (previous file saved as {backup.name})" if backup else ""
    click.echo(f"hooks installed in {path}{saved}: {', '.join(hooks_block())}")
    click.echo(f"register the MCP server, if not yet done: {mcp_registration()}")


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
