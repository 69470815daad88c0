"""What this node knows of its watched folders (migration 0015): folders, each file's size, mtime and
content hash when last read, and which memory each of its chunks became (with its byte range).

Paths are keys as `sourcefiles.printable_path` writes them (absolute, one printable line), the same text as
the memories' source. Nothing here writes a memory: the watch service stores and deletes them through the
memory service, then records here what it did, so this state may lag a memory write (a crash in between)
but never leads it; the next reconcile reads such a file again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hivemind_app.records.watch import SourceSpan, WatchedFolder
from hivemind_app.store.database import Database
from hivemind_app.store.db import all_rows, maybe_one


@dataclass(frozen=True)
class FileState:
    path: str
    folder: str
    size: int
    mtime_ns: int
    hash: str
    error: str | None
    memory_ids: tuple[str, ...]


@dataclass(frozen=True)
class FolderRow:
    path: str
    tags: tuple[str, ...]
    missing: bool
    device: int | None = None
    suspect: bool = False


class WatchState:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- folders -------------------------------------------------------------------------------------

    def add_folder(self, path: str, tags: Sequence[str], device: int | None) -> None:
        """Follow the folder (again: new tags, its device now, and a suspect mark lifted)."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO watched_folders(path, tags, added_at, device) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET tags = excluded.tags, device = excluded.device, suspect = 0, "
                "error = CASE WHEN suspect THEN NULL ELSE error END",
                (path, json.dumps(sorted(set(tags))), time.time(), device),
            )

    def set_suspect(self, path: str, suspect: bool, error: str | None) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE watched_folders SET suspect = ?, error = ? WHERE path = ?", (int(suspect), error, path)
            )

    def count_files(self, folder: str) -> int:
        with self.db.read() as conn:
            row = maybe_one(conn, "SELECT count(*) FROM watched_files WHERE folder = ?", (folder,))
        return 0 if row is None else int(row[0])

    def remove_folder(self, path: str) -> list[str]:
        """Stop following the folder; returns the memory ids its files held (the caller may delete them)."""
        with self.db.write() as conn:
            ids = all_rows(
                conn,
                "SELECT DISTINCT c.memory_id FROM watched_chunks c JOIN watched_files f ON f.path = c.path "
                "WHERE f.folder = ?",
                (path,),
            )
            conn.execute("DELETE FROM watched_folders WHERE path = ?", (path,))
        return [str(r[0]) for r in ids]

    def folder_rows(self) -> list[FolderRow]:
        with self.db.read() as conn:
            rows = all_rows(conn, "SELECT path, tags, missing, device, suspect FROM watched_folders ORDER BY path")
        return [
            FolderRow(str(r[0]), tuple(json.loads(r[1])), bool(r[2]), None if r[3] is None else int(r[3]), bool(r[4]))
            for r in rows
        ]

    def set_folder(self, path: str, *, missing: bool, error: str | None, changed: bool) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE watched_folders SET missing = ?, error = ?, "
                "last_change = CASE WHEN ? THEN ? ELSE last_change END WHERE path = ?",
                (int(missing), error, int(changed), time.time(), path),
            )

    def folders(self) -> list[WatchedFolder]:
        with self.db.read() as conn:
            rows = all_rows(
                conn,
                "SELECT w.path, w.tags, w.last_change, w.missing, w.error, w.suspect, "
                "(SELECT count(*) FROM watched_files f WHERE f.folder = w.path AND f.error IS NULL), "
                "(SELECT count(DISTINCT c.memory_id) FROM watched_chunks c JOIN watched_files f ON f.path = c.path "
                " WHERE f.folder = w.path) FROM watched_folders w ORDER BY w.path",
            )
            skipped = all_rows(
                conn, "SELECT folder, path, error FROM watched_files WHERE error IS NOT NULL ORDER BY path"
            )
        by_folder: dict[str, list[tuple[str, str]]] = {}
        for folder, path, error in skipped:
            by_folder.setdefault(str(folder), []).append((str(path), str(error)))
        return [
            WatchedFolder(
                path=str(r[0]),
                tags=tuple(json.loads(r[1])),
                files=int(r[6]),
                memories=int(r[7]),
                last_change=None if r[2] is None else float(r[2]),
                missing=bool(r[3]),
                suspect=bool(r[5]),
                error=None if r[4] is None else str(r[4]),
                skipped=tuple(by_folder.get(str(r[0]), ())),
            )
            for r in rows
        ]

    # -- files ---------------------------------------------------------------------------------------

    def files_of(self, folder: str) -> dict[str, FileState]:
        with self.db.read() as conn:
            rows = all_rows(
                conn, "SELECT path, folder, size, mtime_ns, hash, error FROM watched_files WHERE folder = ?", (folder,)
            )
            chunks = all_rows(
                conn,
                "SELECT c.path, c.memory_id FROM watched_chunks c JOIN watched_files f ON f.path = c.path "
                "WHERE f.folder = ? ORDER BY c.path, c.seq",
                (folder,),
            )
        ids: dict[str, list[str]] = {}
        for path, memory_id in chunks:
            ids.setdefault(str(path), []).append(str(memory_id))
        return {
            str(r[0]): FileState(
                str(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]), r[5], tuple(ids.get(str(r[0]), ()))
            )
            for r in rows
        }

    def files_by_path(self, paths: Sequence[str]) -> dict[str, FileState]:
        """What is stored for these files (those it knows)."""
        found: dict[str, FileState] = {}
        for path in paths:
            with self.db.read() as conn:
                row = maybe_one(
                    conn, "SELECT path, folder, size, mtime_ns, hash, error FROM watched_files WHERE path = ?", (path,)
                )
                if row is None:
                    continue
                ids = all_rows(conn, "SELECT memory_id FROM watched_chunks WHERE path = ? ORDER BY seq", (path,))
            found[path] = FileState(
                str(row[0]), str(row[1]), int(row[2]), int(row[3]), str(row[4]), row[5], tuple(str(r[0]) for r in ids)
            )
        return found

    def has_files_under(self, prefix: str) -> bool:
        """Whether any followed file's path starts with `prefix` (a directory's path and a separator)."""
        with self.db.read() as conn:
            row = maybe_one(
                conn,
                "SELECT 1 FROM watched_files WHERE path >= ? AND path < ? LIMIT 1",
                (prefix, prefix + "\U0010ffff"),  # the largest code point: every path that starts with prefix
            )
        return row is not None

    def record_file(
        self,
        path: str,
        folder: str,
        size: int,
        mtime_ns: int,
        content_hash: str,
        chunks: Sequence[tuple[str, int, int]] = (),
        error: str | None = None,
    ) -> bool:
        """The file as last read: its stat, hash and chunks (memory id, start byte, end byte), or why it was not.
        False (nothing written) when its folder is no longer watched (`watch remove` while it was read)."""
        with self.db.write() as conn:
            if maybe_one(conn, "SELECT 1 FROM watched_folders WHERE path = ?", (folder,)) is None:
                return False
            conn.execute(
                "INSERT INTO watched_files(path, folder, size, mtime_ns, hash, error) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET folder = excluded.folder, size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, hash = excluded.hash, error = excluded.error",
                (path, folder, size, mtime_ns, content_hash, error),
            )
            conn.execute("DELETE FROM watched_chunks WHERE path = ?", (path,))
            conn.executemany(
                "INSERT INTO watched_chunks(path, seq, memory_id, start_byte, end_byte) VALUES (?, ?, ?, ?, ?)",
                [(path, seq, memory_id, start, end) for seq, (memory_id, start, end) in enumerate(chunks)],
            )
        return True

    def mark_error(self, path: str, error: str) -> None:
        """Why the file could not be read now; its memories and stored stat stay (it is looked at again)."""
        with self.db.write() as conn:
            conn.execute("UPDATE watched_files SET error = ? WHERE path = ?", (error, path))

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        """Same content, new stat (a `touch`, or a save that wrote the same bytes)."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE watched_files SET size = ?, mtime_ns = ?, error = NULL WHERE path = ?", (size, mtime_ns, path)
            )

    def move_file(self, old: str, new: str, folder: str, size: int, mtime_ns: int) -> None:
        """A renamed or moved file: its row and chunks go to the new path (chunks follow by ON UPDATE CASCADE)."""
        with self.db.write() as conn:
            if maybe_one(conn, "SELECT 1 FROM watched_folders WHERE path = ?", (folder,)) is None:
                return  # its folder was removed meanwhile: nothing to move it into
            conn.execute("DELETE FROM watched_files WHERE path = ?", (new,))
            conn.execute(
                "UPDATE watched_files SET path = ?, folder = ?, size = ?, mtime_ns = ? WHERE path = ?",
                (new, folder, size, mtime_ns, old),
            )

    def drop_file(self, path: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM watched_files WHERE path = ?", (path,))

    def stored_versions(self, memory_ids: Sequence[str]) -> dict[str, int | None]:
        """The version the watch left each of these memories at (None: not the watch's alone); absent: unknown."""
        with self.db.read() as conn:
            rows = [
                row
                for memory_id in set(memory_ids)
                if (
                    row := maybe_one(
                        conn, "SELECT memory_id, version FROM watched_memories WHERE memory_id = ?", (memory_id,)
                    )
                )
                is not None
            ]
        return {str(r[0]): None if r[1] is None else int(r[1]) for r in rows}

    def record_versions(self, versions: dict[str, int | None]) -> None:
        with self.db.write() as conn:
            for memory_id, version in versions.items():
                conn.execute(
                    "INSERT INTO watched_memories(memory_id, version) VALUES (?, ?) "
                    "ON CONFLICT(memory_id) DO UPDATE SET version = excluded.version",
                    (memory_id, version),
                )

    def forget_version(self, memory_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM watched_memories WHERE memory_id = ?", (memory_id,))

    def memory_in_use(self, memory_id: str) -> bool:
        """Whether a file still being followed holds this memory as one of its chunks."""
        with self.db.read() as conn:
            return maybe_one(conn, "SELECT 1 FROM watched_chunks WHERE memory_id = ?", (memory_id,)) is not None

    def spans(self, memory_id: str) -> list[SourceSpan]:
        with self.db.read() as conn:
            rows = all_rows(
                conn,
                "SELECT path, start_byte, end_byte FROM watched_chunks WHERE memory_id = ? ORDER BY path, seq",
                (memory_id,),
            )
        return [SourceSpan(str(r[0]), int(r[1]), int(r[2])) for r in rows]
