"""The indexes of one store in this process (one per embedding space), and the files of dropped spaces."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

from hivemind_app.store.ann.config import AnnConfig
from hivemind_app.store.ann.files import SpaceFiles, index_dir, spaces_with_files
from hivemind_app.store.ann.index import AnnIndex
from hivemind_app.store.ann.status import AnnStatus, ProgressCallback
from hivemind_app.store.models import EmbeddingSpace

log = logging.getLogger(__name__)


def available() -> bool:
    """Whether the index library is installed (without it every search is exact)."""
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


class AnnManager:
    """The indexes of one store in this process, one per embedding space, created on first use."""

    def __init__(
        self,
        db_path: Path,
        config: AnnConfig,
        busy_timeout_ms: int = 10_000,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.db_path = db_path
        self.config = config
        self.busy_timeout_ms = busy_timeout_ms
        self.on_progress = on_progress
        self._indexes: dict[int, AnnIndex] = {}
        self._lock = threading.Lock()
        self._enabled = config.enabled and str(db_path) != ":memory:"
        self._checked = False

    @property
    def enabled(self) -> bool:
        """Turned on and the library installed (imported on first use, never on start-up)."""
        if self._enabled and not self._checked:
            self._checked = True
            if not available():
                log.warning("usearch is not installed: vector searches are exact (brute force)")
                self._enabled = False
        return self._enabled

    def index_for(self, space: EmbeddingSpace) -> AnnIndex | None:
        if not self.enabled:
            return None
        with self._lock:
            index = self._indexes.get(space.space_id)
            if index is None or index.space != space:
                index = AnnIndex(self.db_path, space, self.config, self.busy_timeout_ms, self.on_progress)
                self._indexes[space.space_id] = index
            return index

    def remove_unknown_spaces(self, known: set[int]) -> None:
        """Delete index files of spaces the store no longer has: left by a process that dropped a space
        and stopped before deleting them, or one that ran with the index turned off."""
        leftover = spaces_with_files(index_dir(self.db_path)) - known
        if leftover:
            log.info("deleting the vector index files of dropped embedding spaces %s", sorted(leftover))
            self.remove_spaces(sorted(leftover))

    def remove_spaces(self, space_ids: list[int]) -> None:
        """Spaces dropped from the store (`reembed` finished): stop their indexes and delete their files,
        which at 1M vectors hold ~2.4 GB that nothing would read again."""
        with self._lock:
            indexes = [self._indexes.pop(space_id) for space_id in space_ids if space_id in self._indexes]
        for index in indexes:
            index.close(wait=True)
        directory = index_dir(self.db_path)
        for space_id in space_ids:
            for path in SpaceFiles(directory, space_id).every_file():
                with contextlib.suppress(OSError):
                    path.unlink()  # a process still mapping it keeps its pages until it lets go

    def statuses(self) -> list[AnnStatus]:
        with self._lock:
            return [index.status for index in self._indexes.values()]

    def close(self, wait: bool = False) -> None:
        with self._lock:
            indexes = list(self._indexes.values())
            self._indexes.clear()
        for index in indexes:
            index.close(wait=wait)
