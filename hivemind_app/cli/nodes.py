"""Nodes: `node` (run this machine's node headless), `nodes` (list the hive's nodes) and `service` (the
systemd user unit that runs `node` at login)."""

from __future__ import annotations

import time
from typing import Any

import click
from pydantic import ValidationError

from hivemind_app.cli.common import print_json
from hivemind_app.config import NodeSettings, load_settings
from hivemind_app.errors import ConfigError
from hivemind_app.timespec import humanise_age


def register_commands(cli: click.Group) -> None:
    cli.add_command(node)
    cli.add_command(nodes)
    cli.add_command(service)


@click.group(invoke_without_command=True)
@click.option("--roles", help="Comma-separated roles: embed, infer, train (default: node.roles from the settings).")
@click.option("--port", type=int, help="API port (default node.port, 8080; 0 picks a free one).")
@click.pass_context
def node(ctx: click.Context, roles: str | None, port: int | None) -> None:
    """Run this machine's node headless: HTTP API, discovery, heartbeats and the workers of its roles."""
    if ctx.invoked_subcommand is not None:
        return
    import signal
    import threading

    from hivemind_app.nodes.runtime import NodeRuntime

    settings = load_settings()
    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["port"] = port
    if roles is not None:
        overrides["roles"] = roles
    if overrides:
        try:
            node_settings = NodeSettings.model_validate({**settings.node.model_dump(), **overrides})
        except ValidationError as exc:
            raise ConfigError(f"Invalid option: {exc.errors()[0]['msg']}.") from exc
        settings = settings.model_copy(update={"node": node_settings})
    runtime = NodeRuntime(settings)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    runtime.start()
    click.echo(
        f"node {settings.node.name} ({runtime.hive.node_id}) serving on {settings.node.bind}:{runtime.port}, "
        f"roles: {', '.join(runtime.roles) or 'none'}; Ctrl+C stops it"
    )
    done.wait()
    click.echo("stopping: finishing requests in hand")
    runtime.stop()


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=6.0,
    show_default=True,
    help="Seconds to browse mDNS when no local node runs.",
)
def nodes(as_json: bool, wait_s: float) -> None:
    """List the hive's nodes: name, address, roles, model, adapter, load, last seen, health."""
    from hivemind_app.nodes.listing import list_peers

    settings = load_settings()
    peers, source = list_peers(settings, wait_s)
    if as_json:
        print_json({"source": source, "peers": peers})
        return
    click.echo(f"peers of hive {settings.node.hive!r} ({source}):")
    if not peers:
        click.echo("  none found")
    for peer in peers:
        seen = humanise_age(max(0.0, time.time() - peer["last_seen"])) if peer.get("last_seen") else "never"
        click.echo(
            f"  {peer['name']:<14} {peer['address']}:{peer['port']:<6} {','.join(peer['roles']) or '-':<16} "
            f"{peer.get('embed_model') or '-':<18} adapter {peer.get('adapter') or '-':<8} "
            f"load {peer.get('load', 0):<3} "
            f"{seen:<10} {peer['health']}" + (f" ({peer['why']})" if peer.get("why") else "")
        )


@click.group()
def service() -> None:
    """The systemd user unit that runs this installation's `node` (show, install, uninstall)."""


@service.command("show")
def service_show() -> None:
    """Print the unit as `install` would write it, with this installation's executable."""
    from hivemind_app.nodes.service import unit_text

    click.echo(unit_text(), nl=False)


@service.command("install")
def service_install() -> None:
    """Write the unit to ~/.config/systemd/user/ and print the commands that start it."""
    from hivemind_app.nodes.service import UNIT_NAME, install_unit

    path, changed = install_unit()
    click.echo(f"{'wrote' if changed else 'unchanged:'} {path}")
    click.echo("start it now and at every login with:")
    click.echo("  systemctl --user daemon-reload")
    click.echo(f"  systemctl --user enable --now {UNIT_NAME.removesuffix('.service')}")
    click.echo(f"  journalctl --user -u {UNIT_NAME.removesuffix('.service')} -f")


@service.command("uninstall")
def service_uninstall() -> None:
    """Remove the unit (stop it first: systemctl --user disable --now hivemind-node)."""
    from hivemind_app.nodes.service import remove_unit

    removed = remove_unit()
    click.echo(f"removed {removed}; run `systemctl --user daemon-reload`" if removed else "no unit installed")


@node.command("reset-id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def node_reset_id(yes: bool) -> None:
    """Give this machine's store a new node id (for a store copied on purpose; copies are also caught by
    themselves). Stop this machine's node and TUI first."""
    from hivemind_app.hive import Hive

    if not yes:
        click.confirm("Give this store a new node id?", abort=True)
    with Hive(load_settings(), sync_on_read=False) as hive:
        old, new = hive.reset_node_id()
    click.echo(f"node id {old} -> {new}; this store's writes from now on are told apart from any other copy's")
