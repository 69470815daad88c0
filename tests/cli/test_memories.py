"""`store`, `import`, `recall`, `show`, `delete` as a user runs them, and their one-line errors."""

from __future__ import annotations

import json
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
