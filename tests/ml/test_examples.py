"""From learning-queue entries to training examples: what is kept, what is dropped, how the split falls."""

from __future__ import annotations

import json

from hivemind_app.ml.examples import chat, clean, split, tool_menu
from hivemind_app.ml.tool_calls import answer_text, expressible_arguments, parse_tool_input
from tests.support.tool_uses import TOOLS, shuffled_labels, tool_uses


def entry(query: str, tool: str = "git_diff", tool_input: object = None, success: object = True) -> dict[str, object]:
    return {
        "user_query": query,
        "tool_used": tool,
        "tool_input": json.dumps(tool_input if tool_input is not None else {"rev": "HEAD~1"}),
        "result": "ok",
        "success": success,
        "timestamp": 1.0,
    }


def test_failed_tool_uses_are_dropped_whatever_form_success_takes() -> None:
    cleaned = clean([entry("a", success=False), entry("b", success="0"), entry("c", success="false"), entry("d")])
    assert [u.query for u in cleaned.kept] == ["d"]
    assert cleaned.failures == 3


def test_stream_text_success_values_count_as_success() -> None:
    cleaned = clean([entry("one", success="1"), entry("two", success="true")])
    assert len(cleaned.kept) == 2 and cleaned.failures == 0


def test_the_same_request_answered_the_same_way_is_kept_once_even_across_rounds() -> None:
    first = clean([entry("Show me the last commit"), entry("show me  the LAST commit")])
    assert len(first.kept) == 1 and first.duplicates == 1
    again = clean([entry("show me the last commit")], seen={u.key for u in first.kept})
    assert again.kept == [] and again.duplicates == 1


def test_a_different_answer_to_the_same_request_is_a_different_example() -> None:
    cleaned = clean([entry("diff it", tool_input={"rev": "HEAD~1"}), entry("diff it", tool_input={"rev": "HEAD~2"})])
    assert len(cleaned.kept) == 2


def test_secrets_in_queries_inputs_and_results_are_redacted() -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    raw = entry(f"push with {token}", tool="http_get", tool_input={"url": f"http://x/?t={token}"})
    raw["result"] = f"authenticated as {token}"
    use = clean([raw]).kept[0]
    assert token not in use.query and token not in use.result and token not in json.dumps(use.arguments)
    assert "[REDACTED" in use.query


def test_entries_without_a_query_or_with_an_invalid_tool_name_are_unusable() -> None:
    cleaned = clean([entry("   "), entry("fine", tool="rm -rf /"), entry("x" * 5000), entry("ok")])
    assert cleaned.unusable == 3 and len(cleaned.kept) == 1


def test_arguments_the_grammar_cannot_express_are_dropped_not_clipped() -> None:
    kept = expressible_arguments(
        {"path": "src/app.py", "content": "x" * 500, "nested": {"a": 1}, "ratio": 0.5, "neg": -1, "quote": 'a"b'}
    )
    assert kept == {"path": "src/app.py"}
    assert expressible_arguments({"a": 1, "b": True, "c": "x", "d": "y"}) == {"a": 1, "b": True, "c": "x"}
    assert parse_tool_input("git status") == {"input": "git status"}
    assert parse_tool_input("{not json") == {"input": "{not json"}
    assert parse_tool_input("") == {}


def test_the_answer_is_written_as_the_inference_grammar_spells_it() -> None:
    assert answer_text("git_diff", {"rev": "HEAD~1"}) == '{"tool": "git_diff", "arguments": {"rev": "HEAD~1"}}'
    assert answer_text("open", {"path": "café.md"}) == '{"tool": "open", "arguments": {"path": "café.md"}}'


def test_a_chat_example_is_query_then_tool_call_then_result() -> None:
    use = clean([entry("show me what changed in the last commit")]).kept[0]
    messages = chat(use, ["git_diff", "git_log"])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert "git_diff, git_log" in messages[0]["content"]
    assert json.loads(messages[2]["content"]) == {"tool": "git_diff", "arguments": {"rev": "HEAD~1"}}


def test_the_held_out_split_is_deterministic_disjoint_and_never_splits_one_query() -> None:
    uses = clean(tool_uses(400, seed=3)).kept
    train, held_out = split(uses, 0.2)
    assert {u.key for u in train}.isdisjoint({u.key for u in held_out})
    assert {u.query.lower() for u in train}.isdisjoint({u.query.lower() for u in held_out})
    assert 0.1 < len(held_out) / len(uses) < 0.3
    _, reversed_held = split(list(reversed(uses)), 0.2)
    assert {u.key for u in reversed_held} == {u.key for u in held_out}


def test_every_tool_menu_contains_the_right_tool() -> None:
    uses = clean(tool_uses(200, seed=1)).kept
    tools = sorted(TOOLS)
    menus = [tool_menu(u, tools) for u in uses]
    assert all(u.tool in menu for u, menu in zip(uses, menus, strict=True))
    assert any(menu == tools for menu in menus) and any(menu != tools for menu in menus)


def test_shuffled_labels_keep_the_requests_and_the_label_counts() -> None:
    entries = tool_uses(120, seed=0)
    shuffled = shuffled_labels(entries)
    assert [e["user_query"] for e in shuffled] == [e["user_query"] for e in entries]
    assert sorted(e["tool_used"] for e in shuffled) == sorted(e["tool_used"] for e in entries)
    assert sum(a["tool_used"] != b["tool_used"] for a, b in zip(entries, shuffled, strict=True)) > 80
