"""The MCP server through the SDK's in-memory client: every tool, the confirmations, the bad input."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import mcp.types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from hivemind_app.claude.server import mcp
from hivemind_app.config import Settings
from hivemind_app.hive import Hive

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def live_count() -> int:
    with Hive(Settings()) as hive:
        return hive.status().memories.live


async def test_every_tool_is_listed_with_a_schema_and_a_description() -> None:
    async with Client(mcp) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        "memory_recall",
        "memory_store",
        "memory_context",
        "memory_clear",
        "tool_cache_get",
        "tool_cache_put",
        "suggest_tool",
        "memory_get",
        "memory_forget",
        "memory_update",
    }
    for tool in tools.values():
        assert tool.description and tool.input_schema["type"] == "object" and tool.output_schema
        assert tool.annotations is not None and tool.annotations.open_world_hint is False
    read_only = {name for name, tool in tools.items() if tool.annotations and tool.annotations.read_only_hint}
    destructive = {name for name, tool in tools.items() if tool.annotations and tool.annotations.destructive_hint}
    assert read_only == {"memory_recall", "memory_get", "tool_cache_get", "suggest_tool"}
    assert destructive == {"memory_clear", "memory_forget", "memory_update"}
    assert tools["memory_recall"].input_schema["properties"]["mode"]["enum"] == ["hybrid", "vector", "keyword"]


async def test_store_then_recall_by_meaning_and_by_keyword() -> None:
    async with Client(mcp) as client:
        stored = await client.call_tool(
            "memory_store", {"text": "The staging DB listens on port 5433", "tags": ["infra"]}
        )
        again = await client.call_tool("memory_store", {"text": "The staging DB listens on port 5433"})
        assert stored.structured_content["created"] is True and again.structured_content["created"] is False
        await client.call_tool("memory_store", {"text": "Nightly backups run at 02:00 on the NAS"})
        found = await client.call_tool("memory_recall", {"query": "which port is staging on?", "limit": 1})
        assert found.structured_content["results"][0]["text"] == "The staging DB listens on port 5433"
        assert found.structured_content["fallback"] is None
        keyword = await client.call_tool("memory_recall", {"query": "5433", "mode": "keyword", "tags": ["infra"]})
        assert [r["id"] for r in keyword.structured_content["results"]] == [stored.structured_content["id"]]


@pytest.mark.parametrize(
    ("tool", "arguments", "fragment"),
    [
        ("memory_recall", {"query": ""}, "empty"),
        ("memory_recall", {"query": "x", "limit": 0}, "from 1 to"),
        ("memory_recall", {"query": "x", "limit": 100000}, "from 1 to"),
        ("memory_recall", {"query": "x", "mode": "fuzzy"}, "fuzzy"),
        ("memory_recall", {"query": "x", "since": "someday"}, "not a time"),
        ("memory_store", {"text": "   "}, "empty"),
        ("memory_store", {"text": "x" * 1_100_000}, "over the limit"),
        ("memory_store", {"text": "nul\x00byte"}, "NUL"),
        ("memory_store", {"text": "ok", "tags": "infra"}, "tags"),
        ("memory_store", {"text": "ok", "tags": [f"t{n}" for n in range(10_000)]}, "10,000 tags given; at most 32"),
        ("memory_recall", {"query": "x", "tags": [f"t{n}" for n in range(33)]}, "33 tags given; at most 32"),
        ("memory_store", {"text": "ok", "occurred_at": "the day after tomorrow"}, "is not a time"),
        ("memory_store", {"text": "ok", "occurred_at": "99999999999999"}, "between 1970-01-01 and 9999-12-31"),
        ("suggest_tool", {"task": "x", "tools": [f"t{n}" for n in range(10_000)]}, "at most 64 are accepted"),
        ("memory_context", {"session_id": "s", "update": {"files": "a.py"}}, "files must be a list"),
        ("memory_clear", {"session_id": "nope", "confirm": "made-up"}, "unknown, expired"),
        ("tool_cache_put", {"tool": "grep", "inputs": "x", "output": "y", "ttl": -1}, "ttl"),
    ],
)
async def test_bad_input_is_a_clear_tool_error_and_writes_nothing(
    tool: str, arguments: dict[str, Any], fragment: str
) -> None:
    async with Client(mcp) as client:
        await client.call_tool("memory_store", {"text": "an existing memory"})
        result = await client.call_tool(tool, arguments)
        assert result.is_error
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        assert fragment in text, text
        still_up = await client.call_tool("memory_recall", {"query": "existing", "mode": "keyword"})
        assert not still_up.is_error
    assert live_count() == 1


async def test_secrets_are_redacted_from_a_stored_memory_and_the_result_says_so() -> None:
    async with Client(mcp) as client:
        stored = await client.call_tool(
            "memory_store", {"text": "staging redis is redis://:hunter22@10.0.0.5:6379/0, ask ops for access"}
        )
        plain = await client.call_tool("memory_store", {"text": "staging redis runs on the NAS"})
        found = await client.call_tool("memory_recall", {"query": "staging redis", "mode": "keyword"})
    assert stored.structured_content["redacted"] is True and plain.structured_content["redacted"] is False
    texts = [r["text"] for r in found.structured_content["results"]]
    assert "redis://:[REDACTED:url-password]@10.0.0.5:6379/0, ask ops for access" in " ".join(texts)
    assert not any("hunter22" in t for t in texts)


async def test_a_memory_stored_with_the_time_it_describes_is_found_by_a_question_naming_that_time() -> None:
    async with Client(mcp) as client:
        stored = await client.call_tool(
            "memory_store", {"text": "The billing database moved to Postgres 16", "occurred_at": "2025-05-14"}
        )
        await client.call_tool("memory_store", {"text": "The search cluster moved to OpenSearch"})
        in_seconds = await client.call_tool("memory_store", {"text": "The wiki moved", "occurred_at": 1736000000})
        assert not in_seconds.is_error
        memory_id = stored.structured_content["id"]
        got = await client.call_tool("memory_get", {"memory_id": memory_id})
        found = await client.call_tool("memory_recall", {"query": "what moved in May 2025", "mode": "keyword"})
    assert got.structured_content["occurred_at"] == datetime(2025, 5, 14).astimezone().timestamp()
    assert found.structured_content["results"][0]["id"] == memory_id


async def test_context_is_read_and_merged() -> None:
    async with Client(mcp) as client:
        empty = await client.call_tool("memory_context", {"session_id": "s1"})
        assert empty.structured_content["files"] == [] and empty.structured_content["timestamp"] is None
        await client.call_tool("memory_context", {"session_id": "s1", "update": {"current_task": "fix sync"}})
        merged = await client.call_tool("memory_context", {"session_id": "s1", "update": {"files": ["a.py"]}})
        assert merged.structured_content["current_task"] == "fix sync"
        assert merged.structured_content["files"] == ["a.py"]
        latest = await client.call_tool("memory_context", {})
        assert latest.structured_content["session_id"] == "s1"


async def test_clearing_without_elicitation_needs_the_token_from_a_first_call() -> None:
    async with Client(mcp) as client:
        await client.call_tool("memory_context", {"session_id": "s1", "update": {"current_task": "keep me"}})
        first = await client.call_tool("memory_clear", {"session_id": "s1"})
        assert first.structured_content["cleared"] is False
        token = first.structured_content["confirmation_token"]
        kept = await client.call_tool("memory_context", {"session_id": "s1"})
        assert kept.structured_content["current_task"] == "keep me"
        wrong_session = await client.call_tool("memory_clear", {"session_id": "other", "confirm": token})
        assert wrong_session.is_error
        done = await client.call_tool("memory_clear", {"session_id": "s1", "confirm": token})
        assert done.structured_content["cleared"] is True
        reused = await client.call_tool("memory_clear", {"session_id": "s1", "confirm": token})
        assert reused.is_error
        gone = await client.call_tool("memory_context", {"session_id": "s1"})
        assert gone.structured_content["current_task"] == ""


@pytest.mark.parametrize(("answer", "cleared"), [(True, True), (False, False)])
async def test_clearing_asks_through_elicitation_when_the_client_supports_it(answer: bool, cleared: bool) -> None:
    asked: list[str] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": answer})

    async with Client(mcp, elicitation_callback=elicit) as client:
        await client.call_tool("memory_context", {"session_id": "s9", "update": {"current_task": "t"}})
        result = await client.call_tool("memory_clear", {"session_id": "s9"})
        assert result.structured_content["cleared"] is cleared
        assert result.structured_content["confirmation_token"] is None
        task = (await client.call_tool("memory_context", {"session_id": "s9"})).structured_content["current_task"]
    assert asked and "s9" in asked[0]
    assert task == ("" if cleared else "t")


async def test_the_current_session_resource_is_the_latest_session_as_json() -> None:
    async with Client(mcp) as client:
        await client.call_tool("memory_context", {"session_id": "s1", "update": {"current_task": "fix sync"}})
        await client.call_tool("memory_context", {"session_id": "s2", "update": {"files": ["a.py"]}})
        read = await client.read_resource("hivemind://session/current")
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    latest = json.loads(content.text)
    assert list(latest) == ["session_id", "timestamp", "context", "files", "current_task", "version", "closed_at"]
    assert (latest["session_id"], latest["files"], latest["current_task"]) == ("s2", ["a.py"], "")


async def test_tool_cache_round_trip() -> None:
    async with Client(mcp) as client:
        miss = await client.call_tool("tool_cache_get", {"tool": "grep", "inputs": '{"q": "TODO"}'})
        assert miss.structured_content == {"hit": False, "output": None}
        await client.call_tool("tool_cache_put", {"tool": "grep", "inputs": '{"q": "TODO"}', "output": "3 matches"})
        hit = await client.call_tool("tool_cache_get", {"tool": "grep", "inputs": '{"q": "TODO"}'})
        assert hit.structured_content == {"hit": True, "output": "3 matches"}


async def test_suggest_tool_answers_with_one_of_the_given_tools(settings: Settings) -> None:
    settings.node.port = 0
    tools = ["git_diff", "git_log", "run_tests"]
    async with Client(mcp) as client:
        answer = await client.call_tool(
            "suggest_tool", {"task": "show me what changed in the last commit", "tools": tools}
        )
        assert not answer.is_error, answer.content
        assert answer.structured_content["tool"] in tools
        assert isinstance(answer.structured_content["arguments"], dict)
        empty = await client.call_tool("suggest_tool", {"task": "x", "tools": []})
        assert empty.is_error


async def test_recent_memories_and_the_current_session_are_resources() -> None:
    async with Client(mcp) as client:
        await client.call_tool("memory_store", {"text": "Use ruff, not flake8"})
        await client.call_tool("memory_context", {"session_id": "s2", "update": {"current_task": "lint"}})
        recent = await client.read_resource("hivemind://memories/recent")
        session = await client.read_resource("hivemind://session/current")
    assert "Use ruff, not flake8" in recent.contents[0].text  # type: ignore[union-attr]
    assert '"current_task": "lint"' in session.contents[0].text  # type: ignore[union-attr]


_junk = st.one_of(
    st.text(max_size=300),
    st.integers(),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=20), max_size=4),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
    st.binary(max_size=50).map(lambda b: b.decode("latin-1")),
)
_TOOL_ARGS = {
    "memory_recall": ["query", "limit", "mode", "session_id", "tags", "since"],
    "memory_store": ["text", "tags", "source", "session_id"],
    "memory_context": ["session_id", "update"],
    "memory_clear": ["session_id", "confirm"],
    "tool_cache_get": ["tool", "inputs"],
    "tool_cache_put": ["tool", "inputs", "output", "ttl"],
    "memory_get": ["memory_id"],
    "memory_forget": ["memory_id"],
}  # suggest_tool is left out: each call runs the LLM, too slow for many examples


def fingerprint(tool: str, arguments: dict[str, Any]) -> tuple[Any, ...]:
    """Everything a tool call could write: memories, sessions, the learning queue, this call's cache entry."""
    with Hive(Settings()) as hive:
        status = hive.status()
        sessions = hive.list_sessions()
        cached = None
        if tool.startswith("tool_cache") and isinstance(arguments.get("tool"), str):
            try:
                cached = hive.get_tool_cache(arguments["tool"], arguments.get("inputs"))  # type: ignore[arg-type]
            except Exception:  # inputs the facade refuses cannot have been cached either
                cached = "refused"
        return (status.memories.live, status.learning_queue, repr(sessions), cached)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_arguments_never_crash_the_server_or_half_write(data: st.DataObject) -> None:
    import anyio

    tool = data.draw(st.sampled_from(sorted(_TOOL_ARGS)))
    names = data.draw(st.lists(st.sampled_from(_TOOL_ARGS[tool]), unique=True, max_size=len(_TOOL_ARGS[tool])))
    arguments = {name: data.draw(_junk) for name in names}

    async def call() -> None:
        async with Client(mcp) as client:
            before = fingerprint(tool, arguments)
            result = await client.call_tool(tool, arguments)
            after_call = fingerprint(tool, arguments)
            still_up = await client.call_tool("memory_recall", {"query": "anything", "mode": "keyword"})
            assert not still_up.is_error  # the server is still up
            if result.is_error:
                assert after_call == before, f"{tool}({arguments!r}) failed but wrote something"
            else:
                assert result.structured_content is not None

    with Hive(Settings()) as hive:  # every example starts from an empty store
        for memory in hive.recent_memories(1000):
            hive.delete_memory(memory.id)
        for session in hive.list_sessions():
            hive.clear_session(session.session_id)
    anyio.run(call)


async def test_a_memory_is_read_by_id_and_forgotten_everywhere_it_was_found() -> None:
    async with Client(mcp) as client:
        stored = await client.call_tool("memory_store", {"text": "The old staging DB port was 5432", "tags": ["infra"]})
        memory_id = stored.structured_content["id"]
        got = await client.call_tool("memory_get", {"memory_id": memory_id[:8]})
        assert got.structured_content["text"] == "The old staging DB port was 5432"
        assert got.structured_content["tags"] == ["infra"] and got.structured_content["deleted"] is False

        forgot = await client.call_tool("memory_forget", {"memory_id": memory_id})
        assert forgot.structured_content == {"id": memory_id, "forgotten": True}
        found = await client.call_tool("memory_recall", {"query": "5432", "mode": "keyword"})
        assert found.structured_content["results"] == []
        assert (await client.call_tool("memory_get", {"memory_id": memory_id})).structured_content["deleted"]

        unknown = await client.call_tool("memory_get", {"memory_id": "ffffffff"})
        assert unknown.is_error


async def test_recall_defaults_to_the_project_claude_code_runs_in(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    repos = {}
    for name in ("alpha", "beta"):
        repos[name] = tmp_path / name
        subprocess.run(["git", "init", "-q", str(repos[name])], check=True)
        subprocess.run(
            ["git", "-C", str(repos[name]), "remote", "add", "origin", f"git@example.com:me/{name}"], check=True
        )
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(repos["alpha"]))
    async with Client(mcp) as client:
        mine = await client.call_tool("memory_store", {"text": "alpha's broker is on port 7001"})
        await client.call_tool("memory_store", {"text": "every broker port is below 8000", "all_projects": True})
    monkeypatch.setenv("CLAUDE_PROJECT_DIR", str(repos["beta"]))
    async with Client(mcp) as client:
        await client.call_tool("memory_store", {"text": "beta's broker is on port 7002"})
        here = await client.call_tool("memory_recall", {"query": "broker port", "mode": "keyword"})
        assert {r["text"] for r in here.structured_content["results"]} == {
            "beta's broker is on port 7002",
            "every broker port is below 8000",
        }
        asked = await client.call_tool(
            "memory_recall", {"query": "broker port", "mode": "keyword", "project": "example.com/me/alpha"}
        )
        assert "alpha's broker is on port 7001" in {r["text"] for r in asked.structured_content["results"]}
        every = await client.call_tool("memory_recall", {"query": "broker", "mode": "keyword", "all_projects": True})
        assert len(every.structured_content["results"]) == 3
        got = await client.call_tool("memory_get", {"memory_id": mine.structured_content["id"]})
        assert got.structured_content["project"] == "example.com/me/alpha"


async def test_updating_a_fact_replaces_it_instead_of_stacking_a_contradiction() -> None:
    async with Client(mcp) as client:
        old = await client.call_tool(
            "memory_store", {"text": "The staging DB listens on port 5433", "tags": ["infra"], "source": "docs/db.md"}
        )
        old_id = old.structured_content["id"]
        new = await client.call_tool(
            "memory_update", {"memory_id": old_id[:8], "text": "The staging DB listens on port 6543", "tags": ["db"]}
        )
        assert new.structured_content["replaced"] == old_id and new.structured_content["id"] != old_id
        found = await client.call_tool("memory_recall", {"query": "staging DB port", "mode": "keyword"})
        assert [r["text"] for r in found.structured_content["results"]] == ["The staging DB listens on port 6543"]
        got = await client.call_tool("memory_get", {"memory_id": new.structured_content["id"]})
        assert got.structured_content["sources"] == ["docs/db.md", f"supersedes:{old_id}"]  # where it came from kept
        assert got.structured_content["tags"] == ["db", "infra"]
        gone = await client.call_tool("memory_get", {"memory_id": old_id})
        assert gone.structured_content["deleted"] is True
        again = await client.call_tool("memory_update", {"memory_id": old_id, "text": "port 7000"})
        assert again.is_error and "deleted" in str(again.content[0])
        token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB"
        secret = await client.call_tool(
            "memory_update", {"memory_id": new.structured_content["id"], "text": f"staging token {token}"}
        )
        assert secret.structured_content["redacted"] is True
        stored = await client.call_tool("memory_get", {"memory_id": secret.structured_content["id"]})
        assert token not in stored.structured_content["text"]
    assert live_count() == 1


async def test_the_server_files_its_calls_under_the_claude_code_session_it_serves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hivemind_app.claude.inject import seen

    monkeypatch.setenv("CLAUDE_CODE_SESSION_ID", "cc-session-1")
    with Hive(Settings()) as hive:
        hive.set_context("cc-session-1", {"current_task": "from the hooks"})
        hive.set_context("a-later-session", {"current_task": "another window"})
    async with Client(mcp) as client:
        stored = await client.call_tool("memory_store", {"text": "remember: the NAS is nas.lab"})
        context = await client.call_tool("memory_context", {})
    assert context.structured_content["current_task"] == "from the hooks"
    with Hive(Settings()) as hive:
        assert hive.get_memory(stored.structured_content["id"]).session_id == "cc-session-1"
    assert stored.structured_content["id"] in seen("cc-session-1")  # the hooks will not inject it back
