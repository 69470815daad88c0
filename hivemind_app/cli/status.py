"""Status: `status`, `doctor`, and the overview `hivemind-app` prints when its output is not a terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from hivemind_app import __version__
from hivemind_app.cli.common import format_size, open_hive, print_json, report_checks, stderr
from hivemind_app.config import load_settings

if TYPE_CHECKING:
    from hivemind_app.records.status import HiveStatus, IndexState
    from hivemind_app.trust.hivekey import KeyState


def register_commands(cli: click.Group) -> None:
    cli.add_command(status)
    cli.add_command(doctor)


def print_overview(status: HiveStatus) -> None:
    """The first lines of `status`: version and node, store, memory counts, model, Redis."""
    mem = status.memories
    emb = status.embedding
    click.echo(f"hivemind-app {__version__} on {status.node.name}")
    click.echo(f"  store:    {status.store.path}")
    click.echo(
        f"  memories: {mem.live} ({mem.embedded} with vectors, {mem.pending_embeddings} waiting, {mem.deleted} deleted)"
    )
    click.echo(f"  model:    {emb.model} ({emb.dim or '?'} dimensions)")
    redis = status.redis
    click.echo(f"  redis:    {redis.url if redis.configured else 'not configured (local store only)'}")


def show_overview() -> None:
    """`hivemind-app` with no command and no terminal: the overview, then a pointer to `--help`."""
    with open_hive() as hive:
        print_overview(hive.status())
    click.echo("\nRun `hivemind-app --help` for every command.")


@click.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Counts, store path and size, model and dimension, Redis."""
    from hivemind_app.trust.hivekey import key_state

    settings = load_settings()
    key = key_state(settings.hive_key_path)
    with open_hive() as hive:
        data = hive.status()
    if as_json:
        print_json({**data.to_dict(), "hive_key": key.to_dict()})
        return
    print_overview(data)
    store_info = data.store
    click.echo(
        f"  size:     {format_size(store_info.file_bytes)} (+{format_size(store_info.wal_bytes)} WAL), "
        f"schema {store_info.schema_version}"
    )
    click.echo(f"  tags:     {data.memories.tags}   sessions: {data.sessions}   learning queue: {data.learning_queue}")
    index_line = _index_line(data.vector_index)
    if index_line:
        click.echo(f"  index:    {index_line}")
    click.echo(f"  config:   {data.config_path}")
    click.echo(f"  hive key: {_key_line(key)}")
    if data.embedding.mismatch:
        stderr.print(f"note: {data.embedding.mismatch}", markup=False)


def _key_line(key: KeyState) -> str:
    from hivemind_app.trust.hivekey import ALONE

    if key.problem:
        return f"unusable: {key.problem}"
    if key.key is None:
        return f"none: {ALONE} (`hivemind-app hive init`, or `hivemind-app hive join`, which asks for the join code)"
    return f"fingerprint {key.fingerprint}"


def _index_line(index: IndexState | None) -> str | None:
    """The approximate vector index, once the store is large enough to have one (None: searches are exact)."""
    if not index or index.state in ("off", "exact"):
        return None
    state = index.state
    if state == "building":
        done = f" {index.progress:.0%}" if index.progress is not None else ""
        return f"building{done} (searches are exact until it is ready)"
    if state == "ready":
        changed = f", {index.delta:,} changed since saved" if index.delta else ""
        return f"ready, {index.indexed:,} vectors{changed}"
    return f"{state}: {index.detail or 'searches are exact'}"


@click.command()
@click.option("--json", "as_json", is_flag=True)
def doctor(as_json: bool) -> None:
    """Check sqlite-vec, the data dir, the store, the model, Redis, the hive key and the optional extras."""
    from hivemind_app.doctor import run_checks

    report_checks(run_checks(load_settings()), as_json, name_width=17)
