"""What the hooks inject: the prompt's relevant memories through the real console script, within the budget,
each once, from this project only, never a secret; and the threshold that decides relevance, measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivemind_app.claude.inject import fast_settings, render
from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.records.memories import GLOBAL_TAG
from hivemind_app.store.peek import prompt_matches
from tests.support.console import console_script
from tests.support.hash_embedder import HashEmbedder

EXE = console_script()
SESSION = "5d6e7f80-1111-4222-8333-944455566677"
ALPHA, BETA = "github.com/me/alpha", "github.com/me/beta"

# Stored facts, prompts about each (they must get it), and prompts about nothing stored (they must get nothing).
FACTS = {
    "staging": "The staging Postgres database listens on port 5433, production on 5432",
    "gpu": "Reach the GPU box beast.lab through ProxyJump bastion.lab",
    "backup": "Nightly backups of the photo library run at 02:00 on the NAS",
    "redis": "Redis AOF rewrite stalls writes for 200 ms on the NAS; schedule it at night",
    "release": "Release builds are signed with the key in the hardware token, never on CI",
}
ABOUT = {
    "staging": ["which port does the staging database listen on?", "connect psql to staging postgres"],
    "gpu": ["how do I ssh to the GPU box?", "the beast.lab connection times out, do I need a jump host?"],
    "backup": ["when do the nightly backups run?", "is the NAS backup of the photo library done at night?"],
    "redis": ["why do redis writes stall sometimes?", "when should the AOF rewrite be scheduled?"],
    "release": ["how are release builds signed?", "can CI sign the release build?"],
}
UNRELATED = [
    "rename the variable foo to bar in utils.py",
    "write a haiku about autumn leaves",
    "fix the CSS grid so the sidebar does not overlap the header",
    "what does this regex match: ^a+b?$",
    "add type hints to the parser module",
    "explain the difference between a list and a tuple in Python",
    "the port of the game to Android crashes on start",  # one word in common with a fact: not enough
    # two words in common with the release fact, in a long prompt about something else: below the threshold
    "write release notes for the new build of the android game, then update the changelog, readme and website",
]


@pytest.fixture
def fast_hive(settings: Settings) -> Iterator[Hive]:
    settings.embedding.model = HashEmbedder.model_name
    with Hive(settings, embedder=HashEmbedder()) as hive:
        yield hive


def git_repo(path: Path, url: str) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "remote", "add", "origin", url], check=True)
    return path


@pytest.fixture
def alpha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = git_repo(tmp_path / "alpha", f"git@{ALPHA.replace('/', ':', 1)}.git")
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(repo))
    return repo


def prompt_hook(prompt: str, session: str = SESSION, cwd: str = "/nowhere") -> subprocess.CompletedProcess[str]:
    payload = {"session_id": session, "cwd": cwd, "hook_event_name": "UserPromptSubmit", "prompt": prompt}
    assert EXE is not None
    proc = subprocess.run(
        [EXE, "hook", "UserPromptSubmit"],
        input=json.dumps(payload).encode(),
        capture_output=True,
        timeout=60,
        env=dict(os.environ),
    )
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def injected(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    if not proc.stdout.strip():
        return ""
    output = json.loads(proc.stdout)["hookSpecificOutput"]
    assert output["hookEventName"] == "UserPromptSubmit"
    return str(output["additionalContext"])


def test_the_threshold_gives_every_prompt_about_a_fact_that_fact_and_unrelated_prompts_nothing(
    fast_hive: Hive,
) -> None:
    ids = {name: fast_hive.store_memory(text, project=ALPHA).memory.id for name, text in FACTS.items()}
    path = fast_hive.settings.db_path
    threshold = fast_settings()[1]
    worst_hit, best_miss = 1.0, 0.0
    for name, prompts in ABOUT.items():
        for prompt in prompts:
            found = prompt_matches(path, prompt, (ALPHA,), set(), 5, GLOBAL_TAG)
            assert found and found[0].id == ids[name], prompt
            worst_hit = min(worst_hit, found[0].relevance)
    for prompt in UNRELATED:
        found = prompt_matches(path, prompt, (ALPHA,), set(), 5, GLOBAL_TAG)
        best_miss = max([best_miss, *(m.relevance for m in found)])
    assert best_miss < threshold <= worst_hit, (best_miss, worst_hit)


def test_a_prompt_about_a_stored_fact_gets_it_with_its_id_once_per_session(fast_hive: Hive, alpha: Path) -> None:
    stored = fast_hive.store_memory(FACTS["staging"], project=ALPHA).memory
    fast_hive.store_memory(FACTS["backup"], project=ALPHA)

    first = injected(prompt_hook("which port does the staging database listen on?"))
    assert f"[{stored.id[:12]}]" in first and "5433" in first and "photo" not in first
    assert injected(prompt_hook("and the staging database port again?")) == ""  # never the same one twice
    assert "5433" in injected(prompt_hook("staging database port?", session="another-session"))
    assert injected(prompt_hook("write a haiku about autumn leaves", session="third")) == ""


def test_nothing_from_another_project_is_injected_whatever_the_prompt_says(fast_hive: Hive, alpha: Path) -> None:
    fast_hive.store_memory("beta's staging database listens on port 6543", project=BETA)
    fast_hive.store_memory("every staging database is reset on Mondays", project=BETA, tags=[GLOBAL_TAG])
    for prompt in (
        "which port does beta's staging database listen on?",
        f"in project {BETA}: staging database port",
        "staging database port --all-projects",
    ):
        context = injected(prompt_hook(prompt, session=prompt[:20], cwd=str(alpha.parent / "beta")))
        assert "6543" not in context, prompt
    assert "Mondays" in injected(prompt_hook("when is the staging database reset?", session="global"))


def test_a_secret_in_a_prompt_is_neither_injected_nor_stored(fast_hive: Hive, alpha: Path) -> None:
    token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB"
    fast_hive.store_memory(f"The staging database token is {token}", project=ALPHA)  # stored redacted
    context = injected(prompt_hook(f"use staging database token {token} to connect"))
    assert "staging database" in context and token not in context
    subprocess.run([EXE or "", "claude", "drain-hooks"], check=True, capture_output=True, timeout=120)
    data_dir = fast_hive.settings.data_dir
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_a_huge_prompt_is_answered_quickly_and_a_missing_store_means_nothing(
    fast_hive: Hive, alpha: Path, tmp_path: Path
) -> None:
    fast_hive.store_memory(FACTS["redis"], project=ALPHA)
    huge = "why do redis writes stall? " + "lorem ipsum dolor sit amet " * 200_000  # 5 MB
    start = time.perf_counter()
    context = injected(prompt_hook(huge))
    assert time.perf_counter() - start < 10 and "AOF" in context
    os.environ["HIVEMIND_DATA_DIR"] = str(tmp_path / "empty")  # restored by the autouse fixture's monkeypatch
    assert injected(prompt_hook("why do redis writes stall?", session="x")) == ""


def test_the_budget_bounds_what_is_injected_and_each_line_carries_an_id() -> None:
    items = [(f"{n:064x}", "word " * 400) for n in range(20)]
    block, ids = render("header", items, 1500)
    assert len(block) <= 1500 and len(ids) >= 3
    assert all(line.startswith(f"- [{i[:12]}] ") for line, i in zip(block.splitlines()[1:], ids, strict=True))
    assert render("header", items, 30) == ("", [])


def test_the_hot_path_reads_the_settings_as_settings_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[inject]\nbudget_chars = 900\nprompt_min_relevance = 0.7\n[store]\nfilename = "x.db"\n')
    monkeypatch.setenv("HIVEMIND_CONFIG", str(config))
    settings = Settings()
    budget, threshold, store_file = fast_settings()
    assert (
        (budget, threshold, Path(store_file))
        == (
            settings.inject.budget_chars,
            settings.inject.prompt_min_relevance,
            settings.data_dir / settings.store.filename,
        )
        == (900, 0.7, settings.data_dir / "x.db")
    )
    monkeypatch.setenv("HIVEMIND_INJECT__BUDGET_CHARS", "0")
    assert fast_settings()[0] == Settings().inject.budget_chars == 0


def test_session_start_gives_this_projects_memories_within_the_budget(fast_hive: Hive, alpha: Path) -> None:
    for n in range(40):
        fast_hive.store_memory(f"alpha fact number {n}: " + "detail " * 60, project=ALPHA)
    fast_hive.store_memory("beta's deploy key lives in the vault", project=BETA)
    payload = {"session_id": SESSION, "cwd": str(alpha), "hook_event_name": "SessionStart", "source": "startup"}
    proc = subprocess.run(
        [EXE or "", "hook", "SessionStart"], input=json.dumps(payload).encode(), capture_output=True, timeout=120
    )
    context = json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"]
    assert len(context) <= 1500 and "alpha fact number 39" in context and "vault" not in context
    assert context.count("- [") >= 3


def test_the_prompt_hook_answers_without_loading_the_store_the_settings_or_the_cli(fast_hive: Hive) -> None:
    fast_hive.store_memory(FACTS["redis"])
    prompt = {"session_id": "s", "cwd": "/nowhere", "prompt": "why do redis writes stall sometimes?"}
    code = (
        "import io, sys\n"
        "sys.argv = ['hivemind-app', 'hook', 'UserPromptSubmit']\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO({json.dumps(prompt).encode()!r}))\n"
        "import hivemind_app.claude.spool as spool\n"
        "spool.start_drainer = lambda directory: False\n"
        "from hivemind_app.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pydantic', 'click', 'apsw', 'numpy', 'sqlite_vec', 'hivemind_app.hive') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *context, loaded = out.stdout.strip().splitlines()
    assert loaded == "[]", out.stderr
    assert "AOF" in json.loads(context[0])["hookSpecificOutput"]["additionalContext"]


def test_what_a_session_was_given_is_kept_privately_forgotten_on_clear_and_pruned_when_old() -> None:
    from hivemind_app.claude.inject import _seen_file, forget_session, prune_seen, remember, seen

    remember("s1", ["a" * 64, "b" * 64])
    remember("s1", ["c" * 64])
    remember("s2", ["d" * 64])
    assert seen("s1") == {"a" * 64, "b" * 64, "c" * 64} and seen("s2") == {"d" * 64}
    assert os.stat(_seen_file("s1")).st_mode & 0o777 == 0o600 and "s1" not in os.path.basename(_seen_file("s1"))
    forget_session("s1")
    assert seen("s1") == set()
    old = _seen_file("s2")
    os.utime(old, (time.time() - 30 * 86400, time.time() - 30 * 86400))
    prune_seen()
    assert seen("s2") == set()


def test_a_project_less_session_digest_is_never_a_prompts_match_elsewhere(fast_hive: Hive) -> None:
    from hivemind_app.records.memories import DIGEST_TAG

    # a session run outside any repository leaves a digest with no project: its prompts and commands are nobody's
    fast_hive.store_memory(
        "Session digest: staging postgres database port 5433 checked with psql", tags=[DIGEST_TAG]
    )
    plain = fast_hive.store_memory("The staging Postgres database listens on port 5433").memory
    found = prompt_matches(
        fast_hive.settings.db_path, "which port does the staging postgres database use?", (ALPHA,), set(), 5,
        GLOBAL_TAG,
    )
    assert [m.id for m in found] == [plain.id]


def test_memories_already_given_never_crowd_newer_matches_out(fast_hive: Hive) -> None:
    given = {
        fast_hive.store_memory(f"staging database {n} listens: staging database port, listen port", project=ALPHA)
        .memory.id
        for n in range(30)
    }  # each a closer keyword match than the fresh one: before, they filled every candidate slot
    fresh = fast_hive.store_memory(
        "On the staging database the primary server listens on port 5433 since the migration last spring",
        project=ALPHA,
    ).memory
    found = prompt_matches(
        fast_hive.settings.db_path, "which port does the staging database listen on?", (ALPHA,), given, 5, GLOBAL_TAG
    )
    assert [m.id for m in found] == [fresh.id]


def test_a_prompt_is_redacted_before_it_is_cut_so_its_query_never_holds_part_of_a_secret() -> None:
    from hivemind_app.claude.inject import PROMPT_LIMIT, prompt_context

    token = "ghp_1234567890abcdefghijABCDEFGHIJ123456"
    queries: list[str] = []

    def lookup(*args: object) -> list[object]:
        queries.append(str(args[1]))
        return []

    for cut_at in (6, 20, 39):  # the prompt's limit falls inside the token
        prompt = "why does the deploy fail " + "x" * (PROMPT_LIMIT - 26 - cut_at) + " " + token + " with this token"
        assert prompt_context({"session_id": "s-cut", "prompt": prompt}, lookup) is None
        assert token[:6] not in queries[-1] and len(queries[-1]) <= PROMPT_LIMIT
