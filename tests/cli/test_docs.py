"""Every command and subcommand of `hivemind-app` is documented in README.md (as sqlite-utils checks its docs).

A command counts as documented when README.md shows `hivemind-app <command>` (`hivemind-app config set`, ...)
or a heading names it (`### show, delete`). A new verb fails here until it has its README entry.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from hivemind_app.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under `group`, subcommands of groups included, as name paths: ('config', 'set')."""
    ctx = click.Context(group)
    paths: list[tuple[str, ...]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def documented(path: tuple[str, ...], readme: str) -> bool:
    phrase = re.escape(" ".join(path))
    end = r"(?![\w-])"  # `hivemind-app node` is not `hivemind-app nodes`
    if re.search(rf"hivemind-app {phrase}{end}", readme):
        return True
    headings = [line.lstrip("#").replace("`", "") for line in readme.splitlines() if re.match(r"#{2,6} ", line)]
    return any(re.search(rf"(?<![\w-]){phrase}{end}", heading) for heading in headings)


COMMANDS = command_paths(cli)


def test_the_walk_reaches_every_area_and_the_subcommands_of_groups() -> None:
    names = {" ".join(path) for path in COMMANDS}
    expected = {"store", "recall", "status", "doctor", "sync", "conflicts", "node", "nodes", "train", "mcp", "hook"}
    assert expected <= names
    assert {"config set", "config show", "config path", "adapters activate", "claude install-hooks"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_the_command_is_documented_in_the_readme(path: tuple[str, ...]) -> None:
    assert documented(path, README.read_text()), (
        f"README.md does not document `hivemind-app {' '.join(path)}`: add an entry under '## Commands'"
    )


def test_a_command_taken_out_of_the_readme_is_reported() -> None:
    readme = README.read_text()
    assert documented(("doctor",), readme) and documented(("config", "show"), readme)
    assert not documented(("doctor",), re.sub(r"hivemind-app doctor|### doctor", "", readme))
    assert not documented(("config", "show"), readme.replace("hivemind-app config show", ""))
    assert not documented(("node",), "$ hivemind-app nodes\n### nodes\n")
