"""Projects: which repository a memory comes from, and recall scoped to it (tests against real git repos)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hivemind_app.hive import Hive
from hivemind_app.projects import current_project, normalise_remote, project_of


def git_repo(path: Path, remote: str | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if remote:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", remote], check=True)
    return path


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://github.com/Owner/Repo.git", "github.com/Owner/Repo"),
        ("git@github.com:owner/repo.git", "github.com/owner/repo"),
        ("ssh://git@GitLab.example.com:2222/team/app", "gitlab.example.com/team/app"),
        ("https://x-access-token:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r.git", "github.com/o/r"),
        ("https://alice:hunter2@git.example.org/o/r/", "git.example.org/o/r"),
    ],
)
def test_a_remote_url_is_named_by_host_and_path_without_credentials(url: str, name: str) -> None:
    assert normalise_remote(url) == name


def test_a_local_path_remote_is_no_name() -> None:
    assert normalise_remote("/srv/git/repo.git") is None
    assert normalise_remote("file:///srv/git/repo.git") is None


def test_a_repository_is_its_remote_from_any_directory_inside_it(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "app", "https://tok:secret@github.com/me/app.git")
    (repo / "src" / "deep").mkdir(parents=True)
    assert project_of(repo) == project_of(repo / "src" / "deep") == "github.com/me/app"


def test_a_repository_without_a_remote_is_its_root_and_a_plain_directory_is_none(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "local")
    (repo / "sub").mkdir()
    assert project_of(repo / "sub") == str(repo.resolve())
    (tmp_path / "plain").mkdir()
    assert project_of(tmp_path / "plain") is None
    assert project_of(tmp_path / "does-not-exist") is None


def test_a_worktree_is_the_project_of_its_main_repository(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "main", "git@github.com:me/app.git")
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(tmp_path / "wt")], check=True)
    assert project_of(tmp_path / "wt") == "github.com/me/app"


def test_claude_project_dir_wins_over_the_hooks_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = git_repo(tmp_path / "a", "https://github.com/me/a")
    b = git_repo(tmp_path / "b", "https://github.com/me/b")
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    assert current_project(str(b)) == "github.com/me/b"
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(a))
    assert current_project(str(b)) == "github.com/me/a"


def test_recall_covers_this_project_global_memories_and_those_of_no_project_only(hive: Hive) -> None:
    hive.store_memory("deploy alpha with make ship", project="github.com/me/alpha")
    hive.store_memory("deploy beta with kubectl apply", project="github.com/me/beta")
    hive.store_memory("deploy anything only on weekdays", project="github.com/me/beta", tags=["global"])
    hive.store_memory("deploy notes from before projects")

    def texts(projects: tuple[str, ...] | None) -> set[str]:
        filters = hive.make_filters(projects=projects)
        return {h.memory.text for h in hive.search_memory("deploy", mode="keyword", filters=filters).hits}

    assert texts(("github.com/me/alpha",)) == {
        "deploy alpha with make ship",
        "deploy anything only on weekdays",
        "deploy notes from before projects",
    }
    assert "deploy beta with kubectl apply" not in texts(())
    assert len(texts(None)) == 4
    recent = {m.text for m in hive.recent_memories(10, hive.make_filters(projects=("github.com/me/beta",)))}
    assert "deploy alpha with make ship" not in recent


def test_a_tag_filter_with_a_project_scope_still_keeps_other_projects_out(hive: Hive) -> None:
    hive.store_memory("alpha secret sauce", tags=["ops"], project="alpha")
    hive.store_memory("beta secret sauce", tags=["ops"], project="beta")
    filters = hive.make_filters(tags=["ops"], projects=("alpha",))
    for mode in ("keyword", "vector", "hybrid"):
        hits = hive.search_memory("secret sauce", mode=mode, filters=filters).hits
        assert [h.memory.text for h in hits] == ["alpha secret sauce"], mode


def test_a_memory_keeps_the_project_it_was_first_stored_in(hive: Hive) -> None:
    first = hive.store_memory("shared fact", project="alpha")
    again = hive.store_memory("shared fact", project="beta", tags=["global"])
    assert first.memory.id == again.memory.id
    assert hive.get_memory(first.memory.id).project == "alpha"
    assert "global" in hive.get_memory(first.memory.id).tags


def test_a_project_name_carrying_a_secret_is_stored_redacted(hive: Hive) -> None:
    stored = hive.store_memory("fact", project="github.com/ghp_abcdefghijklmnopqrstuvwxyz0123456789/x")
    assert "ghp_" not in (stored.memory.project or "")


@given(
    user=st.text(alphabet=st.characters(categories=("L", "N")), min_size=1, max_size=20),
    password=st.text(alphabet=st.characters(categories=("L", "N")), min_size=8, max_size=40),
    path=st.from_regex(r"[a-z0-9]{1,12}/[a-z0-9._-]{1,20}", fullmatch=True),
)
def test_no_user_or_password_in_a_remote_url_reaches_the_project_name(user: str, password: str, path: str) -> None:
    name = normalise_remote(f"https://{user}:{password}@git.example.com/{path}")
    assert name is not None and name.startswith("git.example.com/")
    assert f"{user}:" not in name and f":{password}" not in name and "@" not in name


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://user:pa/ss@host.com/o/r.git", "host.com/o/r"),  # a password holding '/' is no part of the host
        ("https://me:p@ss#1@host.com/o/r.git", "host.com/o/r"),  # nor one holding '@' and '#'
        ("https://gitlab.com/o/r.git?private_token=abc123secret", "gitlab.com/o/r"),  # a query is dropped
        ("https://gitlab.com/o/r.git#frag", "gitlab.com/o/r"),
        ("https:///o/r", None),  # no host: no project name made of the path
    ],
)
def test_a_remote_names_its_project_without_any_part_of_a_password_or_query(url: str, name: str | None) -> None:
    assert normalise_remote(url) == name


def test_a_long_running_process_sees_a_repository_created_or_renamed_after_it_first_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an MCP server started in a directory before `git init`, then a remote added, then changed
    monkeypatch.delenv("CLAUDE_PROJECT_DIR", raising=False)
    here = tmp_path / "app"
    here.mkdir()
    assert current_project(str(here)) is None
    git_repo(here)
    assert current_project(str(here)) == str(here.resolve())  # no remote: named by its root
    subprocess.run(["git", "-C", str(here), "remote", "add", "origin", "https://github.com/me/app"], check=True)
    assert current_project(str(here)) == "github.com/me/app"
    subprocess.run(
        ["git", "-C", str(here), "remote", "set-url", "origin", "https://github.com/me/app-renamed"], check=True
    )
    assert current_project(str(here)) == "github.com/me/app-renamed"
