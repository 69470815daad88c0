"""`store`, `import`, `recall`, `show`, `delete` as a user runs them, and their one-line errors."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path

from tests.cli.runner import assert_one_line_error, run


def test_store_recall_show_delete_and_status_from_the_command_line() -> None:
    stored = run(
        "store",
        "Benchmarked torch.compile on the 4090: 1.8x over eager for the ResNet",
        "--tag",
        "pytorch",
        "--source",
        "notes",
        "--json",
    )
    assert stored.returncode == 0, stored.stderr
    memory = json.loads(stored.stdout)
    assert memory["created"] and memory["embedded"] and memory["tags"] == ["pytorch"]
    assert run("store", "The staging database listens on port 5433", "-t", "infra").stdout.startswith("stored ")

    hybrid = run("recall", "what was I doing with PyTorch benchmarks?")
    assert hybrid.returncode == 0, hybrid.stderr
    first = hybrid.stdout.splitlines()[0]
    assert memory["id"][:12] in first and "notes" in first and "#pytorch" in first
    assert "Benchmarked torch.compile" in hybrid.stdout.splitlines()[1]

    keyword = json.loads(run("recall", "torch.compile", "--mode", "keyword", "--limit", "5", "--json").stdout)
    assert keyword["mode"] == "keyword" and [r["id"] for r in keyword["results"]] == [memory["id"]]

    status = json.loads(run("status", "--json").stdout)
    assert status["memories"]["live"] == 2
    assert status["embedding"] == {**status["embedding"], "model": "all-MiniLM-L6-v2", "dim": 384}
    assert status["redis"] == {"configured": False, "url": None}
    assert "2 (2 with vectors" in run("status").stdout

    assert "source:  notes" in run("show", memory["id"][:8]).stdout
    assert run("delete", memory["id"][:8]).stdout.strip() == f"deleted {memory['id'][:12]}"
    after = json.loads(run("recall", "torch.compile", "--mode", "keyword", "--json").stdout)
    assert after["results"] == []


def test_bad_input_gives_one_clear_line_and_a_nonzero_status() -> None:
    assert_one_line_error(run("store", ""), 65, "empty")
    assert_one_line_error(run("store", "-", stdin=b"\x89PNG\r\n\x1a\n\x00\x00"), 65, "binary")
    assert_one_line_error(run("store", "-", stdin=b"caf\xe9"), 65, "not valid UTF-8")
    assert_one_line_error(
        run("store", "x" * 200, env={"HIVEMIND_STORE__MAX_TEXT_BYTES": "100"}), 65, "over the limit of 100 bytes"
    )
    assert_one_line_error(run("recall", "x", "--limit", "0"), 65, "from 1 to")
    assert_one_line_error(run("recall", "x", "--since", "someday"), 65, "not a time")
    assert_one_line_error(run("show", "abcdef"), 1, "No memory")
    assert run("recall", "x", "--mode", "fuzzy").returncode == 2
    assert json.loads(run("status", "--json").stdout)["memories"]["live"] == 0


def test_a_missing_model_falls_back_to_keyword_search_and_says_so() -> None:
    env = {"HIVEMIND_EMBEDDING__MODEL": "/nonexistent/model"}
    stored = run("store", "Nightly backups run at 02:00 on the NAS", env=env)
    assert stored.returncode == 0 and "no vector yet" in stored.stdout
    found = run("recall", "nightly backups", env=env)
    assert found.returncode == 0
    assert "keyword search" in found.stderr and "Nightly backups" in found.stdout


def test_import_skips_fifos_devices_and_sockets_without_blocking_and_survives_any_file_name(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    os.mkfifo(notes / "pipe.md")  # opened for a blocking read, this would hang the import for ever
    (notes / "zero.txt").symlink_to("/dev/zero")  # read to the end, this would fill memory
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(notes / "sock.md"))
    newline_name = notes / "two\nlines.md"
    newline_name.write_text("A note whose file name holds a newline")
    odd_bytes = os.fsdecode(bytes(notes) + b"/caf\xe9.md")  # a name that is not UTF-8
    Path(odd_bytes).write_text("A note whose file name is Latin-1")
    (notes / "good.md").write_text("A plain note about the deploy freeze")

    try:
        proc = run("import", str(notes), str(notes / "pipe.md"), "--json")
    finally:
        listener.close()

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["files_imported"] == 3 and report["new_memories"] == 3
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert reasons["pipe.md"].startswith("a FIFO (named pipe), not a regular file")
    assert reasons["zero.txt"].startswith("a character device, not a regular file")
    assert "sock.md" in reasons
    sources = {m["source"] for m in json.loads(run("recall", "note", "--mode", "keyword", "--json").stdout)["results"]}
    assert f"{notes}/two\\nlines.md" in sources and f"{notes}/caf\\xe9.md" in sources  # escaped, one line each


def test_import_never_reads_past_the_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    big.write_text("x" * 5000)
    proc = run("import", str(big), "--json", env={"HIVEMIND_IMPORTER__MAX_FILE_BYTES": "4096"})
    report = json.loads(proc.stdout)
    assert report["files_imported"] == 0
    assert report["skipped"] == [{"path": str(big), "reason": "5,000 bytes, over importer.max_file_bytes (4,096)"}]


def test_import_stores_the_good_files_and_lists_the_bad_ones(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / ".git").mkdir()
    (notes / ".git" / "HEAD.md").write_text("ignored: inside .git")
    (notes / "photo.png").write_bytes(b"\x89PNG not imported: unknown extension")
    for n in range(997):
        folder = notes / "sub" if n % 2 else notes
        (folder / f"note-{n:04d}.md").write_text(
            f"# Note {n}\n\nDeploy step {n}: restart worker-{n} after the migration.\n"
        )
    (notes / "binary.md").write_bytes(b"\x00\x01\x02 binary")
    (notes / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (notes / "dangling.md").symlink_to(tmp_path / "gone.md")

    proc = run("import", str(notes), "--tag", "runbook")
    assert proc.returncode == 0, proc.stderr
    assert "imported 997 of 1000 files: 997 chunks, 997 new memories" in proc.stdout
    assert "skipped 3:" in proc.stderr
    for name, reason in [("binary.md", "NUL"), ("latin1.txt", "UTF-8"), ("dangling.md", "No such file")]:
        assert any(name in line and reason in line for line in proc.stderr.splitlines()), proc.stderr

    status = json.loads(run("status", "--json").stdout)
    assert status["memories"]["live"] == 997 and status["memories"]["pending_embeddings"] == 0
    found = json.loads(run("recall", "restart worker-512", "--mode", "keyword", "--tag", "runbook", "--json").stdout)
    assert "worker-512" in found["results"][0]["text"]
    assert found["results"][0]["source"].endswith("note-0512.md")

    again = run("import", str(notes), "--strict", "--json")
    assert again.returncode == 1
    report = json.loads(again.stdout)
    assert report["new_memories"] == 0 and report["merged_memories"] == 997 and len(report["skipped"]) == 3


def test_recall_and_show_print_escape_sequences_in_stored_text_as_visible_escapes() -> None:
    hostile = "Deploy notes for the staging cluster, read them first\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J then restart"
    stored = json.loads(run("store", hostile, "--json").stdout)
    recalled = run("recall", "deploy notes restart", "--mode", "keyword")
    shown = run("show", stored["id"])
    for out in (recalled.stdout, shown.stdout):
        assert "\x1b" not in out and "\x07" not in out
        assert "read them first\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J then restart" in out
    assert json.loads(run("show", stored["id"], "--json").stdout)["text"] == hostile  # stored as it was


def test_recall_covers_the_current_repositorys_memories_and_global_ones_unless_told_otherwise(tmp_path: Path) -> None:
    import subprocess

    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    for repo, url in ((alpha, "git@github.com:me/alpha.git"), (beta, "https://github.com/me/beta")):
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", url], check=True)
    stored = json.loads(run("store", "alpha ships with make release", "--json", cwd=alpha).stdout)
    assert stored["project"] == "github.com/me/alpha"
    assert run("store", "beta ships with helm upgrade", cwd=beta).returncode == 0
    assert run("store", "ships only after the tests pass", "--global", cwd=beta).returncode == 0

    def found(*args: str, cwd: Path) -> set[str]:
        proc = run("recall", "ships", "--mode", "keyword", "--json", *args, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        return {r["text"] for r in json.loads(proc.stdout)["results"]}

    assert found(cwd=alpha) == {"alpha ships with make release", "ships only after the tests pass"}
    assert found("--project", "github.com/me/beta", cwd=alpha) == {
        "beta ships with helm upgrade",
        "ships only after the tests pass",
    }
    assert len(found("--all-projects", cwd=alpha)) == 3
    assert found(cwd=tmp_path) == {"ships only after the tests pass"}  # outside any repository: global ones
    conflict = run("recall", "x", "--project", "p", "--all-projects")
    assert conflict.returncode == 2 and "--project and --all-projects do not go together" in conflict.stderr


def test_store_and_import_take_the_time_a_memory_describes_and_a_bad_one_imports_nothing(tmp_path: Path) -> None:
    stored = run("store", "The May retro: the disk of db-2 filled up", "--at", "2025-05-14", "--json")
    assert stored.returncode == 0, stored.stderr
    memory = json.loads(stored.stdout)
    assert memory["occurred_at"] == datetime(2025, 5, 14).astimezone().timestamp()
    shown = run("show", memory["id"][:12])
    assert "  about:   2025-05-14 00:00" in shown.stdout
    assert shown.stdout.rstrip().endswith("The May retro: the disk of db-2 filled up")

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "standup.md").write_text("Standup: the worker pool deploy slipped to Friday\n")
    bad = run("import", str(notes), "--occurred", "the day the deploy slipped")
    assert_one_line_error(bad, 65, "is not a time")
    assert json.loads(run("status", "--json").stdout)["memories"]["live"] == 1  # nothing imported
    imported = run("import", str(notes), "--occurred", "2025-06-02T09:30", "--json")
    assert imported.returncode == 0, imported.stderr
    found = json.loads(run("recall", "standup deploy in June 2025", "--mode", "keyword", "--json").stdout)
    assert found["results"][0]["occurred_at"] == datetime(2025, 6, 2, 9, 30).astimezone().timestamp()
