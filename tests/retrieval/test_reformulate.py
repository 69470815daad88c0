"""`recall --reformulate`: the bundled SmolLM2 rewrites the query; the rewrite joins the ranking, never replaces it."""

from __future__ import annotations

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import clean_reformulation

NOTES = [
    "The staging Postgres database listens on port 5433, production on 5432",
    "Benchmarked torch.compile on the 4090: 1.8x over eager",
    "Nightly backups run at 02:00 on the NAS",
]


def test_a_reformulated_recall_reports_the_rewrite_and_keeps_the_right_memory_first(
    settings: Settings, embedder: Embedder
) -> None:
    settings.node.port = 0  # no local node to ask: the LLM is loaded in-process
    with Hive(settings, embedder=embedder) as hive:
        hive.store_memories([MemoryDraft(text) for text in NOTES])
        plain = hive.search_memory("which port does the pre-production database use", limit=3)
        rewritten = hive.search_memory("which port does the pre-production database use", limit=3, reformulate=True)
    assert plain.reformulated is None
    assert rewritten.reformulated and rewritten.reformulated != rewritten.query
    assert rewritten.hits[0].memory.text == NOTES[0]
    assert rewritten.to_dict()["reformulated"] == rewritten.reformulated


def test_model_chatter_is_trimmed_from_a_rewrite() -> None:
    assert clean_reformulation('Query: "postgres staging port"\nHope this helps!') == "postgres staging port"
    assert clean_reformulation("\n\n") == ""


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
        assert hive.get_context("sess-1")["closed_at"] is None
        hive.close_session("sess-1")
        again = hive.summarise_closed_sessions(idle_s=0)
        assert len(again) == 1 and "Task: now also fix the backoff" in again[0].memory.text
        summaries = hive.recent_memories(10, hive.make_filters(tags=["session-summary"]))
        assert [m.id for m in summaries] == [again[0].memory.id]
