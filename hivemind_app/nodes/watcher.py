"""The node's `watch` worker: watched folders followed live with watchfiles.

One step of the worker is one watching session: reconcile every watched folder against its files (so what
changed while no node ran, a laptop asleep or the node stopped, is picked up first), then follow the folders
that are there with watchfiles until the layout changes: a folder added or removed (by `watch add` in another
process), or one that went missing or came back. The step then returns and the supervisor starts the next
session at once. A burst of saves arrives as one batch (watchfiles' debounce) and is one reconcile of the
paths it reported (the whole folder only when a directory or a `.gitignore` changed), so a save costs the
same in a folder of ten files or of 100,000; a file moved between two watched folders is in one batch, so
the move is seen as a move.
A folder that is not there is never watched (it is checked again every `poll_s`), and never treated as
deleted: the reconcile reports it once and keeps its memories.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hivemind_app.hive import Hive
from hivemind_app.records.watch import WatchReport
from hivemind_app.sourcefiles import followed_event

log = logging.getLogger(__name__)

DEBOUNCE_MS = 300
POLL_S = 2.0
# When the system's limit on file watches is reached, the folders are reconciled this often instead.
LIMIT_POLL_S = 60.0
WATCH_LIMIT_HINT = (
    "the system's limit on file watches is reached, so watched folders are not followed live (they are "
    "reconciled every {every:.0f} s instead): raise it (Linux: `sudo sysctl fs.inotify.max_user_watches=524288`, "
    "and in /etc/sysctl.conf to keep it), or watch smaller folders"
)


class _StopFlag:
    """What watchfiles polls to stop: the supervisor stopping."""

    def __init__(self, stopping: Callable[[], bool]) -> None:
        self._stopping = stopping

    def is_set(self) -> bool:
        return self._stopping()


class FolderWatcher:
    def __init__(
        self,
        hive: Hive,
        stopping: Callable[[], bool],
        wait: Callable[[float], object],
        debounce_ms: int = DEBOUNCE_MS,
        poll_s: float = POLL_S,
    ) -> None:
        self.hive = hive
        self.stopping = stopping
        self.wait = wait
        self.debounce_ms = debounce_ms
        self.poll_s = poll_s
        self.updates = 0
        self.last_report: WatchReport | None = None
        self.sessions = 0
        self.limit_reached = False

    def _layout(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The watched folders that are there, and those that are not."""
        folders = self.hive.watched_roots()
        present = tuple(p for p in folders if Path(p).is_dir())
        return present, tuple(p for p in folders if p not in present)

    def _reconcile(self, folders: list[str] | None, paths: set[str] | None = None) -> None:
        report = self.hive.reconcile_watched(folders, paths=paths)
        self.last_report = report
        self.updates += 1
        if report.changes:
            log.info(
                "watched folders: %d added, %d changed, %d removed, %d moved (%d chunks stored, %d memories deleted)",
                report.added, report.changed, report.removed, report.moved,
                report.chunks_stored, report.memories_deleted,
            )

    def run(self) -> None:
        """One watching session (see the module docstring)."""
        import watchfiles

        self.sessions += 1
        self._reconcile(None)
        layout = self._layout()
        present = layout[0]
        if not present:
            self.wait(self.poll_s)
            return
        try:
            self._follow(watchfiles, layout)
        except (OSError, RuntimeError) as exc:  # watchfiles: "OS file watch limit reached", inotify: ENOSPC
            if "watch limit" not in str(exc).lower() and "no space left" not in str(exc).lower():
                raise
            if not self.limit_reached:
                log.error(WATCH_LIMIT_HINT.format(every=LIMIT_POLL_S))
                self.limit_reached = True
            self.wait(LIMIT_POLL_S)  # the next session reconciles everything and tries to watch again

    def _follow(self, watchfiles: Any, layout: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
        present = layout[0]
        for changes in watchfiles.watch(
            *present,
            watch_filter=lambda _change, path: followed_event(present, path),
            stop_event=_StopFlag(self.stopping),
            debounce=self.debounce_ms,
            rust_timeout=int(self.poll_s * 1000),
            yield_on_timeout=True,
            raise_interrupt=False,
            ignore_permission_denied=True,
        ):
            if self._layout() != layout:
                return  # the next session reconciles everything and watches the new layout
            if changes:
                paths = {path for _, path in changes}
                touched = [
                    root for root in present if any(p == root or p.startswith(root + os.sep) for p in paths)
                ]
                self._reconcile(touched or None, paths)
