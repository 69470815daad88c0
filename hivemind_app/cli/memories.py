"""Memories: `store`, `import`, `recall`, `show`, `delete`, `reembed`."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hivemind_app.cli.common import indent_text, open_hive, print_json, progress_bar, stderr
from hivemind_app.display import one_line, terminal_safe
from hivemind_app.timespec import humanise_age

if TYPE_CHECKING:
    from hivemind_app.records.memories import Memory


def register_commands(cli: click.Group) -> None:
    for command in (store, import_, recall, show, delete, reembed):
        cli.add_command(command)


@click.command()
@click.argument("text")
@click.option("--tag", "-t", "tags", multiple=True, help="Tag to attach (repeatable).")
@click.option("--source", "-s", help="Where the memory came from (a file, a URL, 'notes').")
@click.option("--session", "session_id", help="Session id to attach it to.")
@click.option("--project", help="The project it belongs to (default: the git repository around the current directory).")
@click.option("--global", "everywhere", is_flag=True, help="Recall and inject it in every project (tag `global`).")
@click.option(
    "--at",
    "--occurred",
    "occurred_at",
    help="When what it describes happened, if not now: an ISO date (2026-05-14), 3d (ago), or unix seconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stored memory as JSON.")
def store(
    text: str,
    tags: tuple[str, ...],
    source: str | None,
    session_id: str | None,
    project: str | None,
    everywhere: bool,
    occurred_at: str | None,
    as_json: bool,
) -> None:
    """Store TEXT as a memory of this project (`-` reads it from standard input)."""
    from hivemind_app.content import decode_bytes
    from hivemind_app.projects import project_of
    from hivemind_app.records.memories import GLOBAL_TAG

    if text == "-":
        text = decode_bytes(sys.stdin.buffer.read(), "standard input")
    project = project or project_of(Path.cwd())
    tags = (*tags, GLOBAL_TAG) if everywhere else tags
    with open_hive() as hive:
        stored = hive.store_memory(
            text, tags=tags, source=source, session_id=session_id, project=project, occurred_at=occurred_at
        )
    if as_json:
        print_json(
            {
                "created": stored.created,
                "embedded": stored.embedded,
                "redacted": stored.redacted,
                **stored.memory.to_dict(),
            }
        )
        return
    verb = "stored" if stored.created else "already known, merged"
    vector = "" if stored.embedded else " (no vector yet: keyword search only until it is embedded)"
    secrets = " (secrets removed before storing)" if stored.redacted else ""
    click.echo(f"{verb} {stored.memory.id[:12]}{vector}{secrets}")


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tag", "-t", "tags", multiple=True, help="Tag every imported memory (repeatable).")
@click.option(
    "--at",
    "--occurred",
    "occurred_at",
    help="When what the files describe happened (meeting notes of a day): an ISO date, 3d (ago), or unix seconds.",
)
@click.option("--strict", is_flag=True, help="Exit with status 1 when any file was skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_(
    paths: tuple[Path, ...], tags: tuple[str, ...], occurred_at: str | None, strict: bool, as_json: bool
) -> None:
    """Import text and code files (directories are walked), chunked by paragraph."""
    from hivemind_app.importer import find_files, import_paths
    from hivemind_app.timespec import occurred_time

    at = occurred_time(occurred_at)  # checked before any file is read: a bad date imports nothing
    with open_hive() as hive:
        files, problems = find_files(list(paths), hive.settings.importer.extensions)
        with progress_bar() as progress:
            task = progress.add_task("importing", total=len(files))
            report = import_paths(
                hive, list(paths), tags, on_file=lambda _p: progress.advance(task), files=files, occurred_at=at
            )
        report.skipped[:0] = problems
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(
            f"imported {report.files_imported} of {report.files_seen} files: {report.chunks} chunks, "
            f"{report.new_memories} new memories, {report.merged_memories} already known"
        )
        if report.skipped:
            stderr.print(f"skipped {len(report.skipped)}:", markup=False)
            for path, reason in report.skipped:
                stderr.print(f"  {path}: {reason}", markup=False)
    if strict and report.skipped:
        sys.exit(1)


@click.command()
@click.argument("query")
@click.option("--mode", "-m", type=click.Choice(["hybrid", "vector", "keyword"]), default="hybrid", show_default=True)
@click.option("--limit", "-n", type=int, default=None, help="How many results (default: search.default_limit).")
@click.option("--session", "session_id", help="Only memories of this session.")
@click.option("--source", help="Only memories from this source (glob patterns allowed: '*/notes/*').")
@click.option("--tag", "-t", "tags", multiple=True, help="Only memories with this tag (repeatable: all must match).")
@click.option("--since", help="Only memories about (else created) since: 30m, 12h, 7d, 2w, or a date.")
@click.option("--until", help="Only memories about (else created) before this time.")
@click.option(
    "--project",
    "projects",
    multiple=True,
    help="Search this project's memories (repeatable) instead of the current directory's project.",
)
@click.option("--all-projects", is_flag=True, help="Search every project's memories.")
@click.option("--full", is_flag=True, help="Print each memory's whole text.")
@click.option("--reformulate", is_flag=True, help="Let the local LLM rewrite the query too (slower).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def recall(
    query: str,
    mode: str,
    limit: int | None,
    session_id: str | None,
    source: str | None,
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
    projects: tuple[str, ...],
    all_projects: bool,
    full: bool,
    reformulate: bool,
    as_json: bool,
) -> None:
    """Search memories, best first (hybrid: vector + keyword, fused): this project's, those of no project and
    those stored `--global`, unless told otherwise."""
    scope = scope_of(projects, all_projects)
    with open_hive() as hive:
        filters = hive.make_filters(
            session_id=session_id, source=source, tags=tags, since=since, until=until, projects=scope
        )
        result = hive.search_memory(query, limit=limit, mode=mode, filters=filters, reformulate=reformulate)
    if as_json:
        print_json(result.to_dict())
        return
    if result.fallback:
        stderr.print(f"note: {result.fallback}", markup=False)
    if result.reformulated:
        stderr.print(f"also searched: {result.reformulated}", markup=False)
    if not result.hits:
        click.echo("no memories match")
        return
    for rank, hit in enumerate(result.hits, 1):
        memory = hit.memory
        labels = one_line("  ".join(filter(None, [memory.source, " ".join(f"#{t}" for t in memory.tags)])))
        click.echo(f"{rank:>2}. {hit.score:.4f}  {memory.id[:12]}  {_when(memory)}  {labels}")
        click.echo(indent_text(terminal_safe(memory.text), full))


def scope_of(projects: tuple[str, ...], all_projects: bool) -> tuple[str, ...] | None:
    """The projects a recall covers: those named, else the current directory's (none outside a repository:
    then only memories of no project and global ones); None with `--all-projects`."""
    if all_projects:
        if projects:
            raise click.UsageError("--project and --all-projects do not go together; give one.")
        return None
    if projects:
        return projects
    from hivemind_app.projects import project_of

    here = project_of(Path.cwd())
    return (here,) if here else ()


@click.command()
@click.argument("memory_id")
@click.option("--json", "as_json", is_flag=True)
def show(memory_id: str, as_json: bool) -> None:
    """Show one memory by id (a unique prefix of at least 4 characters will do)."""
    with open_hive() as hive:
        memory = hive.get_memory(memory_id)
        spans = [] if memory.deleted else hive.source_spans(memory.id)
    if as_json:
        print_json({**memory.to_dict(), "files": [span.to_dict() for span in spans]})
        return
    if memory.deleted:
        click.echo(f"{memory.id} (deleted)")
        return
    click.echo(memory.id)
    click.echo(f"  source:  {one_line(', '.join(memory.sources)) or '-'}")
    click.echo(f"  tags:    {one_line(', '.join(memory.tags)) or '-'}")
    click.echo(f"  session: {one_line(memory.session_id or '-')}")
    click.echo(f"  project: {one_line(memory.project or '-')}")
    for span in spans:
        click.echo(f"  file:    {one_line(span.path)} bytes {span.start}-{span.end}")
    click.echo(f"  created: {humanise_age(memory.age_seconds())} on {one_line(memory.origin_node)}")
    if memory.occurred_at is not None:
        click.echo(f"  about:   {datetime.fromtimestamp(memory.occurred_at).isoformat(' ', 'minutes')}")
    click.echo("")
    click.echo(terminal_safe(memory.text))


def _when(memory: Memory) -> str:
    """A hit's time on its line: the day it describes when known (`about 2025-05-14`), else how long ago it
    was stored (`5h ago`)."""
    if memory.occurred_at is not None:
        return f"about {datetime.fromtimestamp(memory.occurred_at).date().isoformat()}"
    return humanise_age(memory.age_seconds())


@click.command()
@click.argument("memory_id")
@click.option("--json", "as_json", is_flag=True)
def delete(memory_id: str, as_json: bool) -> None:
    """Delete a memory (it leaves search at once; a tombstone stays for sync)."""
    with open_hive() as hive:
        memory = hive.delete_memory(memory_id)
    if as_json:
        print_json({"deleted": memory.id})
    else:
        click.echo(f"deleted {memory.id[:12]}")


@click.command()
@click.option(
    "--model",
    help="Model to switch to (default: embedding.model from the settings); with embedding.backend = onnx-int8, "
    "its int8 vectors.",
)
def reembed(model: str | None) -> None:
    """Embed every memory with the configured model, then switch searches to it. Safe to interrupt and rerun."""
    with open_hive() as hive, progress_bar() as progress:
        task = progress.add_task("re-embedding", total=None)

        def show(state: Any) -> None:
            progress.update(task, total=state.total, completed=state.done, description=f"embedding with {state.model}")

        state = hive.reembed(model=model, progress=show)
    dropped = f"; dropped vectors of {', '.join(state.dropped)}" if state.dropped else ""
    click.echo(f"{state.done} memories embedded with {state.model}; searches now use it{dropped}")
