"""Watched folders: import a folder, then keep its memories in step with its files (`reconcile`).

Invariants:
- a memory's id is the sha256 of its text, so an unchanged chunk is the same memory: a changed file stores
  only the chunks it did not hold before, and the chunks it kept are not written at all (their ids, tags,
  session and vectors stay as they are);
- a chunk that left its file, and every chunk of a deleted file, is deleted through the memory service's
  normal delete (a tombstone that syncs), unless another followed file still holds it, the memory has a
  source outside the watched folders, or it is not at the version the watch left it at (it was there
  before the watch stored it, or was stored by hand, tagged or synced since: when in doubt, kept);
- a file that disappeared while a file with its content hash appeared is a rename or a move: its memories
  stay and gain the new path as a source; across folders too when both are reconciled together;
- a directory that cannot be listed or a file that cannot be stat'ed (EACCES, EIO, a stale mount) is
  reported and its stored files are kept, never counted as deleted;
- a reconcile that finds more than half the files of a folder (of more than SUSPECT_FILES) gone deletes
  nothing: the folder is marked suspect (`watch list` says what to do) until the files are back or
  `watch add DIR` is run again, which accepts the loss;
- a folder that is not there (an unmounted disk, a directory renamed away), or is on another device than
  when it was added (an empty mount point), is marked missing and
  reported once; none of its files count as deleted, and it is reconciled as usual when it is back;
- unchanged files are known by size and mtime alone (one `stat` each, no read), so a start over a large
  tree that did not change costs a walk; content is hashed only for files whose stat changed;
- symbolic links are never followed (files or directories; O_NOFOLLOW at the open, and a reported path
  whose real path leaves the folder is ignored): a link in a cloned repository to ~/.ssh/id_rsa is not read;
  a followed file replaced by a link counts as deleted;
- ignore rules are the importer's (hidden and tool directories, hidden files, `importer.extensions`) plus
  the folder's top-level `.gitignore`; a file over `importer.max_file_bytes` is listed, never read;
- a folder removed (`watch remove`, another process) while it is reconciled: its files read meanwhile are
  listed (REMOVED_MEANWHILE) and not recorded (checked in the recording transaction); their memories stay;
- a file whose size or mtime changed while it was read is read again (three tries); a file that cannot be
  read is listed with the reason and keeps the memories it had until it is readable or gone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from hivemind_app.config import Settings
from hivemind_app.content import decode_bytes
from hivemind_app.errors import HivemindError, InvalidInputError, NotFoundError
from hivemind_app.records.memories import MemoryDraft
from hivemind_app.records.watch import SourceSpan, WatchedFolder, WatchReport
from hivemind_app.services.memories import MemoryService, clean_tags
from hivemind_app.sourcefiles import byte_spans, chunk_spans, printable_path, read_regular_file, skipped_dir, too_big
from hivemind_app.store.watch_state import FileState, FolderRow, WatchState

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
READ_TRIES = 3
# Chunks of many files are stored in one call (one transaction, one embedding batch), as `import` does.
BATCH_CHUNKS = 256
# A reconcile that finds more than half the files of a folder of more than SUSPECT_FILES gone deletes nothing
# (an emptied mount point, a half-finished checkout): the folder is marked suspect until `watch add` again.
SUSPECT_FILES = 4
_RETRY_MTIME = -1  # a stored mtime no file has: the file is read again at the next reconcile
REMOVED_MEANWHILE = "its folder stopped being watched while it was read (watch remove); its memories stay"


@dataclass(frozen=True)
class _Seen:
    """A file found by the walk: its path and stat."""

    key: str
    path: Path
    folder: FolderRow
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class _Read:
    """A file read and chunked, waiting for its batch to be stored before its state is recorded."""

    seen: _Seen
    size: int
    mtime_ns: int
    digest: str
    chunks: list[tuple[str, int, int]]  # (memory id, start byte, end byte)
    previous: frozenset[str]
    fresh: list[MemoryDraft]


class _Unstable(InvalidInputError):
    pass


def folder_key(path: Path) -> str:
    return printable_path(path.expanduser().absolute().resolve())


@dataclass
class Walked:
    """What a walk found: the files to follow with their (path, size, mtime_ns), the paths that could not be
    used with the reason, and the directories and files among those whose state is unknown (a listing or a
    stat that failed): stored files under them are not gone, only unseen."""

    files: dict[str, tuple[Path, int, int]]
    problems: list[tuple[str, str]]
    unknown: list[str]

    def hides(self, key: str) -> bool:
        return any(_under(key, path) for path in self.unknown)


def walk(root: Path, extensions: Sequence[str]) -> Walked:
    """The files to follow under `root` (see `Walked`)."""
    wanted = {e.lower() for e in extensions}
    spec = _gitignore(root)
    files: dict[str, tuple[Path, int, int]] = {}
    problems: list[tuple[str, str]] = []
    unknown: list[str] = []
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        directory, rel = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError as exc:  # EACCES, EIO, a stale mount: nothing under it is known, nothing is gone
            problems.append((printable_path(directory), exc.strerror or str(exc)))
            unknown.append(printable_path(directory))
            continue
        with entries:
            for entry in entries:
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not skipped_dir(name) and not (spec and spec.match_file(f"{rel}{name}/")):
                            stack.append((entry.path, f"{rel}{name}/"))
                        continue
                    if entry.is_symlink():  # never followed: a link may lead out of the folder (~/.ssh/id_rsa)
                        continue
                    if name.startswith(".") or os.path.splitext(name)[1].lower() not in wanted:
                        continue
                    if spec and spec.match_file(f"{rel}{name}"):
                        continue
                    info = entry.stat(follow_symlinks=False)
                except OSError as exc:  # a file that cannot be stat'ed (gone since the listing, or unreadable)
                    problems.append((printable_path(entry.path), exc.strerror or str(exc)))
                    unknown.append(printable_path(entry.path))
                    continue
                files[printable_path(entry.path)] = (Path(entry.path), info.st_size, info.st_mtime_ns)
    return Walked(files, problems, unknown)


def _device(root: Path) -> int | None:
    """The folder's st_dev; None when it is not there (or not a directory)."""
    try:
        info = os.stat(root)
    except OSError:
        return None
    return info.st_dev if stat.S_ISDIR(info.st_mode) else None


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


def _gitignore(root: Path) -> GitIgnoreSpec | None:
    try:
        lines = (root / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return GitIgnoreSpec.from_lines(lines) if lines else None


def read_stable(path: Path, max_bytes: int) -> tuple[bytes, int, int]:
    """The file's bytes with the size and mtime they belong to; read again if it changed while being read."""
    for attempt in range(READ_TRIES):
        before = os.stat(path, follow_symlinks=False)
        data = read_regular_file(path, max_bytes, follow_symlinks=False)
        after = os.stat(path, follow_symlinks=False)
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns) and len(data) == after.st_size:
            return data, after.st_size, after.st_mtime_ns
        time.sleep(0.05 * (attempt + 1))
    raise _Unstable(f"it kept changing while being read ({READ_TRIES} tries); it is read again at its next change")


class WatchService:
    def __init__(self, settings: Settings, state: WatchState, memories: MemoryService) -> None:
        self.settings = settings
        self.state = state
        self.memories = memories

    # -- the folders ---------------------------------------------------------------------------------

    def add(self, paths: Sequence[Path], tags: Sequence[str] = (), progress: Progress | None = None) -> WatchReport:
        """Follow these folders from now on; imports what they hold now (a reconcile of just them)."""
        keys: list[str] = []
        followed = [row.path for row in self.state.folder_rows()]
        for path in paths:
            if not path.is_dir():
                raise InvalidInputError(
                    f"{printable_path(path)} is not a directory: watch follows folders "
                    "(import a single file with `hivemind-app import`)."
                )
            key = folder_key(path)
            for other in [*followed, *keys]:
                if other != key and (key.startswith(other + os.sep) or other.startswith(key + os.sep)):
                    raise InvalidInputError(
                        f"{key} overlaps the watched folder {other}: a file is followed by one folder; "
                        f"remove {other} first, or watch folders that do not contain each other."
                    )
            keys.append(key)
        clean = list(clean_tags(tags))
        for key in keys:
            self.state.add_folder(key, clean, os.stat(key).st_dev)
        return self.reconcile(keys, progress, accept_loss=True)

    def remove(self, path: Path, forget: bool = False) -> tuple[str, int]:
        """Stop following a folder; with `forget`, delete the memories its files held. Returns (folder, deleted)."""
        key = folder_key(path)
        if key not in {row.path for row in self.state.folder_rows()}:
            raise NotFoundError(f"{key} is not a watched folder; `hivemind-app watch list` shows them.")
        ids = self.state.remove_folder(key)
        return key, self._release(ids, also_under=key) if forget else 0

    def folders(self) -> list[WatchedFolder]:
        return self.state.folders()

    def roots(self) -> list[str]:
        """The watched folders' paths alone (no counts: cheap enough for a watcher to ask after every change)."""
        return [row.path for row in self.state.folder_rows()]

    def spans(self, memory_id: str) -> list[SourceSpan]:
        return self.state.spans(memory_id)

    # -- reconcile -----------------------------------------------------------------------------------

    def reconcile(
        self,
        folders: Sequence[str] | None = None,
        progress: Progress | None = None,
        paths: Collection[str] | None = None,
        accept_loss: bool = False,
    ) -> WatchReport:
        """Bring the memories of these watched folders (default: all) in step with their files now.

        `accept_loss`: the user (`watch add`) says the folder is as it should be: however many files are gone,
        they are deleted (else more than half gone marks the folder suspect and deletes nothing).

        `paths`: the paths a file watcher reported changed; only those are looked at, unless one of them is a
        directory, a directory that held followed files, or a `.gitignore` (then the folder is walked whole).
        """
        report = WatchReport()
        rows = [row for row in self.state.folder_rows() if folders is None or row.path in folders]
        gone: dict[str, FileState] = {}
        todo: list[tuple[_Seen, FileState | None]] = []
        changed_folders: set[str] = set()
        for row in rows:
            root = Path(row.path)
            device = _device(root)
            if device is None or (row.device is not None and device != row.device):
                if not row.missing:
                    error = f"{row.path} is not there (unmounted, or moved?): its memories are kept until it is back"
                    if device is not None:
                        error = (
                            f"{row.path} is on another device than when it was added (an unmounted mount point?): "
                            "its memories are kept until it is back; `hivemind-app watch add DIR` again to follow "
                            "what is there now"
                        )
                    log.warning("watched folder %s", error)
                    self.state.set_folder(row.path, missing=True, error=error, changed=False)
                report.missing_folders.append(row.path)
                continue
            if row.missing:
                log.info("watched folder %s is back", row.path)
                self.state.set_folder(row.path, missing=False, error=None, changed=False)
            looked = None if paths is None else self._look_at(root, [p for p in paths if _under(p, row.path)])
            if looked is None:
                walked = walk(root, self.settings.importer.extensions)
                found, stored = walked.files, self.state.files_of(row.path)
            else:
                found, stored = looked
                walked = Walked(found, [], [])
            report.skipped.extend(walked.problems)
            report.files_seen += len(found)
            lost = {key: state for key, state in stored.items() if key not in found and not walked.hides(key)}
            total = len(stored) if looked is None else self.state.count_files(row.path)
            if not accept_loss and total > SUSPECT_FILES and 2 * len(lost) > total:
                error = (
                    f"{len(lost)} of its {total} files are gone at once (an unmounted disk, a half-done checkout?): "
                    "nothing is deleted; when that is right, run `hivemind-app watch add DIR` again to confirm"
                )
                if not row.suspect:
                    log.warning("watched folder %s: %s", row.path, error)
                    self.state.set_suspect(row.path, True, error)
                report.suspect_folders.append(row.path)
                lost = {}
            elif row.suspect:
                log.info("watched folder %s is no longer suspect", row.path)
                self.state.set_suspect(row.path, False, None)
            gone.update(lost)
            for key, (path, size, mtime_ns) in found.items():
                old = stored.get(key)
                if old is not None and old.size == size and old.mtime_ns == mtime_ns:
                    report.unchanged += 1
                    if old.error:
                        report.skipped.append((key, old.error))
                    continue
                todo.append((_Seen(key, path, row, size, mtime_ns), old))
        moved_from = {state.hash: key for key, state in gone.items() if state.hash}
        batch: list[_Read] = []
        for done, (seen, old) in enumerate(todo, 1):
            read = self._update(seen, old, gone, moved_from, report)
            if read is not None:
                changed_folders.add(seen.folder.path)
                batch.append(read)
                if sum(len(r.fresh) for r in batch) >= BATCH_CHUNKS:
                    self._commit(batch, report)
            if progress:
                progress(done, len(todo))
        self._commit(batch, report)
        for key, state in gone.items():
            self.state.drop_file(key)
            report.removed += 1
            report.memories_deleted += self._release(state.memory_ids)
            changed_folders.add(state.folder)
        for folder in changed_folders - set(report.suspect_folders):
            self.state.set_folder(folder, missing=False, error=None, changed=True)
        return report

    def _look_at(
        self, root: Path, paths: Sequence[str]
    ) -> tuple[dict[str, tuple[Path, int, int]], dict[str, FileState]] | None:
        """The followed files among `paths` (found) and what is stored for them; None when only a walk of the
        whole folder can tell what changed."""
        wanted = {e.lower() for e in self.settings.importer.extensions}
        spec = _gitignore(root)
        found: dict[str, tuple[Path, int, int]] = {}
        keys: list[str] = []
        for raw in paths:
            path = Path(raw)
            key = printable_path(path)
            if path.name == ".gitignore":
                return None
            rel = path.relative_to(root).as_posix() if path != root else ""
            parts = rel.split("/")
            # the skip rules first: a directory event under node_modules, .git or a gitignored directory is
            # not worth a walk of the whole folder
            if any(skipped_dir(part) for part in parts) or (
                spec is not None and rel and (spec.match_file(rel) or spec.match_file(rel + "/"))
            ):
                continue
            if path.is_dir():
                return None
            if not rel or path.suffix.lower() not in wanted:
                if not path.exists() and self.state.has_files_under(key + os.sep):
                    return None  # a directory that held followed files went away (or was renamed)
                continue
            try:
                info = os.stat(path, follow_symlinks=False)
            except OSError as exc:
                if self.state.has_files_under(key + os.sep):
                    return None
                if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                    keys.append(key)  # gone; any other failure (EACCES, EIO) says nothing: the file is kept
                continue
            if not _under(printable_path(os.path.realpath(path.parent)), printable_path(root)):
                continue  # reached through a directory link that leads out of the folder: never followed
            keys.append(key)
            if stat.S_ISREG(info.st_mode):
                found[key] = (path, info.st_size, info.st_mtime_ns)
        return found, self.state.files_by_path(keys)

    def _update(
        self,
        seen: _Seen,
        old: FileState | None,
        gone: dict[str, FileState],
        moved_from: dict[str, str],
        report: WatchReport,
    ) -> _Read | None:
        """Read one new or changed file: what must be stored for it (None when nothing changed or it was not
        read)."""
        max_bytes = self.settings.importer.max_file_bytes
        folder = seen.folder.path
        if seen.size > max_bytes:
            self._refuse(seen, old, too_big(seen.size, max_bytes), report)
            return None
        try:
            data, size, mtime_ns = read_stable(seen.path, max_bytes)
            digest = hashlib.sha256(data).hexdigest()
            report.hashed += 1
            if old is not None and old.hash == digest and not old.error:
                self.state.touch_file(seen.key, size, mtime_ns)
                report.unchanged += 1
                return None
            previous = old.memory_ids if old is not None else ()
            source = moved_from.pop(digest, None) if old is None else None
            if source is not None and source not in gone:
                source = None
            if source is not None:
                previous = gone.pop(source).memory_ids
                self.state.move_file(source, seen.key, folder, size, mtime_ns)
                report.moved += 1
            elif old is None:
                report.added += 1
            else:
                report.changed += 1
            return self._chunk(seen, data, size, mtime_ns, digest, previous, moved=source is not None)
        except _Unstable as exc:
            self._refuse(seen, old, str(exc), report, mtime_ns=_RETRY_MTIME)
            return None
        except (OSError, HivemindError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._refuse(seen, old, reason.rstrip("."), report)
            return None

    def _chunk(
        self, seen: _Seen, data: bytes, size: int, mtime_ns: int, digest: str, previous: Sequence[str], moved: bool
    ) -> _Read:
        """The file's chunks with their ids (every chunk validated before anything is written), and the drafts
        of those the file did not hold before (all of them for a moved file: they gain the new path)."""
        text = decode_bytes(data, "the file")
        chunks = chunk_spans(text, self.settings.importer.chunk_chars)
        drafts = [MemoryDraft(chunk.text, seen.folder.tags, seen.key) for chunk in chunks]
        ids = [self.memories.prepare(draft).id for draft in drafts]
        before = frozenset(previous)
        fresh = [draft for draft, memory_id in zip(drafts, ids, strict=True) if moved or memory_id not in before]
        spans = byte_spans(text, chunks, data)
        located = [(memory_id, start, end) for memory_id, (start, end) in zip(ids, spans, strict=True)]
        return _Read(seen, size, mtime_ns, digest, located, before, fresh)

    def _commit(self, batch: list[_Read], report: WatchReport) -> None:
        """Store the batch's new chunks in one call, then record each file and let go of what it dropped."""
        drafts = [draft for read in batch for draft in read.fresh]
        if drafts:
            self._store(drafts)
        for read in batch:
            report.chunks_stored += len(read.fresh)
            report.chunks_kept += len(read.chunks) - len(read.fresh)
            if not self.state.record_file(
                read.seen.key, read.seen.folder.path, read.size, read.mtime_ns, read.digest, read.chunks
            ):
                report.skipped.append((read.seen.key, REMOVED_MEANWHILE))
        # after every file of the batch is recorded: a chunk one file dropped may be one another file took
        for read in batch:
            report.memories_deleted += self._release(read.previous - {c[0] for c in read.chunks})
        batch.clear()

    def _store(self, drafts: list[MemoryDraft]) -> None:
        """Store the drafts and record the version each memory is at now, when the watch alone wrote it (one
        that was there before, or was written by anyone else since the watch last stored it, is recorded as
        not the watch's alone: it is never deleted by the watch)."""
        recorded = self.state.stored_versions([self.memories.prepare(d).id for d in drafts])
        untouched: set[str] = set()
        for memory_id, version in recorded.items():
            if version is not None:
                try:
                    if self.memories.get(memory_id).version == version:
                        untouched.add(memory_id)
                except NotFoundError:
                    continue
        versions: dict[str, int | None] = {}
        for result in self.memories.store_many(drafts):
            memory = result.memory
            ours = result.created or memory.id in untouched or versions.get(memory.id) is not None
            versions[memory.id] = memory.version if ours else None
        self.state.record_versions(versions)

    def _refuse(
        self, seen: _Seen, old: FileState | None, reason: str, report: WatchReport, mtime_ns: int | None = None
    ) -> None:
        """List a file that is not read (too big, binary, unreadable, changing); a file that had memories keeps
        them (its stored stat stays, so it is looked at again)."""
        report.skipped.append((seen.key, reason))
        if old is not None and old.memory_ids:
            self.state.mark_error(seen.key, reason)
        else:
            self.state.record_file(
                seen.key, seen.folder.path, seen.size, seen.mtime_ns if mtime_ns is None else mtime_ns, "", error=reason
            )

    def _release(self, memory_ids: Iterable[str], also_under: str | None = None) -> int:
        """Delete the memories no followed file holds any more (and that were not stored from elsewhere too;
        `also_under`: a folder just removed, whose files count as followed)."""
        roots = [row.path + os.sep for row in self.state.folder_rows()]
        if also_under is not None:
            roots.append(also_under + os.sep)
        deleted = 0
        wanted = sorted(set(memory_ids))
        versions = self.state.stored_versions(wanted)
        for memory_id in wanted:
            if self.state.memory_in_use(memory_id):
                continue
            try:
                memory = self.memories.get(memory_id)
                if memory.deleted or any(not s.startswith(tuple(roots)) for s in memory.sources):
                    continue
                if versions.get(memory_id) != memory.version:
                    continue  # there before the watch, or stored by hand, tagged or synced since: kept
                self.memories.delete(memory_id)
                self.state.forget_version(memory_id)
                deleted += 1
            except NotFoundError:
                continue
        return deleted
