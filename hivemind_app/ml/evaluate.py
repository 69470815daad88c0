"""Judging an adapter: greedy tool suggestions on held-out examples through llama.cpp, and the verdict.

The served model is what is judged: the GGUF base with the GGUF adapter, decoded greedily under the same
grammar and prompt as `suggest_tool`. A new adapter is published only if it beats the active one (or the
base) by the configured margin, beats always answering the most common tool by that margin too, and a
sign test over the examples where the two disagree says the gain is unlikely to be luck. So a round
trained on noise, which at best learns the label frequencies, is rejected.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hivemind_app.records.learning import ToolUse


@dataclass(frozen=True)
class Scores:
    tool_correct: list[bool]
    exact_correct: list[bool]

    @property
    def accuracy(self) -> float:
        return sum(self.tool_correct) / len(self.tool_correct) if self.tool_correct else 0.0

    @property
    def exact_match(self) -> float:
        return sum(self.exact_correct) / len(self.exact_correct) if self.exact_correct else 0.0


def score(
    suggest: Callable[[str, list[str]], dict[str, Any]],
    held_out: Sequence[ToolUse],
    tools: list[str],
    progress: Callable[[int, int], None] | None = None,
) -> Scores:
    """Tool-name accuracy and exact match (tool and arguments) of `suggest` on `held_out`."""
    tool_ok, exact_ok = [], []
    for done, use in enumerate(held_out, 1):
        answer = suggest(use.query, tools)
        tool_ok.append(answer.get("tool") == use.tool)
        exact_ok.append(tool_ok[-1] and answer.get("arguments") == use.arguments)
        if progress is not None:
            progress(done, len(held_out))
    return Scores(tool_ok, exact_ok)


def majority_accuracy(train: Sequence[ToolUse], held_out: Sequence[ToolUse]) -> float:
    """Held-out accuracy of always answering the tool most common in training."""
    if not train or not held_out:
        return 0.0
    common = Counter(u.tool for u in train).most_common(1)[0][0]
    return sum(u.tool == common for u in held_out) / len(held_out)


def sign_test(wins: int, losses: int) -> float:
    """One-sided p-value that `wins` of `wins + losses` discordant examples going the new model's way is luck."""
    n = wins + losses
    if n == 0:
        return 1.0
    return float(sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n)


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    p_value: float


def judge(reference: Scores, new: Scores, majority: float, margin: float, significance: float) -> Verdict:
    wins = sum(n and not r for n, r in zip(new.tool_correct, reference.tool_correct, strict=True))
    losses = sum(r and not n for n, r in zip(new.tool_correct, reference.tool_correct, strict=True))
    p_value = sign_test(wins, losses)
    gain = new.accuracy - reference.accuracy
    if gain < margin:
        return Verdict(
            False, f"tool accuracy {new.accuracy:.0%} is not {margin:.0%} above {reference.accuracy:.0%}", p_value
        )
    if new.accuracy < majority + margin:
        return Verdict(
            False,
            f"tool accuracy {new.accuracy:.0%} barely beats always naming the commonest tool ({majority:.0%})",
            p_value,
        )
    if p_value > significance:
        return Verdict(False, f"the gain could be luck (sign test p={p_value:.3f} > {significance})", p_value)
    return Verdict(True, f"tool accuracy {reference.accuracy:.0%} -> {new.accuracy:.0%} (p={p_value:.2g})", p_value)
