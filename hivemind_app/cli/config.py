"""Settings: `config path`, `config show`, `config set KEY VALUE`."""

from __future__ import annotations

import click

from hivemind_app.cli.common import print_json
from hivemind_app.config import load_settings, public_view, redact_url, set_config_value


def register_commands(cli: click.Group) -> None:
    cli.add_command(config)


@click.group()
def config() -> None:
    """Show or change settings (TOML file at `config path`; HIVEMIND_* variables override it)."""


@config.command("path")
def config_path() -> None:
    """Print the settings file's path."""
    from hivemind_app.config import default_config_path

    click.echo(str(default_config_path()))


@config.command("show")
def config_show() -> None:
    """Print the effective settings as JSON, secrets redacted."""
    print_json(public_view(load_settings()))


@config.command("set")
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Set KEY (section.field, e.g. embedding.model) to VALUE in the settings file."""
    path = set_config_value(key, value)
    shown = redact_url(value) if key.endswith("url") else ("***" if "password" in key or "token" in key else value)
    click.echo(f"{key} = {shown} (saved in {path})")
