"""The `hivemind-app` command line: the root group, with each area's commands registered on it.

One module per area, each with `register_commands(cli)`: `memories` (store, import, recall, show, delete,
reembed), `status` (status, doctor, the overview), `hub` (sync, conflicts), `nodes` (node, nodes),
`training` (train, adapters), `config` (config path/show/set), `claude` (mcp, hook, claude install-hooks),
`hive` (the hive key: init, join, status, leave).
A new verb goes into the area it belongs to. Shared helpers are in `common`, the error mapping and logging in
`group`; area modules import only those, never each other. Every verb goes through the `Hive` facade, and
anything heavy (the hive, textual, mcp, torch, the node runtime) is imported inside the command that needs it.
"""

from __future__ import annotations

import os
import sys

import click

from hivemind_app import __version__
from hivemind_app.cli import claude, config, hive, hub, memories, nodes, status, training, watch
from hivemind_app.cli.common import ConversionBar, open_hive, stderr
from hivemind_app.cli.group import HivemindGroup, setup_logging
from hivemind_app.config import load_settings
from hivemind_app.ml.onnx_convert import set_conversion_reporter

__all__ = ["cli", "main"]


@click.group(cls=HivemindGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hivemind-app")
@click.option("--no-node", is_flag=True, help="Browse only: do not host this machine's node runtime in the TUI.")
@click.pass_context
def cli(ctx: click.Context, no_node: bool) -> None:
    """hivemind-app: memory for AI coding assistants, local-first and shared across your machines.

    With no command it opens the TUI on a terminal, and prints an overview otherwise.
    """
    setup_logging()
    if ctx.invoked_subcommand is not None:
        if stderr.is_terminal or os.environ.get("HIVEMIND_FORCE_PROGRESS"):
            set_conversion_reporter(ConversionBar())
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        from hivemind_app.tui.app import run_tui

        if no_node:
            with open_hive() as hive:
                run_tui(hive)
        else:
            from hivemind_app.nodes.runtime import NodeRuntime

            runtime = NodeRuntime(load_settings())
            run_tui(runtime.hive, node=runtime)
            runtime.hive.close()
        return
    status.show_overview()


memories.register_commands(cli)
status.register_commands(cli)
hub.register_commands(cli)
nodes.register_commands(cli)
training.register_commands(cli)
config.register_commands(cli)
claude.register_commands(cli)
hive.register_commands(cli)
watch.register_commands(cli)


def main() -> None:
    cli(prog_name="hivemind-app")
