"""`hivemind-app watch add/list/remove` and `show`'s file line, through the real console script."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.runner import assert_one_line_error, run


def test_watch_add_list_show_and_remove_forget(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "db.md").write_text("Staging Postgres listens on 5433.\n")
    (notes / "big\x1b[2J.md").write_text("b" * 300)  # a hostile name: printed escaped, never as an escape
    big = f"{notes}/big\\x1b[2J.md"
    settings = {"HIVEMIND_IMPORTER__MAX_FILE_BYTES": "200"}

    added = run("watch", "add", str(notes), "--tag", "notes", env=settings)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("watching 1 folder: 2 files, 1 chunks stored, 0 already known")
    assert f"{big}: 300 bytes, over importer.max_file_bytes (200)" in added.stderr
    assert "\x1b" not in added.stderr

    listed = run("watch", "list", env=settings)
    assert listed.stdout.splitlines()[:2] == [str(notes), "  1 file, 1 memory, last change just now, tags notes"]
    assert f"  not read: {big}: 300 bytes" in listed.stdout and "\x1b" not in listed.stdout

    hit = json.loads(run("recall", "Staging", "--mode", "keyword", "--json", env=settings).stdout)["results"][0]
    shown = run("show", hit["id"][:8], env=settings)
    assert f"  file:    {notes / 'db.md'} bytes 0-33" in shown.stdout

    removed = run("watch", "remove", str(notes), "--forget", env=settings)
    assert removed.stdout.strip() == f"stopped watching {notes}; deleted 1 memory"
    assert "no watched folders" in run("watch", "list", env=settings).stdout


def test_watching_a_file_or_an_unknown_folder_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("x")
    assert_one_line_error(run("watch", "add", str(tmp_path / "a.md"), ), 65, "is not a directory")
    assert_one_line_error(run("watch", "remove", str(tmp_path), ), 1, "is not a watched folder")
