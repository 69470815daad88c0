"""The seed's sessions (get_context / set_context) on a node without a hub, and the memories closed sessions
leave behind (services/sessions.py)."""

from __future__ import annotations

import time

import pytest

from hivemind_app.config import Settings
from hivemind_app.errors import InvalidInputError, NotFoundError
from hivemind_app.hive import Hive
from hivemind_app.ml.embedder import Embedder


def test_a_session_merges_updates_and_clears_locally(hive: Hive) -> None:
    assert hive.get_context("s1").updated_at is None
    hive.set_context("s1", {"current_task": "fix flaky sync test", "files": ["a.py"], "branch": "main"})
    ctx = hive.set_context("s1", {"files": ["b.py", "a.py"], "context": {"ticket": "HM-12"}})
    assert ctx.current_task == "fix flaky sync test"
    assert ctx.files == ("a.py", "b.py")
    assert ctx.context == {"branch": "main", "ticket": "HM-12"}
    hive.clear_session("s1")
    assert hive.get_context("s1").files == ()
    with pytest.raises(NotFoundError):
        hive.clear_session("s1")
    with pytest.raises(InvalidInputError, match="files must be a list"):
        hive.set_context("s2", {"files": "a.py"})


def test_secrets_are_redacted_before_a_session_is_stored(hive: Hive) -> None:
    context = hive.set_context(
        "s1",
        {
            "current_task": "rotate api_key=sk-live-abcdefghijklmnopqrstuvwx",
            "env": "DATABASE_URL=postgres://app:s3cr3tpass@db:5432/app",
        },
    )
    assert "sk-live" not in context.current_task and "s3cr3tpass" not in str(context.context)


@pytest.mark.slow  # ~27 s on 2 cores: loads the bundled SmolLM2 in-process for the summaries
def test_closed_sessions_become_summary_memories_once(settings: Settings, embedder: Embedder) -> None:
    settings.node.port = 0
    with Hive(settings, embedder=embedder) as hive:
        hive.set_context("sess-1", {"current_task": "fix the flaky reconnect test", "files": ["hub/sync.py"]})
        hive.add_to_learning_queue(
            {"user_query": "fix it", "tool_used": "Edit", "success": True, "session_id": "sess-1"}
        )
        hive.add_to_learning_queue(
            {"user_query": "fix it", "tool_used": "Bash", "success": False, "session_id": "sess-1"}
        )
        hive.set_context("sess-open", {"current_task": "still working"})
        assert hive.summarise_closed_sessions(idle_s=0) == []  # nothing closed yet
        hive.close_session("sess-1")
        assert hive.summarise_closed_sessions() == []  # closed, but not for ten minutes yet

        stored = hive.summarise_closed_sessions(idle_s=0)
        assert len(stored) == 1 and stored[0].created
        memory = stored[0].memory
        assert memory.tags == ("session-summary",) and memory.source == "session:sess-1"
        assert "Task: fix the flaky reconnect test" in memory.text
        assert "Files: hub/sync.py" in memory.text and "Tools: Bash, Edit (2 uses, 1 failed)" in memory.text
        assert hive.summarise_closed_sessions(idle_s=0) == []  # each closing once
        found = hive.search_memory("reconnect test session", filters=hive.make_filters(tags=["session-summary"]))
        assert found.hits[0].memory.id == memory.id

        # Claude Code closes a session after every reply: a later turn reopens it, and its next closing
        # replaces the summary instead of adding a second one.
        hive.set_context("sess-1", {"current_task": "now also fix the backoff", "files": ["hub/backoff.py"]})
        assert hive.get_context("sess-1").closed_at is None
        hive.close_session("sess-1")
        again = hive.summarise_closed_sessions(idle_s=0)
        assert len(again) == 1 and "Task: now also fix the backoff" in again[0].memory.text
        summaries = hive.recent_memories(10, hive.make_filters(tags=["session-summary"]))
        assert [m.id for m in summaries] == [again[0].memory.id]


def test_a_long_sessions_entries_are_its_newest_in_order(hive: Hive) -> None:
    for n in range(205):
        hive.add_to_learning_queue(
            {"user_query": f"step {n}", "tool_used": "Bash", "result": "ok", "success": True, "session_id": "long"}
        )
    entries = hive.parts.local.session_entries("long")
    assert [e.user_query for e in entries] == [f"step {n}" for n in range(5, 205)]  # how it ends, oldest first


def test_a_summary_made_days_after_its_session_closed_describes_the_time_the_session_closed(
    settings: Settings, embedder: Embedder
) -> None:
    settings.node.port = 0
    with Hive(settings, embedder=embedder) as hive:
        hive.set_context("sess-old", {"current_task": "bisect the memory leak in the exporter"})
        hive.close_session("sess-old")
        three_days_ago = time.time() - 3 * 86400  # this node was off since: it summarises only now
        with hive.parts.db.write() as conn:
            conn.execute("UPDATE sessions SET closed_at = ? WHERE session_id = 'sess-old'", (three_days_ago,))
        (stored,) = hive.summarise_closed_sessions(idle_s=0)
        assert stored.memory.occurred_at == three_days_ago
        assert stored.memory.created_at > three_days_ago + 2 * 86400
