"""The verdict: publish only a clear, real gain over the active adapter and over naming the commonest tool."""

from __future__ import annotations

from hivemind_app.ml.evaluate import Scores, judge, majority_accuracy, score, sign_test
from hivemind_app.records.learning import ToolUse


def scores(correct: str) -> Scores:
    flags = [c == "1" for c in correct]
    return Scores(flags, flags)


def test_the_sign_test_gives_exact_binomial_tail_probabilities() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(1, 0) == 0.5
    assert sign_test(5, 0) == 1 / 32
    assert abs(sign_test(8, 2) - 56 / 1024) < 1e-12


def test_a_large_consistent_gain_is_promoted() -> None:
    verdict = judge(scores("0" * 30 + "1" * 10), scores("1" * 38 + "00"), majority=0.1, margin=0.05, significance=0.05)
    assert verdict.promote and verdict.p_value < 1e-6


def test_a_gain_below_the_margin_is_rejected() -> None:
    verdict = judge(
        scores("1" * 20 + "0" * 20), scores("1" * 21 + "0" * 19), majority=0.1, margin=0.05, significance=0.05
    )
    assert not verdict.promote and "not 5% above" in verdict.reason


def test_a_model_no_better_than_always_naming_the_commonest_tool_is_rejected() -> None:
    verdict = judge(scores("0" * 40), scores("1" * 12 + "0" * 28), majority=0.28, margin=0.05, significance=0.05)
    assert not verdict.promote and "commonest tool" in verdict.reason


def test_a_gain_that_could_be_luck_is_rejected() -> None:
    # 3 wins, 0 losses on 10 examples: 30 points better, but p = 1/8
    verdict = judge(scores("0000000000"), scores("1110000000"), majority=0.0, margin=0.05, significance=0.05)
    assert not verdict.promote and "luck" in verdict.reason


def test_majority_accuracy_is_measured_on_held_out_with_the_training_majority() -> None:
    def use(tool: str) -> ToolUse:
        return ToolUse(tool, tool, {}, "", 0.0)

    assert majority_accuracy([use("a"), use("a"), use("b")], [use("a"), use("b"), use("b"), use("c")]) == 0.25
    assert majority_accuracy([], [use("a")]) == 0.0


def test_score_counts_tool_names_and_exact_arguments_separately() -> None:
    held = [ToolUse("q1", "git_diff", {"rev": "HEAD~1"}, "", 0), ToolUse("q2", "git_log", {"limit": 5}, "", 0)]
    answers = {
        "q1": {"tool": "git_diff", "arguments": {"rev": "HEAD~2"}},
        "q2": {"tool": "git_log", "arguments": {"limit": 5}},
    }
    seen: list[tuple[int, int]] = []
    result = score(lambda q, tools: answers[q], held, ["git_diff", "git_log"], lambda d, t: seen.append((d, t)))
    assert result.accuracy == 1.0 and result.exact_match == 0.5
    assert seen == [(1, 2), (2, 2)]
