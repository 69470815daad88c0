"""The settings file and the local adapters followed live with watchfiles (no polling).

`follow` is one step of a supervised worker: it watches some paths until stopped, calling `on_change` after
each debounced batch of changes that `wanted` keeps (and once every `timeout_s` with no change, as a
backstop for a filesystem that drops events). A path that does not exist yet is watched through its parent.

`SettingsFollower` applies a changed `config.toml` to the running node where that is safe: the settings read
at each use (`SAFE_SECTIONS`, and `search` but for the ANN index's, which is built at start). A file that does
not validate is refused with the reason and the node keeps the settings it has; a change to any other setting
is reported as taking effect at the next start, and not applied. An empty file, or one still changing
(its size or mtime moved during a short settle after the debounce), is a save in progress: it is not read,
so a half-written file never resets the node to defaults. A change to `importer.extensions` or
`importer.chunk_chars` applies to files read from now on; the watched folders are reconciled against it at
the node's next start (reported).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from hivemind_app.config import Settings, default_config_path, load_settings
from hivemind_app.errors import ConfigError

log = logging.getLogger(__name__)

DEBOUNCE_MS = 300
SAFE_SECTIONS = ("importer",)
SETTLE_S = 0.15
# Applied live, but the watched folders already read are brought in step at the next start only.
WATCH_RESTART = ("importer.extensions", "importer.chunk_chars")


class _StopFlag:
    def __init__(self, stopping: Callable[[], bool]) -> None:
        self._stopping = stopping

    def is_set(self) -> bool:
        return self._stopping()


def follow(
    paths: Sequence[Path],
    wanted: Callable[[str], bool],
    on_change: Callable[[], None],
    stopping: Callable[[], bool],
    timeout_s: float = 60.0,
    debounce_ms: int = DEBOUNCE_MS,
    recursive: bool = True,
) -> None:
    """Watch `paths` (or their nearest existing parents) and call `on_change` after each batch `wanted` keeps."""
    import watchfiles

    roots = sorted({str(_existing(p)) for p in paths})
    for changes in watchfiles.watch(
        *roots,
        watch_filter=lambda _change, path: wanted(path),
        stop_event=_StopFlag(stopping),
        debounce=debounce_ms,
        rust_timeout=int(timeout_s * 1000),
        yield_on_timeout=True,
        raise_interrupt=False,
        ignore_permission_denied=True,
        recursive=recursive,
    ):
        del changes  # a batch, or a timeout: either way, look again
        on_change()


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _changed(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    """(section, field) of every setting that differs."""
    out: list[tuple[str, str]] = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend((section, key) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key))
        elif a != b:
            out.append((section, ""))
    return out


def live_safe(section: str, field: str) -> bool:
    return section in SAFE_SECTIONS or (section == "search" and field != "" and not field.startswith("ann"))


class SettingsFollower:
    """Keeps the running node's `settings` (the object its Hive and services share) in step with the file."""

    def __init__(
        self, settings: Settings, stopping: Callable[[], bool], wait: Callable[[float], object], poll_s: float = 2.0
    ) -> None:
        self.settings = settings
        self.stopping = stopping
        self.wait = wait
        self.poll_s = poll_s
        self.path = default_config_path()
        try:  # what the file said when we last looked (command-line overrides aside)
            self.base = load_settings()
        except ConfigError:
            self.base = settings
        self.applied: list[str] = []
        self.refused: str | None = None
        self.needs_restart: list[str] = []
        self.ignored: str | None = None
        self.checks = 0

    def run(self) -> None:
        """Follow the file's directory (not recursively); while that directory does not exist, look every
        `poll_s` (watching an ancestor instead could mean a whole home directory)."""
        directory = self.path.parent
        if not directory.is_dir():
            self.wait(self.poll_s)
            return
        name = self.path.name
        self.check()  # a change made while no watch was in place
        follow([directory], lambda p: Path(p).name == name, self.check, self.stopping, recursive=False)

    def check(self) -> None:
        """Read the file again; apply what is safe, refuse what does not validate, report what needs a restart."""
        self.checks += 1
        unsettled = self._unsettled()
        if unsettled is not None:
            if self.ignored != unsettled:
                log.info("settings file not read: %s", unsettled)
            self.ignored = unsettled
            return
        self.ignored = None
        try:
            new = load_settings()
        except ConfigError as exc:
            if self.refused != str(exc):
                log.error("settings file refused: %s; the node keeps its settings", str(exc).rstrip("."))
            self.refused = str(exc)
            return
        self.refused = None
        old_dump, new_dump = self.base.model_dump(), new.model_dump()
        changed = _changed(old_dump, new_dump)
        if not changed:
            return
        applied: list[str] = []
        restart: list[str] = []
        for section, field in changed:
            name = f"{section}.{field}" if field else section
            if live_safe(section, field):
                setattr(getattr(self.settings, section), field, getattr(getattr(new, section), field))
                applied.append(name)
            else:
                restart.append(name)
        self.base = new
        self.applied = applied
        self.needs_restart = restart
        if applied:
            log.warning("settings applied live: %s", ", ".join(applied))  # shown by a headless node
        if restart:
            log.warning("settings changed that take effect at the next start: %s", ", ".join(restart))
        stale = [name for name in applied if name in WATCH_RESTART]
        if stale:
            log.warning(
                "%s changed: files read from now on use it; restart the node to bring the watched folders in step",
                ", ".join(stale),
            )

    def _unsettled(self) -> str | None:
        """Why the file is not read now (empty, or still being written), or None."""
        try:
            before = os.stat(self.path)
        except OSError:
            return None  # no file: the defaults, as at a start
        if before.st_size == 0:
            return "it is empty (a save in progress?); the node keeps its settings"
        self.wait(SETTLE_S)
        try:
            after = os.stat(self.path)
        except OSError:
            return "it went away while being read; the node keeps its settings"
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            return "it is still being written; it is read again at its next change"
        return None


def in_dir(directory: Path, names: Iterable[str] = ()) -> Callable[[str], bool]:
    """A `wanted` filter: paths under `directory`, or with one of these file names."""
    prefix = str(directory.resolve())
    names = tuple(names)

    def wanted(path: str) -> bool:
        return path.startswith(prefix) or Path(path).name in names

    return wanted
