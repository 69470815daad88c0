"""Helpers every area of the CLI shares: the consoles, opening the hive, JSON output, progress bars, formatters.

Nothing here imports the hive or a model library at module level: `hivemind-app --help` and the hooks stay
fast. Area modules import from here (and from `group`), never from each other.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, ClassVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hivemind_app.config import load_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hivemind_app.doctor import Check
    from hivemind_app.hive import Hive

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """`--json` output: indented, non-ASCII kept, anything else (paths, times) as its string."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def report_checks(checks: Sequence[Check], as_json: bool, name_width: int) -> None:
    """A doctor's findings, one line each (`ok`, `FAIL` for a required check, `--` for an optional one) or as
    JSON; exit status 1 when a required check failed."""
    failed = [c for c in checks if c.required and not c.ok]
    if as_json:
        print_json({"ok": not failed, "checks": [c.to_dict() for c in checks]})
    else:
        for check in checks:
            mark = "ok  " if check.ok else ("FAIL" if check.required else "--  ")
            click.echo(f"{mark} {check.name:<{name_width}} {check.detail}")
    if failed:
        sys.exit(1)


@contextmanager
def open_hive() -> Iterator[Hive]:
    """The `Hive` facade on the effective settings, closed when the block ends."""
    from hivemind_app.hive import Hive

    hive = Hive(load_settings())
    try:
        yield hive
    finally:
        hive.close()


class ShownProgress(Progress):
    """A progress display that a model conversion starting under it joins (rich shows one at a time)."""

    shown: ClassVar[list[Progress]] = []

    def start(self) -> None:
        super().start()
        ShownProgress.shown.append(self)

    def stop(self) -> None:
        with suppress(ValueError):
            ShownProgress.shown.remove(self)
        super().stop()


def progress_bar() -> Progress:
    """A progress display on stderr, shown on a terminal (or with HIVEMIND_FORCE_PROGRESS), silent otherwise."""
    return ShownProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=False,
        disable=not stderr.is_terminal and not os.environ.get("HIVEMIND_FORCE_PROGRESS"),
    )


class ConversionBar:
    """Shows a model conversion (the ONNX backends' one-off first start) as a progress bar on stderr: its
    own, or a line in the progress display already shown (a `reembed` or an `import` that needs the model)."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._own = False
        self._task: Any = None

    def __call__(self, step: str, done: float) -> None:
        if self._progress is None:
            if ShownProgress.shown:
                self._progress, self._own = ShownProgress.shown[-1], False
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


def format_size(n: int) -> str:
    """Bytes for people: `512 B`, `1.7 MB`."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def indent_text(text: str, full: bool) -> str:
    """A memory's text indented under its heading line: at most 3 lines of 110 characters unless `full`."""
    lines = text.splitlines()
    if not full and len(lines) > 3:
        lines = [*lines[:3], f"... ({len(lines) - 3} more lines)"]
    width = 110
    shown = [ln if full or len(ln) <= width else ln[: width - 1] + "…" for ln in lines]
    return textwrap.indent("\n".join(shown), "    ")
