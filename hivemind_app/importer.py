"""`hivemind-app import`: read text files, cut them into paragraph-sized chunks, store each as a memory.

A bad file (unreadable, binary, not UTF-8) is skipped and reported; it never stops the files around it.
Only regular files are read: a FIFO, a device or a socket (also behind a symlink: `notes.txt -> /dev/zero`)
is skipped with the reason, never opened for a blocking read, and no file is read past the size limit. Any
file name works: a name that is not UTF-8 or holds control characters is stored as its source with those
bytes escaped (`\\xff`, `\\n`), so the memory is kept and the name prints as one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hivemind_app.content import check_text, decode_bytes
from hivemind_app.errors import HivemindError
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.sourcefiles import chunk_text, printable_path, read_regular_file, skipped_dir

__all__ = ["ImportReport", "chunk_text", "find_files", "import_paths", "printable_path", "read_chunks"]

# Chunks are stored in batches so one transaction and one embedding call cover many of them.
_BATCH_CHUNKS = 256


@dataclass
class ImportReport:
    files_seen: int = 0
    files_imported: int = 0
    chunks: int = 0
    new_memories: int = 0
    merged_memories: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "files_seen": self.files_seen,
            "files_imported": self.files_imported,
            "chunks": self.chunks,
            "new_memories": self.new_memories,
            "merged_memories": self.merged_memories,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


def find_files(paths: Sequence[Path], extensions: Sequence[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to import under `paths`, and the paths that could not be used at all.

    A file named directly is taken whatever its extension; inside a directory only the configured
    extensions are, and hidden or tool directories (.git, node_modules, virtualenvs) are left out.
    """
    wanted = {e.lower() for e in extensions}
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for root in paths:
        if root.is_dir():

            def unreadable(error: OSError) -> None:
                problems.append((printable_path(error.filename), error.strerror or str(error)))

            for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
                dirnames[:] = sorted(d for d in dirnames if not skipped_dir(d))
                for name in sorted(filenames):
                    if not name.startswith(".") and Path(name).suffix.lower() in wanted:
                        files.append(Path(dirpath) / name)
        elif os.path.lexists(root):
            files.append(root)  # named directly: read_chunks says why, if it is not a regular file
        else:
            problems.append((printable_path(root), "no such file or directory"))
    return files, problems


def read_chunks(path: Path, hive: Hive) -> list[str]:
    """The file's chunks, validated; raises InvalidInputError or OSError for a file that cannot be used."""
    cfg = hive.settings.importer
    text = decode_bytes(read_regular_file(path, cfg.max_file_bytes), "the file")
    chunks = chunk_text(text, cfg.chunk_chars)
    limit = hive.settings.store.max_text_bytes
    return [check_text(chunk, limit, "a chunk") for chunk in chunks if chunk.strip()]


def import_paths(
    hive: Hive,
    paths: Sequence[Path],
    tags: Sequence[str] = (),
    on_file: Callable[[Path], None] | None = None,
    files: Sequence[Path] | None = None,
    occurred_at: float | str | None = None,
) -> ImportReport:
    """Import every usable file under `paths`; `on_file` is called after each file is handled; `occurred_at`:
    the time the files describe, when the caller knows it (each memory carries it)."""
    report = ImportReport()
    if files is None:
        files, problems = find_files(paths, hive.settings.importer.extensions)
        report.skipped.extend(problems)
    report.files_seen = len(files)
    batch: list[MemoryDraft] = []

    def flush() -> None:
        if not batch:
            return
        for stored in hive.store_memories(batch):
            if stored.created:
                report.new_memories += 1
            else:
                report.merged_memories += 1
        batch.clear()

    for path in _iter_with_callback(files, on_file):
        try:
            chunks = read_chunks(path, hive)
        except (OSError, HivemindError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            report.skipped.append((printable_path(path), reason.rstrip(".")))
            continue
        source = printable_path(path.resolve())
        batch.extend(MemoryDraft(text=chunk, tags=tags, source=source, occurred_at=occurred_at) for chunk in chunks)
        report.files_imported += 1
        report.chunks += len(chunks)
        if len(batch) >= _BATCH_CHUNKS:
            flush()
    flush()
    return report


def _iter_with_callback(files: Sequence[Path], on_file: Callable[[Path], None] | None) -> Iterator[Path]:
    for path in files:
        yield path
        if on_file:
            on_file(path)
