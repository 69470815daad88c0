"""A session's digest without an LLM: written at Stop / SessionEnd / PreCompact from the real hook payloads,
one per session, replaced as it goes on and by the LLM's summary later, and given to the next session."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivemind_app.claude.spool import drain_lock, spool_dir
from hivemind_app.config import Settings
from hivemind_app.hive import Hive
from hivemind_app.records.memories import DIGEST_TAG
from tests.support.console import console_script
from tests.support.hash_embedder import HashEmbedder

EXE = console_script()
PAYLOADS = Path(__file__).parent / "payloads"
SESSION = "9f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"  # the payloads' session
PROJECT = "github.com/me/hivemind-app"


@pytest.fixture
def fast_hive(settings: Settings) -> Iterator[Hive]:
    settings.embedding.model = HashEmbedder.model_name
    with Hive(settings, embedder=HashEmbedder()) as hive:
        yield hive


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "hivemind-app"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", f"https://{PROJECT}.git"], check=True)
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(repo))
    return repo


def payload(name: str, **changes: Any) -> bytes:
    return json.dumps({**json.loads((PAYLOADS / name).read_text()), **changes}).encode()


def run_hook(event: str, data: bytes) -> str:
    proc = subprocess.run(
        [EXE or "", "hook", event], input=data, capture_output=True, timeout=120, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def drain() -> None:
    subprocess.run([EXE or "", "claude", "drain-hooks"], check=True, capture_output=True, timeout=300)


def digests(settings: Settings) -> list[Any]:
    with Hive(settings, embedder=HashEmbedder()) as hive:
        return hive.recent_memories(10, hive.make_filters(tags=[DIGEST_TAG]))


def test_a_session_leaves_one_digest_that_the_next_session_starts_with(settings: Settings, project: Path) -> None:
    settings.embedding.model = HashEmbedder.model_name
    run_hook("SessionStart", payload("session_start.json"))
    with drain_lock(spool_dir(), wait=60):  # no background drainer meanwhile: one drain below loads the model once
        run_hook("UserPromptSubmit", payload("user_prompt_submit.json"))
        run_hook("PostToolUse", payload("post_tool_use_edit.json"))
        run_hook("PostToolUse", payload("post_tool_use_bash_failed.json"))
        fixed = json.loads((PAYLOADS / "post_tool_use_bash_failed.json").read_text())
        fixed["tool_response"] = {"stdout": "12 passed", "stderr": "", "interrupted": False}
        run_hook("PostToolUse", json.dumps(fixed).encode())
        run_hook("UserPromptSubmit", payload("user_prompt_submit.json", prompt="now also fix the backoff"))
        run_hook("Stop", payload("stop.json"))
        run_hook("Stop", payload("stop.json"))
        run_hook("PreCompact", payload("stop.json", hook_event_name="PreCompact", trigger="auto"))
        run_hook("SessionEnd", payload("session_end.json"))
    drain()  # each of the four last events writes the digest again

    [last] = digests(settings)  # replaced, not stacked
    text = last.text
    assert last.project == PROJECT and last.session_id == SESSION and last.source == f"session:{SESSION}"
    assert "ended (prompt_input_exit)" in text
    assert "Task: Fix the flaky reconnect test" in text and "Then asked: now also fix the backoff" in text
    assert "Files touched: /home/me/src/hivemind-app/tests/hub/test_sync.py" in text
    assert "pytest tests/hub -x" in text and "failed (" in text and "later succeeded" in text
    assert "hunter22" not in text and "ghp_" not in text  # redacted on the way in, and again on the way out

    start = payload("session_start.json", session_id="next-session", cwd=str(project))
    context = json.loads(run_hook("SessionStart", start))["hookSpecificOutput"]["additionalContext"]
    assert f"[{last.id[:12]}]" in context and "Fix the flaky reconnect test" in context


def test_after_compaction_a_session_gets_its_own_digest_back(fast_hive: Hive, project: Path) -> None:
    fast_hive.set_context(SESSION, {"current_task": "migrate the queue to streams", "context": {"project": PROJECT}})
    fast_hive.digest_session("older-session", "ended")  # nothing recorded: no digest
    fast_hive.set_context("older-session", {"current_task": "an older task", "context": {"project": PROJECT}})
    fast_hive.digest_session("older-session", "ended")
    own = fast_hive.digest_session(SESSION, "context compacted (auto)")
    assert own is not None
    data = payload("session_start.json", source="compact", cwd=str(project))
    context = json.loads(run_hook("SessionStart", data))["hookSpecificOutput"]["additionalContext"]
    assert f"[{own.memory.id[:12]}]" in context and "an older task" not in context


def test_the_llm_summary_replaces_the_digest(fast_hive: Hive) -> None:
    fast_hive.set_context("s1", {"current_task": "speed up the hooks", "context": {"project": PROJECT}})
    fast_hive.close_session("s1")
    digest = fast_hive.digest_session("s1", "ended")
    assert digest is not None and digest.memory.project == PROJECT
    [summary] = fast_hive.summarise_closed_sessions(idle_s=0)
    assert summary.memory.project == PROJECT and "speed up the hooks" in summary.memory.text
    assert fast_hive.get_memory(digest.memory.id).deleted
    assert fast_hive.digest_session("s1", "ended") is not None  # the session goes on: a new digest


def test_a_digest_of_a_huge_session_is_bounded(fast_hive: Hive) -> None:
    fast_hive.set_context("big", {"current_task": "x" * 5000, "files": [f"src/f{n}.py" for n in range(500)]})
    for n in range(300):
        fast_hive.add_to_learning_queue(
            {
                "user_query": "q",
                "tool_used": "Bash",
                "tool_input": json.dumps({"command": f"make t{n} " + "y" * 500}),
                "result": "boom",
                "success": n % 2 == 0,
                "session_id": "big",
            }
        )
    digest = fast_hive.digest_session("big", "ended")
    assert digest is not None and len(digest.memory.text) <= 1500 and "(+488 more)" in digest.memory.text


def test_stops_with_nothing_new_write_no_digest_no_tombstone_and_nothing_for_the_hub(fast_hive: Hive) -> None:
    fast_hive.set_context("quiet", {"current_task": "speed up the hooks", "context": {"project": PROJECT}})
    fast_hive.add_to_learning_queue(
        {
            "user_query": "q",
            "tool_used": "Bash",
            "tool_input": json.dumps({"command": "make bench"}),
            "result": "ok",
            "success": True,
            "session_id": "quiet",
        }
    )
    first = fast_hive.digest_session("quiet", "in progress (last reply finished)")
    assert first is not None
    counts, version = fast_hive.status().memories, fast_hive.get_memory(first.memory.id).version
    for _ in range(5):  # five replies, nothing done between them: the Stop hook's work each time
        fast_hive.close_session("quiet")
        again = fast_hive.digest_session("quiet", "in progress (last reply finished)")
        assert again is not None and again.memory.id == first.memory.id and not again.created
    assert fast_hive.status().memories == counts  # no new memory, no tombstone
    assert fast_hive.get_memory(first.memory.id).version == version  # not even a new version to push
    fast_hive.set_context("quiet", {"files": ["hooks.py"]})  # something new: one new digest, the old one gone
    changed = fast_hive.digest_session("quiet", "in progress (last reply finished)")
    assert changed is not None and changed.created and fast_hive.get_memory(first.memory.id).deleted
    assert [m.id for m in digests(fast_hive.settings)] == [changed.memory.id]
