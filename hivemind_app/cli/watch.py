"""Watched folders: `watch add`, `watch list`, `watch remove`. A running node follows them live."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hivemind_app.cli.common import open_hive, print_json, progress_bar, stderr
from hivemind_app.display import one_line
from hivemind_app.timespec import humanise_age


def register_commands(cli: click.Group) -> None:
    cli.add_command(watch)


@click.group()
def watch() -> None:
    """Folders imported now and kept in step with their files (a running node follows them live)."""


@watch.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tag", "-t", "tags", multiple=True, help="Tag every memory from these folders (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the import's report as JSON.")
def watch_add(paths: tuple[Path, ...], tags: tuple[str, ...], as_json: bool) -> None:
    """Import folders now and record them, so their changes are followed from now on."""
    with open_hive() as hive, progress_bar() as progress:
        task = progress.add_task("reading", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = hive.watch_folders(list(paths), tags, progress=advance)
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(
        f"watching {_count(len(paths), 'folder')}: {_count(report.files_seen, 'file')}, "
        f"{report.chunks_stored} chunks stored, {report.chunks_kept} already known"
    )
    _print_skipped(report.skipped)


@watch.command("list")
@click.option("--json", "as_json", is_flag=True)
def watch_list(as_json: bool) -> None:
    """The watched folders: files, memories, last change, and the files that could not be read."""
    with open_hive() as hive:
        folders = hive.watched_folders()
    if as_json:
        print_json([folder.to_dict() for folder in folders])
        return
    if not folders:
        click.echo("no watched folders (add one with `hivemind-app watch add DIR`)")
        return
    for folder in folders:
        changed = humanise_age(time.time() - folder.last_change) if folder.last_change else "never"
        state = "  MISSING" if folder.missing else "  SUSPECT" if folder.suspect else ""
        click.echo(
            f"{one_line(folder.path)}{state}\n  {_count(folder.files, 'file')}, {_count(folder.memories, 'memory')}, "
            f"last change {changed}" + (f", tags {one_line(', '.join(folder.tags))}" if folder.tags else "")
        )
        if folder.error:
            click.echo(f"  {one_line(folder.error)}")
        for path, reason in folder.skipped:
            click.echo(f"  not read: {one_line(path)}: {one_line(reason)}")


@watch.command("remove")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--forget", is_flag=True, help="Also delete the memories its files gave (tombstones that sync).")
@click.option("--json", "as_json", is_flag=True)
def watch_remove(path: Path, forget: bool, as_json: bool) -> None:
    """Stop following a folder (its memories stay unless --forget)."""
    with open_hive() as hive:
        folder, deleted = hive.unwatch_folder(path, forget)
    if as_json:
        print_json({"folder": folder, "deleted": deleted})
        return
    click.echo(f"stopped watching {one_line(folder)}" + (f"; deleted {_count(deleted, 'memory')}" if forget else ""))


def _print_skipped(skipped: list[tuple[str, str]]) -> None:
    if skipped:
        stderr.print(f"not read {len(skipped)}:", markup=False)
        for path, reason in skipped:
            stderr.print(f"  {one_line(path)}: {one_line(reason)}", markup=False)


def _count(n: int, noun: str) -> str:
    plural = "memories" if noun == "memory" else f"{noun}s"
    return f"{n} {noun if n == 1 else plural}"
