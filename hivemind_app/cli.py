"""The `hivemind-app` command line. Every verb goes through the `Hive` facade; errors become one line."""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hivemind_app import __version__
from hivemind_app.config import NodeSettings, load_settings, public_view, redact_url, set_config_value
from hivemind_app.errors import ConfigError, HivemindError
from hivemind_app.ml.onnx_convert import set_conversion_reporter
from hivemind_app.timespec import humanise_age

F = TypeVar("F", bound=Callable[..., Any])

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    root = logging.getLogger("hivemind_app")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if os.environ.get("HIVEMIND_DEBUG") else logging.WARNING)
    root.propagate = False


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@contextmanager
def _hive() -> Iterator[Any]:
    from hivemind_app.hive import Hive

    hive = Hive(load_settings())
    try:
        yield hive
    finally:
        hive.close()


class _ShownProgress(Progress):
    """A progress display that a model conversion starting under it joins (rich shows one at a time)."""

    shown: ClassVar[list[Progress]] = []

    def start(self) -> None:
        super().start()
        _ShownProgress.shown.append(self)

    def stop(self) -> None:
        with suppress(ValueError):
            _ShownProgress.shown.remove(self)
        super().stop()


def _progress() -> Progress:
    return _ShownProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
        disable=not stderr.is_terminal and not os.environ.get("HIVEMIND_FORCE_PROGRESS"),
    )


class _ConversionBar:
    """Shows a model conversion (the ONNX backends' one-off first start) as a progress bar on stderr: its
    own, or a line in the progress display already shown (a `reembed` or an `import` that needs the model)."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._own = False
        self._task: Any = None

    def __call__(self, step: str, done: float) -> None:
        if self._progress is None:
            if _ShownProgress.shown:
                self._progress, self._own = _ShownProgress.shown[-1], False
            else:
                self._progress = Progress(
                    TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=stderr
                )
                self._progress.start()
                self._own = True
            self._task = self._progress.add_task("converting the embedding model", total=100)
        finished = done >= 1.0
        description = f"converting the model: {step}"
        if step == "failed":
            description = "embedding model conversion failed"
        elif finished:
            description = "embedding model converted for ONNX Runtime (once)"
        self._progress.update(self._task, completed=100 if finished else round(done * 100), description=description)
        if finished:
            if self._own:
                self._progress.stop()
            self._progress = None


class _Group(click.Group):
    """Turns hivemind errors into one line on stderr and a meaningful exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HivemindError as exc:
            stderr.print(f"error: {exc}", markup=False)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            stderr.print("interrupted", markup=False)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("HIVEMIND_DEBUG"):
                raise
            stderr.print(
                f"internal error: {type(exc).__name__}: {exc} (set HIVEMIND_DEBUG=1 for the traceback)", markup=False
            )
            sys.exit(70)


@click.group(cls=_Group, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hivemind-app")
@click.option("--no-node", is_flag=True, help="Browse only: do not host this machine's node runtime in the TUI.")
@click.pass_context
def cli(ctx: click.Context, no_node: bool) -> None:
    """hivemind-app: memory for AI coding assistants, local-first and shared across your machines.

    With no command it opens the TUI on a terminal, and prints an overview otherwise.
    """
    _setup_logging()
    if ctx.invoked_subcommand is not None:
        if stderr.is_terminal or os.environ.get("HIVEMIND_FORCE_PROGRESS"):
            set_conversion_reporter(_ConversionBar())
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        from hivemind_app.tui.app import run_tui

        if no_node:
            with _hive() as hive:
                run_tui(hive)
        else:
            from hivemind_app.nodes.runtime import NodeRuntime

            runtime = NodeRuntime(load_settings())
            run_tui(runtime.hive, node=runtime)
            runtime.hive.close()
        return
    with _hive() as hive:
        _print_overview(hive.status())
    click.echo("\nRun `hivemind-app --help` for every command.")


def _print_overview(status: dict[str, Any]) -> None:
    mem = status["memories"]
    emb = status["embedding"]
    click.echo(f"hivemind-app {__version__} on {status['node']['name']}")
    click.echo(f"  store:    {status['store']['path']}")
    click.echo(
        f"  memories: {mem['live']} ({mem['embedded']} with vectors, {mem['pending_embeddings']} waiting, "
        f"{mem['deleted']} deleted)"
    )
    click.echo(f"  model:    {emb['model']} ({emb['dim'] or '?'} dimensions)")
    redis = status["redis"]
    click.echo(f"  redis:    {redis['url'] if redis['configured'] else 'not configured (local store only)'}")


# -- store / import ---------------------------------------------------------------------------------


@cli.command()
@click.argument("text")
@click.option("--tag", "-t", "tags", multiple=True, help="Tag to attach (repeatable).")
@click.option("--source", "-s", help="Where the memory came from (a file, a URL, 'notes').")
@click.option("--session", "session_id", help="Session id to attach it to.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored memory as JSON.")
def store(text: str, tags: tuple[str, ...], source: str | None, session_id: str | None, as_json: bool) -> None:
    """Store TEXT as a memory (`-` reads it from standard input)."""
    from hivemind_app.content import decode_bytes

    if text == "-":
        text = decode_bytes(sys.stdin.buffer.read(), "standard input")
    with _hive() as hive:
        stored = hive.store_memory(text, tags=tags, source=source, session_id=session_id)
    if as_json:
        _print_json(
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


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tag", "-t", "tags", multiple=True, help="Tag every imported memory (repeatable).")
@click.option("--strict", is_flag=True, help="Exit with status 1 when any file was skipped.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_(paths: tuple[Path, ...], tags: tuple[str, ...], strict: bool, as_json: bool) -> None:
    """Import text and code files (directories are walked), chunked by paragraph."""
    from hivemind_app.importer import find_files, import_paths

    with _hive() as hive:
        files, problems = find_files(list(paths), hive.settings.importer.extensions)
        with _progress() as progress:
            task = progress.add_task("importing", total=len(files))
            report = import_paths(hive, list(paths), tags, on_file=lambda _p: progress.advance(task), files=files)
        report.skipped[:0] = problems
    if as_json:
        _print_json(report.to_dict())
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


# -- recall / show / delete ---------------------------------------------------------------------------


@cli.command()
@click.argument("query")
@click.option("--mode", "-m", type=click.Choice(["hybrid", "vector", "keyword"]), default="hybrid", show_default=True)
@click.option("--limit", "-n", type=int, default=None, help="How many results (default: search.default_limit).")
@click.option("--session", "session_id", help="Only memories of this session.")
@click.option("--source", help="Only memories from this source (glob patterns allowed: '*/notes/*').")
@click.option("--tag", "-t", "tags", multiple=True, help="Only memories with this tag (repeatable: all must match).")
@click.option("--since", help="Only memories created since: 30m, 12h, 7d, 2w, or a date.")
@click.option("--until", help="Only memories created before this time.")
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
    full: bool,
    reformulate: bool,
    as_json: bool,
) -> None:
    """Search memories, best first (hybrid: vector + keyword, fused)."""
    with _hive() as hive:
        filters = hive.make_filters(session_id=session_id, source=source, tags=tags, since=since, until=until)
        result = hive.search_memory(query, limit=limit, mode=mode, filters=filters, reformulate=reformulate)
    if as_json:
        _print_json(result.to_dict())
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
        labels = "  ".join(filter(None, [memory.source, " ".join(f"#{t}" for t in memory.tags)]))
        click.echo(f"{rank:>2}. {hit.score:.4f}  {memory.id[:12]}  {humanise_age(memory.age_seconds())}  {labels}")
        click.echo(_indent(memory.text, full))


def _indent(text: str, full: bool) -> str:
    lines = text.splitlines()
    if not full and len(lines) > 3:
        lines = [*lines[:3], f"... ({len(lines) - 3} more lines)"]
    width = 110
    shown = [ln if full or len(ln) <= width else ln[: width - 1] + "…" for ln in lines]
    return textwrap.indent("\n".join(shown), "    ")


@cli.command()
@click.argument("memory_id")
@click.option("--json", "as_json", is_flag=True)
def show(memory_id: str, as_json: bool) -> None:
    """Show one memory by id (a unique prefix of at least 4 characters will do)."""
    with _hive() as hive:
        memory = hive.get_memory(memory_id)
    if as_json:
        _print_json(memory.to_dict())
        return
    if memory.deleted:
        click.echo(f"{memory.id} (deleted)")
        return
    click.echo(memory.id)
    click.echo(f"  source:  {', '.join(memory.sources) or '-'}")
    click.echo(f"  tags:    {', '.join(memory.tags) or '-'}")
    click.echo(f"  session: {memory.session_id or '-'}")
    click.echo(f"  created: {humanise_age(memory.age_seconds())} on {memory.origin_node}")
    click.echo("")
    click.echo(memory.text)


@cli.command()
@click.argument("memory_id")
@click.option("--json", "as_json", is_flag=True)
def delete(memory_id: str, as_json: bool) -> None:
    """Delete a memory (it leaves search at once; a tombstone stays for sync)."""
    with _hive() as hive:
        memory = hive.delete_memory(memory_id)
    if as_json:
        _print_json({"deleted": memory.id})
    else:
        click.echo(f"deleted {memory.id[:12]}")


# -- status / doctor / reembed / config ---------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Counts, store path and size, model and dimension, Redis."""
    with _hive() as hive:
        data = hive.status()
    if as_json:
        _print_json(data)
        return
    _print_overview(data)
    store_info = data["store"]
    click.echo(
        f"  size:     {_size(store_info['file_bytes'])} (+{_size(store_info['wal_bytes'])} WAL), "
        f"schema {store_info['schema_version']}"
    )
    click.echo(
        f"  tags:     {data['memories']['tags']}   sessions: {data['sessions']}   "
        f"learning queue: {data['learning_queue']}"
    )
    index_line = _index_line(data.get("vector_index"))
    if index_line:
        click.echo(f"  index:    {index_line}")
    click.echo(f"  config:   {data['config_path']}")
    if data["embedding"]["mismatch"]:
        stderr.print(f"note: {data['embedding']['mismatch']}", markup=False)


def _index_line(index: dict[str, Any] | None) -> str | None:
    """The approximate vector index, once the store is large enough to have one (None: searches are exact)."""
    if not index or index["state"] in ("off", "exact"):
        return None
    state = index["state"]
    if state == "building":
        done = f" {index['progress']:.0%}" if index.get("progress") is not None else ""
        return f"building{done} (searches are exact until it is ready)"
    if state == "ready":
        changed = f", {index['delta']:,} changed since saved" if index.get("delta") else ""
        return f"ready, {index['indexed']:,} vectors{changed}"
    return f"{state}: {index.get('detail') or 'searches are exact'}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def doctor(as_json: bool) -> None:
    """Check sqlite-vec, the data dir, the store, the model, Redis and the optional extras."""
    from hivemind_app.doctor import run_checks

    checks = run_checks(load_settings())
    failed = [c for c in checks if c.required and not c.ok]
    if as_json:
        _print_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        for check in checks:
            mark = "ok  " if check.ok else ("FAIL" if check.required else "--  ")
            click.echo(f"{mark} {check.name:<17} {check.detail}")
    if failed:
        sys.exit(1)


@cli.command()
@click.option(
    "--model",
    help="Model to switch to (default: embedding.model from the settings); with embedding.backend = onnx-int8, "
    "its int8 vectors.",
)
def reembed(model: str | None) -> None:
    """Embed every memory with the configured model, then switch searches to it. Safe to interrupt and rerun."""
    with _hive() as hive, _progress() as progress:
        task = progress.add_task("re-embedding", total=None)

        def show(state: Any) -> None:
            progress.update(task, total=state.total, completed=state.done, description=f"embedding with {state.model}")

        state = hive.reembed(model=model, progress=show)
    dropped = f"; dropped vectors of {', '.join(state.dropped)}" if state.dropped else ""
    click.echo(f"{state.done} memories embedded with {state.model}; searches now use it{dropped}")


@cli.command()
@click.option("--roles", help="Comma-separated roles: embed, infer, train (default: node.roles from the settings).")
@click.option("--port", type=int, help="API port (default node.port, 8080; 0 picks a free one).")
def node(roles: str | None, port: int | None) -> None:
    """Run this machine's node headless: HTTP API, discovery, heartbeats and the workers of its roles."""
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
        f"node {settings.node.name} ({runtime.hive.db.node_id}) serving on {settings.node.bind}:{runtime.port}, "
        f"roles: {', '.join(runtime.roles) or 'none'}; Ctrl+C stops it"
    )
    done.wait()
    click.echo("stopping: finishing requests in hand")
    runtime.stop()


@cli.command()
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
        _print_json({"source": source, "peers": peers})
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
            f"{seen:<10} {peer['health']}"
        )


@cli.command()
@click.option("--status", "show_status", is_flag=True, help="Show the sync state instead of syncing.")
@click.option("--verify", is_flag=True, help="Also compare every memory with Redis and repair any drift.")
@click.option("--json", "as_json", is_flag=True)
def sync(show_status: bool, verify: bool, as_json: bool) -> None:
    """Push local writes to Redis and pull the other nodes' now (a running node does this continuously)."""
    with _hive() as hive:
        report = None if show_status else hive.sync(force=True)
        if hive.hub is None:
            raise ConfigError("No hub configured: set redis.url (hivemind-app config set redis.url redis://...).")
        verified = hive.verify_sync() if verify and report is not None and report.online else None
        data = hive.status()["sync"]
    if as_json:
        _print_json(
            {
                **data,
                "pushed": report.pushed if report else None,
                "pulled": report.pulled if report else None,
                "verify": verified,
            }
        )
        return
    if report is not None:
        if report.online:
            click.echo(f"synced with {data['endpoint']}: pushed {report.pushed}, pulled {report.pulled}")
        else:
            stderr.print(f"offline: {report.error}", markup=False)
    if verified is not None:
        click.echo(
            f"verified {verified['local']} local / {verified['remote']} remote memories: "
            f"repaired {verified['to_push']} missing in Redis, {verified['to_pull']} missing here"
        )
    state = "online" if data["online"] else f"offline since {humanise_age(time.time() - data['offline_since'])}"
    click.echo(f"  hub:       {data['endpoint']} ({state})")
    click.echo(f"  outbox:    {data['outbox']} writes waiting")
    click.echo(f"  cursor:    {data['feed_cursor'] or '-'}")
    for label, key in (("last push", "last_push"), ("last pull", "last_pull")):
        click.echo(f"  {label}: {humanise_age(time.time() - data[key]) if data[key] else 'never'}")
    click.echo(f"  failures:  {data['failed_syncs']} syncs, {data['failed_applies']} applies")
    click.echo(f"  conflicts: {data['conflicts']}")
    if data["last_error"] and not data["online"]:
        click.echo(f"  error:     {data['last_error']}")
    if not data["online"]:
        sys.exit(69)


@cli.command()
@click.argument("session_id", required=False)
@click.option(
    "--keep", type=click.Choice(["A", "B"]), help="A: the winning edit (already everywhere); B: the other one."
)
@click.option("--json", "as_json", is_flag=True)
def conflicts(session_id: str | None, keep: str | None, as_json: bool) -> None:
    """Sessions edited on two nodes while apart: both edits are kept until you choose one with --keep."""
    with _hive() as hive:
        if keep is not None:
            if session_id is None:
                raise click.UsageError("Name the session to resolve: conflicts SESSION --keep A|B")
            hive.resolve_conflict(session_id, keep)
            click.echo(f"kept {'A (the winner)' if keep == 'A' else 'B (the other edit)'} for session {session_id}")
            return
        found = hive.conflicts()
    if session_id is not None:
        found = {k: v for k, v in found.items() if k == session_id}
    if as_json:
        _print_json(found)
        return
    if not found:
        click.echo("no conflicts")
        return
    for sid, record in found.items():
        click.echo(f"session {sid}:")
        for label, side in (("A", record["winner"]), ("B", record["loser"])):
            task = side["state"].get("current_task", "") if isinstance(side["state"], dict) else ""
            click.echo(f"  {label} from {side['node']}: current_task={task!r}")
        click.echo(f"  resolve with: hivemind-app conflicts {sid} --keep A   (or --keep B)")


@cli.group()
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
    _print_json(public_view(load_settings()))


@config.command("set")
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Set KEY (section.field, e.g. embedding.model) to VALUE in the settings file."""
    path = set_config_value(key, value)
    shown = redact_url(value) if key.endswith("url") else ("***" if "password" in key or "token" in key else value)
    click.echo(f"{key} = {shown} (saved in {path})")


def _register_front_ends() -> None:
    from hivemind_app.claude.commands import COMMANDS as CLAUDE_COMMANDS
    from hivemind_app.training_cli import COMMANDS as TRAINING_COMMANDS

    for command in [*CLAUDE_COMMANDS, *TRAINING_COMMANDS]:
        cli.add_command(command)


_register_front_ends()


def main() -> None:
    cli(prog_name="hivemind-app")


if __name__ == "__main__":
    main()
