"""The seed's learning queue and tool-output cache on a node without a hub (services/queue.py)."""

from __future__ import annotations

import time

import pytest

from hivemind_app.errors import InvalidInputError
from hivemind_app.hive import Hive
from tests.support import on_disk


def test_the_learning_queue_keeps_checked_interactions_locally(hive: Hive) -> None:
    entry = hive.add_to_learning_queue(
        {
            "user_query": "show last commit",
            "tool_used": "git_diff",
            "tool_input": {"rev": "HEAD~1"},
            "result": "diff --git",
            "success": True,
        }
    )
    assert entry >= 1
    assert on_disk.learning_entries(hive.settings.db_path)[0]["tool_input"] == '{"rev": "HEAD~1"}'
    with pytest.raises(InvalidInputError, match="tool_used"):
        hive.add_to_learning_queue({"user_query": "x"})
    with pytest.raises(InvalidInputError, match="success"):
        hive.add_to_learning_queue({"tool_used": "t", "success": "yes"})


def test_the_tool_cache_answers_until_its_ttl_runs_out(hive: Hive) -> None:
    assert hive.get_tool_cache("grep", '{"q": "x"}') is None
    hive.set_tool_cache("grep", '{"q": "x"}', "3 matches")
    assert hive.get_tool_cache("grep", '{"q": "x"}') == "3 matches"
    hive.set_tool_cache("grep", '{"q": "y"}', "gone soon", ttl_s=0.05)
    time.sleep(0.1)
    assert hive.get_tool_cache("grep", '{"q": "y"}') is None


def test_secrets_are_redacted_before_an_interaction_is_queued(hive: Hive) -> None:
    hive.add_to_learning_queue(
        {
            "user_query": "deploy with password=hunter2hunter2",
            "tool_used": "Bash",
            "tool_input": {"command": "curl -H 'Authorization: Bearer abcdefghijklmnop1234'"},
            "result": "ok",
            "success": True,
        }
    )
    entry = on_disk.learning_entries(hive.settings.db_path)[0]
    assert "hunter2" not in entry["user_query"] and "abcdefghijklmnop1234" not in entry["tool_input"]
