"""Reading source files and cutting them into chunks: shared by `import` (importer.py) and watched folders
(services/watch.py), so both read, skip and chunk a file the same way and give its chunks the same ids.

Only regular files are read: a FIFO, a device or a socket (also behind a symlink: `notes.txt -> /dev/zero`)
is refused with the reason, never opened for a blocking read, and no file is read past the size limit.
A chunk knows the span of the file it came from (`Chunk.start`, `Chunk.end`: byte offsets, end exclusive),
from its first paragraph's first character to its last paragraph's last, so a memory can point at its file.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hivemind_app.errors import InvalidInputError

SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}
)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BOM_BYTES = b"\xef\xbb\xbf"


def skipped_dir(name: str) -> bool:
    """Hidden and tool directories (.git, node_modules, virtualenvs) are never walked into."""
    return name in SKIPPED_DIRS or name.startswith(".")


def followed_event(roots: Sequence[str], path: str) -> bool:
    """Whether a file watcher's event for `path` can matter (`walk`'s skip rules: nothing under a hidden or
    tool directory, no hidden file but `.gitignore`); the folder's `.gitignore` is applied later."""
    for root in roots:
        if path == root or path.startswith(root + os.sep):
            parts = path[len(root) :].strip(os.sep).split(os.sep)
            if any(skipped_dir(part) for part in parts[:-1]):
                return False
            return parts[-1] == ".gitignore" or not skipped_dir(parts[-1])
    return True


def printable_path(path: Path | str) -> str:
    """A path as one printable line: bytes that are not UTF-8 as `\\xNN`, control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def read_regular_file(path: Path, max_bytes: int, follow_symlinks: bool = True) -> bytes:
    """The file's bytes, if it is a regular file of at most `max_bytes` (InvalidInputError otherwise).

    O_NONBLOCK keeps a FIFO from blocking the open; fstat on the opened descriptor (not on the name)
    decides, so a symlink swapped between the check and the read cannot slip a device in. Without
    `follow_symlinks` (watched folders), O_NOFOLLOW refuses a link in the last component at the open itself.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_symlinks and exc.errno == errno.ELOOP:
            raise InvalidInputError("a symbolic link: links are not followed") from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise InvalidInputError(f"{kind}, not a regular file: only regular files are read")
        if info.st_size > max_bytes:
            raise InvalidInputError(too_big(info.st_size, max_bytes))
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


def too_big(size: int, max_bytes: int) -> str:
    return f"{size:,} bytes, over importer.max_file_bytes ({max_bytes:,})"


@dataclass(frozen=True)
class Chunk:
    """A chunk's text and the span of the text it came from (character offsets; `byte_spans` converts)."""

    text: str
    start: int
    end: int


def _pieces(text: str, chunk_chars: int) -> list[Chunk]:
    """Paragraphs (an overlong one cut at line ends, an overlong line cut hard), each with its span."""
    pieces: list[Chunk] = []
    pos = 0
    for match in itertools.chain(_PARAGRAPH_BREAK.finditer(text), [None]):
        end = match.start() if match else len(text)
        raw, base = text[pos:end], pos
        pos = match.end() if match else len(text)
        paragraph = raw.strip()
        if not paragraph:
            continue
        p_start = base + len(raw) - len(raw.lstrip())
        if len(paragraph) <= chunk_chars:
            pieces.append(Chunk(paragraph, p_start, p_start + len(paragraph)))
            continue
        buffer, buffer_start, offset = "", p_start, p_start
        for line in paragraph.split("\n"):
            line_start, offset = offset, offset + len(line) + 1
            while len(line) > chunk_chars:
                if buffer:
                    pieces.append(Chunk(buffer, buffer_start, buffer_start + len(buffer)))
                    buffer = ""
                pieces.append(Chunk(line[:chunk_chars], line_start, line_start + chunk_chars))
                line, line_start = line[chunk_chars:], line_start + chunk_chars
            if buffer and len(buffer) + 1 + len(line) > chunk_chars:
                pieces.append(Chunk(buffer, buffer_start, buffer_start + len(buffer)))
                buffer, buffer_start = line, line_start
            elif buffer:
                buffer = f"{buffer}\n{line}"
            else:
                buffer, buffer_start = line, line_start
        if buffer.strip():
            pieces.append(Chunk(buffer, buffer_start, buffer_start + len(buffer)))
    return pieces


def chunk_spans(text: str, chunk_chars: int) -> list[Chunk]:
    """Paragraphs packed into chunks of at most `chunk_chars`; each chunk spans its first to its last paragraph."""
    chunks: list[Chunk] = []
    current: Chunk | None = None
    for piece in _pieces(text, chunk_chars):
        if current is not None and len(current.text) + 2 + len(piece.text) > chunk_chars:
            chunks.append(current)
            current = piece
        elif current is not None:
            current = Chunk(f"{current.text}\n\n{piece.text}", current.start, piece.end)
        else:
            current = piece
    if current is not None and current.text.strip():
        chunks.append(current)
    return chunks


def chunk_text(text: str, chunk_chars: int) -> list[str]:
    """Paragraphs packed into chunks of at most `chunk_chars`; an overlong paragraph is cut at line ends."""
    return [chunk.text for chunk in chunk_spans(text, chunk_chars)]


def byte_spans(text: str, chunks: list[Chunk], data: bytes) -> list[tuple[int, int]]:
    """Each chunk's span as byte offsets in `data`, the UTF-8 file `text` was decoded from (a BOM skipped)."""
    offsets = sorted({o for c in chunks for o in (c.start, c.end)})
    to_byte: dict[int, int] = {}
    done_chars, done_bytes = 0, len(_BOM_BYTES) if data.startswith(_BOM_BYTES) else 0
    for offset in offsets:
        done_bytes += len(text[done_chars:offset].encode("utf-8", "surrogatepass"))
        done_chars = offset
        to_byte[offset] = done_bytes
    return [(to_byte[c.start], to_byte[c.end]) for c in chunks]
