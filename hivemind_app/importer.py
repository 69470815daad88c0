"""`hivemind-app import`: read text files, cut them into paragraph-sized chunks, store each as a memory.

A bad file (unreadable, binary, not UTF-8) is skipped and reported; it never stops the files around it.
Only regular files are read: a FIFO, a device or a socket (also behind a symlink: `notes.txt -> /dev/zero`)
is skipped with the reason, never opened for a blocking read, and no file is read past the size limit. Any
file name works: a name that is not UTF-8 or holds control characters is stored as its source with those
bytes escaped (`\\xff`, `\\n`), so the memory is kept and the name prints as one line.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hivemind_app.content import check_text, decode_bytes
from hivemind_app.errors import HivemindError, InvalidInputError
from hivemind_app.hive import Hive, MemoryDraft

_SKIPPED_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
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
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS and not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith(".") and Path(name).suffix.lower() in wanted:
                        files.append(Path(dirpath) / name)
        elif os.path.lexists(root):
            files.append(root)  # named directly: read_chunks says why, if it is not a regular file
        else:
            problems.append((printable_path(root), "no such file or directory"))
    return files, problems


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable_path(path: Path | str) -> str:
    """A path as one printable line: bytes that are not UTF-8 as `\\xNN`, control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, if it is a regular file of at most `max_bytes` (InvalidInputError otherwise).

    O_NONBLOCK keeps a FIFO from blocking the open; fstat on the opened descriptor (not on the name)
    decides, so a symlink swapped between the check and the read cannot slip a device in.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise InvalidInputError(f"{kind}, not a regular file: only regular files are read")
        if info.st_size > max_bytes:
            raise InvalidInputError(f"{info.st_size:,} bytes, over importer.max_file_bytes ({max_bytes:,})")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        remaining = max_bytes + 1  # a file that grew since fstat is still caught
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise InvalidInputError(f"it grew past importer.max_file_bytes ({max_bytes:,}) while being read")
        return data
    finally:
        os.close(fd)


def chunk_text(text: str, chunk_chars: int) -> list[str]:
    """Paragraphs packed into chunks of at most `chunk_chars`; an overlong paragraph is cut at line ends."""
    pieces: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= chunk_chars:
            pieces.append(paragraph)
            continue
        line_buffer = ""
        for line in paragraph.split("\n"):
            while len(line) > chunk_chars:
                if line_buffer:
                    pieces.append(line_buffer)
                    line_buffer = ""
                pieces.append(line[:chunk_chars])
                line = line[chunk_chars:]
            if line_buffer and len(line_buffer) + 1 + len(line) > chunk_chars:
                pieces.append(line_buffer)
                line_buffer = line
            else:
                line_buffer = f"{line_buffer}\n{line}" if line_buffer else line
        if line_buffer.strip():
            pieces.append(line_buffer)

    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 2 + len(piece) > chunk_chars:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current.strip():
        chunks.append(current)
    return chunks


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
) -> ImportReport:
    """Import every usable file under `paths`; `on_file` is called after each file is handled."""
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
        batch.extend(MemoryDraft(text=chunk, tags=tags, source=source) for chunk in chunks)
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
