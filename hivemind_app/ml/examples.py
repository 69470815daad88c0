"""From learning-queue entries to training examples: keep successes, drop duplicates, redact, split.

An example is the chat `<user_query> -> <tool_call> -> <result>` in the base model's chat template, with
the tool call written exactly as `LocalLLM.suggest_tool` asks the model to answer. The held-out split is a
hash of the query, so it is the same on every node and every round, and a query never lands on both sides.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hivemind_app.ml.tool_calls import TOOL_NAME, answer_text, messages_for, parse_tool_input
from hivemind_app.records.learning import QueueBatch, ToolUse
from hivemind_app.trust.redact import redact

MAX_QUERY_CHARS = 2000
RESULT_CHARS = 400


@dataclass
class Cleaned:
    """What `clean` kept, and why it left the rest out (shown in the round's report)."""

    kept: list[ToolUse] = field(default_factory=list)
    failures: int = 0
    duplicates: int = 0
    unusable: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "kept": len(self.kept),
            "failures": self.failures,
            "duplicates": self.duplicates,
            "unusable": self.unusable,
        }


def _success(value: object) -> bool:
    # Stream fields arrive as text: "1"/"0" from this app's own push, "true"/"false" from other writers.
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def clean(entries: Iterable[Mapping[str, Any]], seen: set[str] | None = None) -> Cleaned:
    """Successful tool uses with a query, a valid tool name, redacted, each (query, tool, arguments) once.

    `seen` holds the keys of examples kept by earlier rounds, so a repeated request does not count twice.
    """
    seen = set() if seen is None else seen
    out = Cleaned()
    for entry in entries:
        if not _success(entry.get("success", False)):
            out.failures += 1
            continue
        query = redact(str(entry.get("user_query", "")).strip())
        tool = str(entry.get("tool_used", "")).strip()
        if not query or len(query) > MAX_QUERY_CHARS or not TOOL_NAME.fullmatch(tool):
            out.unusable += 1
            continue
        try:
            timestamp = float(entry.get("timestamp") or 0.0)
        except ValueError:
            timestamp = 0.0
        use = ToolUse(
            query=query,
            tool=tool,
            arguments=parse_tool_input(redact(str(entry.get("tool_input", "")))),
            result=redact(str(entry.get("result", "")))[:RESULT_CHARS],
            timestamp=timestamp,
        )
        if use.key in seen:
            out.duplicates += 1
            continue
        seen.add(use.key)
        out.kept.append(use)
    return out


def is_held_out(use: ToolUse, fraction: float) -> bool:
    digest = hashlib.sha256(" ".join(use.query.lower().split()).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def split(uses: Sequence[ToolUse], fraction: float) -> tuple[list[ToolUse], list[ToolUse]]:
    """(train, held_out), the same on every run for the same queries."""
    train = [u for u in uses if not is_held_out(u, fraction)]
    held_out = [u for u in uses if is_held_out(u, fraction)]
    return train, held_out


def chat(use: ToolUse, tools: Sequence[str]) -> list[dict[str, str]]:
    """The full example: system prompt listing the tools, the query, the tool call, the tool's result."""
    return [
        *messages_for(use.query, tools),
        {"role": "assistant", "content": answer_text(use.tool, use.arguments)},
        {"role": "tool", "content": use.result},
    ]


def tool_menu(use: ToolUse, tools: Sequence[str], min_tools: int = 4) -> list[str]:
    """The tool list shown with one training example.

    Half the examples see every known tool in sorted order (as evaluation does); the other half see a
    shuffled subset that still contains the right tool, so the adapter learns to read the list rather
    than one fixed menu, since callers of `suggest_tool` offer their own lists.
    """
    rng = random.Random(use.key)
    if rng.random() < 0.5 or len(tools) <= min_tools:
        return sorted(tools)
    others = [t for t in tools if t != use.tool]
    menu = [use.tool, *rng.sample(others, rng.randint(min_tools - 1, len(others)))]
    rng.shuffle(menu)
    return menu


class LearningSource(Protocol):
    """Where a round's entries come from: the hub's stream (a consumer group) or the local queue table."""

    name: str

    def take(self, limit: int) -> QueueBatch: ...

    def ack(self, batch: QueueBatch) -> None: ...

    def backlog(self) -> int: ...
