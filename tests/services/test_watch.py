"""Watched folders reconciled against their files: edits replace only changed chunks, deletes tombstone,
renames and moves keep memories, missing folders are not deletions, ignore rules and size limits hold."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from hivemind_app.errors import InvalidInputError, NotFoundError
from hivemind_app.hive import Hive
from hivemind_app.services import watch
from hivemind_app.sourcefiles import followed_event, read_regular_file

PARA_A = "Staging Postgres listens on port 5433."
PARA_B = "Use ProxyJump bastion.lab to reach the GPU box."
PARA_C = "Redis AOF rewrite stalls writes for 200 ms on the NAS."


def write(path: Path, *paragraphs: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(paragraphs) + "\n")
    return path


def bump(path: Path) -> None:
    """Move the mtime on, as a save a moment later would (some filesystems have coarse mtimes)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def live_texts(hive: Hive) -> dict[str, str]:
    return {m.id: m.text for m in hive.recent_memories(limit=100)}


def ids_by_text(hive: Hive) -> dict[str, str]:
    return {m.text: m.id for m in hive.recent_memories(limit=100)}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    write(root / "db.md", PARA_A, PARA_B)
    return root


def test_adding_a_folder_imports_its_files_and_lists_them(hive: Hive, folder: Path) -> None:
    report = hive.watch_folders([folder], tags=["Notes"])
    assert (report.added, report.chunks_stored) == (1, 1)
    [listed] = hive.watched_folders()
    assert (listed.path, listed.files, listed.memories, listed.tags) == (str(folder), 1, 1, ("notes",))
    [memory] = hive.recent_memories()
    assert memory.sources == (str(folder / "db.md"),) and memory.tags == ("notes",)


def test_an_edit_stores_only_the_changed_chunk_and_keeps_the_unchanged_one_as_it_was(
    hive: Hive, folder: Path
) -> None:
    hive.settings.importer.chunk_chars = 200  # one paragraph a chunk
    write(folder / "db.md", PARA_A, "x" * 170, PARA_B)
    hive.watch_folders([folder])
    before = ids_by_text(hive)
    kept = hive.get_memory(before[PARA_A])
    write(folder / "db.md", PARA_A, "x" * 170, PARA_C)
    bump(folder / "db.md")
    report = hive.reconcile_watched()
    assert (report.changed, report.chunks_stored, report.chunks_kept, report.memories_deleted) == (1, 1, 2, 1)
    after = ids_by_text(hive)
    assert set(after) == {PARA_A, "x" * 170, PARA_C}
    same = hive.get_memory(after[PARA_A])
    assert same.id == kept.id and same.updated_at == kept.updated_at  # not written at all
    assert hive.get_memory(before[PARA_B]).deleted


def test_show_knows_the_byte_range_each_chunk_came_from(hive: Hive, folder: Path) -> None:
    hive.settings.importer.chunk_chars = 200
    path = write(folder / "db.md", "# Ünïcode title", PARA_B)
    hive.watch_folders([folder])
    data = path.read_bytes()
    for text, memory_id in ids_by_text(hive).items():
        [span] = hive.source_spans(memory_id)
        assert span.path == str(path) and data[span.start : span.end].decode() == text


def test_a_deleted_file_leaves_tombstones_and_an_untouched_start_reads_nothing(hive: Hive, folder: Path) -> None:
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    quiet = hive.reconcile_watched()
    assert (quiet.unchanged, quiet.hashed, quiet.changes) == (1, 0, 0)
    (folder / "db.md").unlink()
    report = hive.reconcile_watched()
    assert (report.removed, report.memories_deleted) == (1, 1)
    assert hive.get_memory(memory_id).deleted and hive.watched_folders()[0].files == 0


def test_a_renamed_file_keeps_its_memories_under_the_new_path(hive: Hive, folder: Path) -> None:
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    (folder / "sub").mkdir()
    (folder / "db.md").rename(folder / "sub" / "database.md")
    report = hive.reconcile_watched()
    assert (report.moved, report.removed, report.memories_deleted) == (1, 0, 0)
    memory = hive.get_memory(memory_id)
    assert not memory.deleted and str(folder / "sub" / "database.md") in memory.sources
    assert [s.path for s in hive.source_spans(memory_id)] == [str(folder / "sub" / "database.md")]


def test_a_file_moved_between_watched_folders_keeps_its_memories(hive: Hive, folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "docs"
    other.mkdir()
    hive.watch_folders([folder, other])
    [memory_id] = live_texts(hive)
    shutil.move(folder / "db.md", other / "db.md")
    report = hive.reconcile_watched()
    assert (report.moved, report.memories_deleted) == (1, 0)
    assert not hive.get_memory(memory_id).deleted
    assert {f.path: f.files for f in hive.watched_folders()} == {str(folder): 0, str(other): 1}


def test_a_chunk_another_file_still_holds_is_not_deleted(hive: Hive, folder: Path) -> None:
    write(folder / "copy.md", PARA_A, PARA_B)
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    (folder / "db.md").unlink()
    assert hive.reconcile_watched().memories_deleted == 0
    assert not hive.get_memory(memory_id).deleted


def test_a_memory_also_stored_by_hand_outlives_its_file(hive: Hive, folder: Path) -> None:
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    hive.store_memory(hive.get_memory(memory_id).text, source="chat")
    (folder / "db.md").unlink()
    assert hive.reconcile_watched().memories_deleted == 0
    assert not hive.get_memory(memory_id).deleted


def test_a_chunk_stored_by_hand_without_a_source_outlives_its_file(hive: Hive, folder: Path, tmp_path: Path) -> None:
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    hive.store_memory(hive.get_memory(memory_id).text)  # by hand, no source: nothing tells it apart but the write
    (folder / "db.md").unlink()
    assert hive.reconcile_watched().memories_deleted == 0 and not hive.get_memory(memory_id).deleted
    before = hive.store_memory(PARA_C).memory.id  # there before the watch ever stored it
    other = tmp_path / "other"
    write(other / "c.md", PARA_C)
    hive.watch_folders([other])
    (other / "c.md").unlink()
    assert hive.reconcile_watched().memories_deleted == 0 and not hive.get_memory(before).deleted


def test_a_folder_that_disappears_is_reported_once_and_its_memories_stay(
    hive: Hive, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    away = folder.with_name("unmounted")
    folder.rename(away)
    with caplog.at_level("WARNING"):
        first = hive.reconcile_watched()
        second = hive.reconcile_watched()
    assert first.missing_folders == second.missing_folders == [str(folder)]
    assert first.removed == second.removed == 0 and not hive.get_memory(memory_id).deleted
    assert sum("is not there" in r.message for r in caplog.records) == 1
    [listed] = hive.watched_folders()
    assert listed.missing and listed.files == 1 and "is not there" in (listed.error or "")
    away.rename(folder)
    back = hive.reconcile_watched()
    assert (back.missing_folders, back.unchanged, back.changes) == ([], 1, 0)
    assert not hive.watched_folders()[0].missing


def fail_listing(monkeypatch: pytest.MonkeyPatch, broken: Path) -> None:
    """`os.scandir` fails with EIO for this one directory (chmod 000 does not stop root, who runs the tests)."""
    real = os.scandir

    def scandir(path: str) -> object:
        if Path(path) == broken:
            raise OSError(5, "Input/output error", path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("which", ["subfolder", "folder"])
def test_a_directory_that_cannot_be_listed_keeps_its_files_and_is_reported(
    hive: Hive, folder: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    write(folder / "sub" / "deep.md", PARA_C)
    hive.watch_folders([folder])
    assert len(live_texts(hive)) == 2
    broken = folder / "sub" if which == "subfolder" else folder
    fail_listing(monkeypatch, broken)
    report = hive.reconcile_watched()
    assert (report.removed, report.memories_deleted) == (0, 0)
    assert (str(broken), "Input/output error") in report.skipped
    assert len(live_texts(hive)) == 2 and hive.watched_folders()[0].files == 2
    monkeypatch.undo()
    (folder / "sub" / "deep.md").unlink()
    assert hive.reconcile_watched().memories_deleted == 1  # listed again, a real delete still counts


def test_a_mount_point_left_empty_on_another_device_is_missing_not_emptied(hive: Hive, folder: Path) -> None:
    """An unmounted disk leaves its (empty) mount point, still a directory: its other device gives it away.
    The folder's recorded device is planted (tests cannot mount), the walk and the files are real."""
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    with hive.parts.watch.state.db.write() as conn:
        conn.execute("UPDATE watched_folders SET device = device + 1")
    (folder / "db.md").unlink()  # the mount point as it looks unmounted: empty
    report = hive.reconcile_watched()
    assert (report.missing_folders, report.removed) == ([str(folder)], 0)
    assert not hive.get_memory(memory_id).deleted
    [listed] = hive.watched_folders()
    assert listed.missing and "another device" in (listed.error or "")
    hive.watch_folders([folder])  # the user says what is there now is the folder
    assert hive.get_memory(memory_id).deleted and not hive.watched_folders()[0].missing


def test_more_than_half_the_files_gone_at_once_deletes_nothing_until_watch_add_again(
    hive: Hive, folder: Path
) -> None:
    for n in range(6):
        write(folder / f"n{n}.md", f"Note number {n} about the lab network.")
    hive.watch_folders([folder])
    assert len(live_texts(hive)) == 7
    for n in range(4):
        (folder / f"n{n}.md").unlink()
    for _ in range(2):  # a later reconcile that sees the same loss still waits for the user
        report = hive.reconcile_watched()
        assert (report.suspect_folders, report.removed, report.memories_deleted) == ([str(folder)], 0, 0)
    [listed] = hive.watched_folders()
    assert listed.suspect and "watch add" in (listed.error or "") and len(live_texts(hive)) == 7
    write(folder / "n0.md", "Note number 0 about the lab network.")  # files coming back lift the mark
    write(folder / "n1.md", "Note number 1 about the lab network.")
    report = hive.reconcile_watched()
    assert (report.suspect_folders, report.removed) == ([], 2) and not hive.watched_folders()[0].suspect
    for n in (0, 1, 4, 5):
        (folder / f"n{n}.md").unlink()
    assert hive.reconcile_watched().suspect_folders == [str(folder)]
    report = hive.watch_folders([folder])  # confirms: the loss is accepted
    assert (report.removed, report.suspect_folders) == (4, []) and len(live_texts(hive)) == 1
    assert not hive.watched_folders()[0].suspect and hive.watched_folders()[0].error is None


def test_links_to_a_file_or_a_directory_outside_the_folder_are_never_read(
    hive: Hive, folder: Path, tmp_path: Path
) -> None:
    secret = write(tmp_path / "home" / ".ssh" / "id_rsa.md", "-----BEGIN OPENSSH PRIVATE KEY----- hunter2")
    write(tmp_path / "elsewhere" / "private.md", "Salary review notes for the whole team.")
    (folder / "notes.md").symlink_to(secret)
    (folder / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    report = hive.watch_folders([folder])
    assert report.files_seen == 1 and set(live_texts(hive).values()) == {f"{PARA_A}\n\n{PARA_B}"}
    reported = [str(folder / "notes.md"), str(folder / "linked" / "private.md"), str(folder / "linked")]
    hive.reconcile_watched(paths=reported)  # as a watcher would report them
    write(folder / "real.md", PARA_C)
    hive.reconcile_watched(paths=[str(folder / "linked" / "private.md"), str(folder / "real.md")])
    texts = " ".join(live_texts(hive).values())
    assert "hunter2" not in texts and "Salary" not in texts and PARA_C in texts


def test_a_followed_file_swapped_for_a_link_is_not_read_through_it(hive: Hive, folder: Path, tmp_path: Path) -> None:
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    secret = write(tmp_path / "secret.md", "root password is hunter2")
    (folder / "db.md").unlink()
    (folder / "db.md").symlink_to(secret)
    hive.reconcile_watched(paths=[str(folder / "db.md")])
    assert "hunter2" not in " ".join(live_texts(hive).values()) and hive.get_memory(memory_id).deleted
    with pytest.raises(InvalidInputError, match="symbolic link"):
        read_regular_file(folder / "db.md", 1000, follow_symlinks=False)


def test_directory_events_in_tool_hidden_or_gitignored_directories_walk_nothing(
    hive: Hive, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hivemind_app.services import watch

    (folder / ".gitignore").write_text("build/\n")
    hive.watch_folders([folder])
    walks: list[Path] = []
    real_walk = watch.walk
    monkeypatch.setattr(watch, "walk", lambda root, ext: walks.append(root) or real_walk(root, ext))
    for name in ("node_modules/left-pad", ".git/objects/ab", ".venv/lib", "build/out"):
        (folder / name).mkdir(parents=True)
        write(folder / name / "README.md", PARA_C)
    events = [str(folder / "node_modules"), str(folder / "node_modules" / "left-pad"), str(folder / ".git" / "objects"),
              str(folder / ".venv" / "lib" / "README.md"), str(folder / "build"), str(folder / "build" / "out")]
    report = hive.reconcile_watched(paths=events)
    assert walks == [] and report.changes == 0 and PARA_C not in live_texts(hive).values()
    (folder / "docs").mkdir()
    hive.reconcile_watched(paths=[str(folder / "docs")])
    assert walks == [folder]  # a directory that is followed still walks


def test_the_watcher_filter_drops_what_the_walk_skips_and_keeps_gitignore() -> None:
    root = "/home/me/notes"
    assert followed_event([root], f"{root}/db.md") and followed_event([root], f"{root}/.gitignore")
    assert followed_event([root], f"{root}/sub") and followed_event([root], root)
    for dropped in ("node_modules/x/a.md", ".git/index", ".venv/lib/site.py", "sub/.hidden.md", "__pycache__"):
        assert not followed_event([root], f"{root}/{dropped}"), dropped


def test_a_folder_removed_while_its_files_are_stored_is_reported_not_an_error(hive: Hive, folder: Path) -> None:
    """`watch remove` from another process lands between the store of a file's chunks and its record."""
    hive.watch_folders([folder])
    write(folder / "new.md", PARA_C)
    memories = hive.parts.watch.memories
    real_store_many = memories.store_many

    def store_then_removed(*args: object, **kwargs: object) -> object:
        stored = real_store_many(*args, **kwargs)  # type: ignore[arg-type]
        hive.unwatch_folder(folder)
        return stored

    memories.store_many = store_then_removed  # type: ignore[method-assign]
    report = hive.reconcile_watched()
    assert (str(folder / "new.md"), watch.REMOVED_MEANWHILE) in report.skipped
    assert hive.watched_folders() == [] and PARA_C in live_texts(hive).values()


def test_gitignored_hidden_and_tool_files_are_not_followed(hive: Hive, folder: Path) -> None:
    (folder / ".gitignore").write_text("secret.md\nbuild/\n")
    write(folder / "secret.md", "ignored by .gitignore")
    write(folder / "build" / "out.md", "ignored directory")
    write(folder / ".hidden" / "h.md", "hidden directory")
    write(folder / "node_modules" / "m.md", "tool directory")
    report = hive.watch_folders([folder])
    assert report.files_seen == 1
    assert set(live_texts(hive).values()) == {f"{PARA_A}\n\n{PARA_B}"}


def test_a_file_over_the_size_limit_is_listed_not_read(hive: Hive, folder: Path) -> None:
    hive.settings.importer.max_file_bytes = 1000
    big = write(folder / "big.md", "y" * 2000)
    report = hive.watch_folders([folder])
    assert report.skipped == [(str(big), "2,001 bytes, over importer.max_file_bytes (1,000)")]
    [listed] = hive.watched_folders()
    assert listed.skipped == ((str(big), "2,001 bytes, over importer.max_file_bytes (1,000)"),)
    again = hive.reconcile_watched()  # unchanged: not read again, still listed
    assert again.hashed == 0 and again.skipped == report.skipped


def test_a_file_that_turns_binary_keeps_its_memories_and_is_listed(hive: Hive, folder: Path) -> None:
    hive.watch_folders([folder])
    [memory_id] = live_texts(hive)
    (folder / "db.md").write_bytes(b"\x00\x01binary now")
    bump(folder / "db.md")
    report = hive.reconcile_watched()
    assert report.skipped and "NUL bytes" in report.skipped[0][1]
    assert not hive.get_memory(memory_id).deleted
    write(folder / "db.md", PARA_C)
    bump(folder / "db.md")
    hive.reconcile_watched()
    assert set(live_texts(hive).values()) == {PARA_C} and hive.get_memory(memory_id).deleted


def test_remove_keeps_memories_and_forget_tombstones_them(hive: Hive, folder: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "docs" / "x.md", PARA_C).parent
    hive.watch_folders([folder, other])
    assert hive.unwatch_folder(folder) == (str(folder), 0)
    assert len(live_texts(hive)) == 2
    assert hive.unwatch_folder(other, forget=True) == (str(other), 1)
    assert set(live_texts(hive).values()) == {f"{PARA_A}\n\n{PARA_B}"}
    with pytest.raises(NotFoundError, match="not a watched folder"):
        hive.unwatch_folder(other)


def test_a_file_and_nested_folders_are_refused_with_the_reason(hive: Hive, folder: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a directory"):
        hive.watch_folders([folder / "db.md"])
    hive.watch_folders([folder])
    (folder / "inner").mkdir()
    with pytest.raises(InvalidInputError, match="overlaps the watched folder"):
        hive.watch_folders([folder / "inner"])


def test_a_file_saved_while_it_is_read_is_read_again(
    hive: Hive, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor saves the file just after its bytes were read (before the read is checked): the stale bytes
    are not stored under the new size and mtime (which would hide the save for good); the file is read again."""
    from hivemind_app import sourcefiles
    from hivemind_app.services import watch

    path = folder / "db.md"
    real_read = sourcefiles.read_regular_file
    saves: list[str] = []

    def read_then_save(p: Path, max_bytes: int, follow_symlinks: bool = True) -> bytes:
        data = real_read(p, max_bytes, follow_symlinks)
        if not saves:
            saves.append("saved")
            write(path, PARA_C)
            bump(path)
        return data

    monkeypatch.setattr(watch, "read_regular_file", read_then_save)
    hive.watch_folders([folder])
    assert set(live_texts(hive).values()) == {PARA_C}
    assert hive.reconcile_watched().hashed == 0  # the stored stat is the save's


def test_a_file_that_keeps_changing_is_listed_and_read_at_the_next_reconcile(
    hive: Hive, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hivemind_app import sourcefiles
    from hivemind_app.services import watch

    path = folder / "db.md"
    real_read = sourcefiles.read_regular_file
    saves = iter(range(watch.READ_TRIES))

    def read_then_save(p: Path, max_bytes: int, follow_symlinks: bool = True) -> bytes:
        data = real_read(p, max_bytes, follow_symlinks)
        if next(saves, None) is not None:
            write(path, f"save {time.monotonic()}")
            bump(path)
        return data

    monkeypatch.setattr(watch, "read_regular_file", read_then_save)
    report = hive.watch_folders([folder])
    assert report.skipped == [(str(path), f"it kept changing while being read ({watch.READ_TRIES} tries); "
                                          "it is read again at its next change")]
    assert live_texts(hive) == {}
    hive.reconcile_watched()
    assert list(live_texts(hive).values()) == [path.read_text().strip()]


def test_paragraphs_swapped_between_two_files_in_one_pass_stay(hive: Hive, folder: Path) -> None:
    """Each file drops a chunk the other takes: whichever file is read first, neither memory is deleted."""
    para_d = "The CI runners cache wheels in /srv/pip for a week."
    hive.settings.importer.chunk_chars = 200  # one paragraph a chunk
    write(folder / "db.md", PARA_A, "y" * 170, PARA_B)
    write(folder / "other.md", PARA_C, "z" * 170, para_d)
    hive.watch_folders([folder])
    ids = ids_by_text(hive)
    write(folder / "db.md", PARA_A, "y" * 170, para_d)
    write(folder / "other.md", PARA_C, "z" * 170, PARA_B)
    bump(folder / "db.md")
    bump(folder / "other.md")
    report = hive.reconcile_watched()
    assert (report.changed, report.memories_deleted, report.chunks_stored) == (2, 0, 2)  # stored: a new source
    assert not hive.get_memory(ids[PARA_B]).deleted and not hive.get_memory(ids[para_d]).deleted
    assert [s.path for s in hive.source_spans(ids[PARA_B])] == [str(folder / "other.md")]


def test_reported_paths_alone_are_looked_at_and_a_renamed_directory_walks_the_folder(
    hive: Hive, folder: Path
) -> None:
    write(folder / "sub" / "a.md", PARA_C)
    hive.watch_folders([folder])
    write(folder / "db.md", PARA_A)
    write(folder / "sub" / "a.md", PARA_B)  # changed, but not reported below
    bump(folder / "db.md")
    bump(folder / "sub" / "a.md")
    report = hive.reconcile_watched(paths={str(folder / "db.md")})
    assert (report.files_seen, report.changed, report.hashed) == (1, 1, 1)
    assert PARA_C in live_texts(hive).values()  # the unreported change waits for a walk
    (folder / "sub").rename(folder / "renamed")
    report = hive.reconcile_watched(paths={str(folder / "sub"), str(folder / "renamed")})
    # walked whole: the unreported change is seen now too (a new hash at a new path: added, the old one removed)
    assert (report.files_seen, report.added, report.removed) == (2, 1, 1)
    assert set(live_texts(hive).values()) == {PARA_A, PARA_B}
    assert [s.path for s in hive.source_spans(ids_by_text(hive)[PARA_B])] == [str(folder / "renamed" / "a.md")]
