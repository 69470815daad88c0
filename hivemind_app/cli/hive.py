"""The hive key: `hive init`, `hive join`, `hive status`, `hive leave`.

The key is printed once, by `init`, as a join code; nothing else ever prints it (`status` shows its
fingerprint). `join` reads the code from a hidden prompt (or stdin) when it is not given, so it need not land in
the shell's history; `init` tells the user to do so.
"""

from __future__ import annotations

import os
import sys

import click

from hivemind_app.cli.common import print_json
from hivemind_app.config import load_settings
from hivemind_app.errors import ConfigError
from hivemind_app.trust.hivekey import (
    ALONE,
    MAX_KEY_FILE_BYTES,
    HiveKey,
    code_is_partial,
    key_state,
    load_key,
    parse_join_code,
    remove_key,
    remove_stale_temporaries,
    save_key,
)

MAX_CODE_LINES = 8
"""How many more lines a pasted join code may take at the prompt (a wrapped code takes two or three)."""


def register_commands(cli: click.Group) -> None:
    cli.add_command(hive)


@click.group()
def hive() -> None:
    """The hive key: what proves this machine belongs to its hive (init, join, status, leave)."""


@hive.command("init")
def hive_init() -> None:
    """Make a new hive key on this machine and print it once, as the join code for the others."""
    path = load_settings().hive_key_path
    remove_stale_temporaries(path)  # a killed init's or join's copy of a key
    held = load_key(path)
    if held is not None:
        raise ConfigError(
            f"This machine already holds a hive key (fingerprint {held.fingerprint}). To join other machines, "
            "run `hivemind-app hive join` there with the code printed when it was made; to start a new hive, "
            "run `hivemind-app hive leave` here first."
        )
    key = HiveKey.generate()
    save_key(path, key)
    click.echo(f"made a hive key, fingerprint {key.fingerprint} (saved in {path}, mode 0600)")
    click.echo("join code, shown this once:")
    click.echo(f"  {key.join_code()}")
    click.echo("On each other machine of the hive run `hivemind-app hive join` and paste it at the hidden prompt")
    click.echo("(or pipe it in on stdin): never as an argument, which lands in the shell's history.")
    click.echo("Treat it as a password: whoever holds it can join the hive.")


def _read_piped_code() -> str:
    """The join code from stdin that is not a terminal, line by line: up to the line that makes it whole (or
    shows it is no code), a blank line after it began, the end of input, or `MAX_KEY_FILE_BYTES`, whichever
    comes first. Never up to the end of input alone: a pipe that stays open (`sleep 1h | ...`-style) would
    hang `join` for good once the code is in."""
    code, read = "", 0
    while read < MAX_KEY_FILE_BYTES:  # blank lines count too: endless ones end here
        line = sys.stdin.readline(MAX_KEY_FILE_BYTES - read)
        read += len(line)
        if not line:  # the end of input
            break
        if not line.strip():
            if code.strip():
                break  # a blank line after the code began: no more of it is coming
            continue
        code += line
        if not code_is_partial(code):
            break  # whole, or not a code at all (`parse_join_code` says what is wrong)
    return code


def _read_code() -> str:
    """The join code from a hidden prompt (on a terminal) or stdin (piped). A code pasted over several
    lines (wrapped by the terminal, or indented as `init` prints it) is read on until it is whole."""
    if not sys.stdin.isatty():
        return _read_piped_code()
    code: str = click.prompt("join code", hide_input=True)
    for _ in range(MAX_CODE_LINES):
        if not code_is_partial(code):
            break
        more: str = click.prompt("rest of the join code", hide_input=True, default="", show_default=False)
        if not more.strip():
            break
        code += "\n" + more
    return code


@hive.command("join")
@click.argument("code", required=False)
def hive_join(code: str | None) -> None:
    """Store the hive key from the join code, asked for at a hidden prompt (or read from stdin when that is
    not a terminal). CODE as an argument works too, but lands in the shell's history: do not."""
    given_as_argument = code is not None
    key = parse_join_code(code if code is not None else _read_code())
    path = load_settings().hive_key_path
    remove_stale_temporaries(path)  # a killed init's or join's copy of a key
    held = load_key(path)
    if held is not None and held == key:
        click.echo(f"already in this hive (fingerprint {key.fingerprint})")
        return
    if held is not None:
        raise ConfigError(
            f"This machine holds another hive key (fingerprint {held.fingerprint}); run "
            "`hivemind-app hive leave` first to switch hives."
        )
    save_key(path, key)
    click.echo(f"joined the hive: key fingerprint {key.fingerprint} (saved in {path}, mode 0600)")
    click.echo("Compare the fingerprint with `hivemind-app hive status` on the machine that made it.")
    if given_as_argument:
        click.echo(
            "warning: the join code was given as an argument, so it is in this shell's history (and was visible "
            "to other users' `ps`): remove it from the history; next time run `hivemind-app hive join` alone.",
            err=True,
        )


@hive.command("status")
@click.option("--json", "as_json", is_flag=True)
def hive_status(as_json: bool) -> None:
    """Whether this machine holds the hive key, and its fingerprint (never the key)."""
    state = key_state(load_settings().hive_key_path)
    if as_json:
        print_json(state.to_dict())
        return
    if state.problem:
        raise ConfigError(state.problem)
    if state.key is None:
        click.echo(f"no hive key ({state.path}): {ALONE}")
        click.echo("  `hivemind-app hive init` makes one; `hivemind-app hive join` takes another machine's")
        return
    click.echo(f"hive key fingerprint {state.fingerprint} ({state.path}, mode 0600)")


@hive.command("leave")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def hive_leave(yes: bool) -> None:
    """Forget the hive key: this machine then works alone until it joins again."""
    path = load_settings().hive_key_path
    if not os.path.lexists(path):  # a link planted there (even a dangling one) is removed too
        click.echo(f"no hive key to forget ({path})")
        return
    if not yes:
        click.confirm("Forget the hive key? Rejoining needs the join code again", abort=True)
    remove_key(path)
    click.echo(f"forgot the hive key ({path} removed): {ALONE}")
