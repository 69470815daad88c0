"""Second-stage re-scoring (retrieval/rescore.py, `search.rescore`): the head of the fused ranking re-ordered by
a finer similarity; the tail, the set of hits and (switched off) the ranking itself left as they were."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.retrieval.candidates import Fused, Generator
from hivemind_app.retrieval.query import analyse
from hivemind_app.retrieval.rescore import HeadRescorer, TokenMaxSim, blend, configured_rescorers
from tests.retrieval.test_search_quality import IDENTIFIERS, NOTES, PARAPHRASES
from tests.retrieval.test_when import store_at


def ranked(fused: list[Fused]) -> list[int]:
    return [f.rowid for f in fused]


def test_the_blend_reorders_only_the_head_and_keeps_every_hit() -> None:
    fused = [Fused(1, 0.8, {Generator.VECTOR: 1}), Fused(2, 0.6), Fused(3, 0.4), Fused(4, 0.39), Fused(5, 0.1)]
    out = blend(fused, {3: 1.0, 1: 0.0, 2: 0.0}, depth=3, weight=0.5)
    assert ranked(out) == [3, 1, 2, 4, 5]  # 3 rose inside the head; 4 and 5 stay below it, in their order
    assert out[0].score == pytest.approx(0.5 * 0.4 / 0.8 + 0.5 * 1.0)
    assert out[1].ranks == {Generator.VECTOR: 1}  # where each generator ranked it survives
    assert out[3:] == fused[3:]


def test_weight_zero_gives_the_fused_order_and_a_hit_the_scorer_missed_counts_zero() -> None:
    fused = [Fused(7, 0.9), Fused(3, 0.5), Fused(9, 0.5)]
    assert ranked(blend(fused, {9: 1.0}, depth=10, weight=0.0)) == [7, 3, 9]
    assert ranked(blend(fused, {9: 1.0}, depth=10, weight=1.0)) == [9, 3, 7]  # 3 and 7 tie at 0: by rowid


def test_a_head_with_no_positive_score_is_left_as_it_was() -> None:
    fused = [Fused(1, 0.0), Fused(2, 0.0)]
    assert blend(fused, {2: 1.0}, depth=2, weight=0.5) == fused


@pytest.fixture
def notes(hive: Hive) -> dict[str, str]:
    stored = hive.store_memories([MemoryDraft(text, tags=[key]) for key, text in NOTES.items()])
    return {key: s.memory.id for key, s in zip(NOTES, stored, strict=True)}


def hits(settings: Settings, embedder: Embedder, query: str, limit: int = 10) -> list[tuple[str, float]]:
    with Hive(settings, embedder=embedder) as hive:
        return [(h.memory.id, h.score) for h in hive.search_memory(query, limit=limit).hits]


@pytest.mark.ranking
@pytest.mark.parametrize(("query", "expected"), PARAPHRASES + IDENTIFIERS)
def test_with_maxsim_on_the_right_note_still_ranks_first(
    settings: Settings, embedder: Embedder, notes: dict[str, str], query: str, expected: str
) -> None:
    settings.search.rescore = "maxsim"
    found = hits(settings, embedder, query, limit=5)
    assert found[0][0] == notes[expected], found


@pytest.mark.ranking
def test_switching_maxsim_off_gives_the_previous_ranking_and_on_changes_the_scores(
    settings: Settings, embedder: Embedder, notes: dict[str, str]
) -> None:
    query = PARAPHRASES[0][0]
    settings.search.rescore = "off"
    off = hits(settings, embedder, query)
    with Hive(settings, embedder=embedder) as hive:
        retrieval = hive.parts.retrieval
        assert retrieval.rescorers == []
        # the ranking before the stage existed: the generators and fusion alone
        analysed = analyse(query, 10, "hybrid", None, False, settings.search, settings.store.max_text_bytes)
        fused = retrieval._fuse(analysed, retrieval._generate(analysed)[0])[:10]
        loaded = hive.parts.store.get_many(f.rowid for f in fused)
        plain = [(loaded[f.rowid].id, f.score) for f in fused]
    assert off == plain
    settings.search.rescore = "maxsim"
    on = hits(settings, embedder, query)
    assert sorted(i for i, _ in on) == sorted(i for i, _ in off)  # the same hits, none added or dropped
    assert [s for _, s in on] != [s for _, s in off]


@pytest.mark.ranking
def test_at_full_weight_the_head_is_ordered_by_token_similarity(
    settings: Settings, embedder: Embedder, notes: dict[str, str]
) -> None:
    query = "which port does the pre-production database use"
    settings.search.rescore = "maxsim"
    settings.search.rescore_weight = 1.0
    settings.search.rescore_depth = 5
    with Hive(settings, embedder=embedder) as hive:
        found = hive.search_memory(query, limit=8).hits
        scorer = TokenMaxSim(settings, lambda: "all-MiniLM-L6-v2")
        direct = scorer.score(query, [h.memory.text for h in found[:5]])
    assert [h.score for h in found[:5]] == pytest.approx(sorted(direct, reverse=True))
    assert all(0.0 < value <= 1.0 for value in direct)
    assert found[0].memory.id == notes["staging"]  # its tokens (port, database) match the question's best


def test_a_splade_model_that_is_not_there_leaves_the_fused_order_and_says_which_setting_to_fix(
    settings: Settings, embedder: Embedder, notes: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    query = "redis appendfsync"
    settings.search.rescore = "off"
    off = hits(settings, embedder, query)
    settings.search.rescore = "splade"
    settings.search.rescore_model = str(tmp_path / "no-such-model")
    with caplog.at_level(logging.WARNING, logger="hivemind_app.retrieval.rescore"):
        on = hits(settings, embedder, query)
    assert on == off
    assert "search.rescore_model" in caplog.text


def test_a_splade_directory_without_a_model_names_the_directory(
    settings: Settings, embedder: Embedder, notes: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "config.json").write_text("{not json")
    settings.search.rescore = "splade"
    settings.search.rescore_model = str(tmp_path)
    with Hive(settings, embedder=embedder) as hive, caplog.at_level(logging.WARNING):
        first = hive.search_memory("docker compose", limit=3).hits
        again = hive.search_memory("docker compose", limit=3).hits
    assert first[0].memory.id == notes["docker"] == again[0].memory.id
    assert str(tmp_path) in caplog.text
    assert caplog.text.count("re-scoring (search.rescore) is off") == 1  # said once, not on every search


def test_the_rescorer_is_built_only_when_the_setting_names_one(settings: Settings, hive: Hive) -> None:
    store = hive.parts.store
    settings.search.rescore = "off"
    assert configured_rescorers(settings, store, lambda: "m") == []
    settings.search.rescore = "maxsim"
    [stage] = configured_rescorers(settings, store, lambda: "m")
    assert isinstance(stage, HeadRescorer) and isinstance(stage.scorer, TokenMaxSim)


class LastFirst:
    """A stand-in second stage (this test is about where the pipeline runs it, not about a scorer): reverses."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []

    def rescore(self, query: object, fused: list[Fused]) -> list[Fused]:
        self.seen.append([f.rowid for f in fused])
        return list(reversed(fused))


@pytest.fixture
def deploys(hive: Hive, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Three deploys: 40 days ago, yesterday (an hour before midnight), and now."""
    now = time.time()
    midnight = datetime.fromtimestamp(now).astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    texts = {
        "old": ("Deploy of the API went out with the new rate limiter", now - 40 * 86400),
        "yesterday": ("Deploy of the worker pool, after the queue fix", midnight.timestamp() - 3600),
        "today": ("Deploy of the dashboard rolled back, the CSS bundle was stale", now - 1),
    }
    for text, moment in texts.values():
        store_at(hive, moment, text, monkeypatch)
    return {key: text for key, (text, _) in texts.items()}


def test_the_second_stage_runs_before_the_time_boost_which_still_puts_the_window_first(
    hive: Hive, deploys: dict[str, str]
) -> None:
    def texts(query: str) -> list[str]:
        return [h.memory.text for h in hive.search_memory(query, mode="keyword").hits]

    fused = texts("deploy")
    stage = LastFirst()
    hive.parts.retrieval.rescorers = [stage]
    staged = texts("deploy")
    assert staged == list(reversed(fused)) and len(staged) == 3
    boosted = texts("deploy yesterday")  # the window's deploy first, then the others in the stage's order
    assert boosted == [deploys["yesterday"]] + [t for t in staged if t != deploys["yesterday"]]
    # once per search, and the boosted search's pass inside the window too (it orders the lifted hits)
    assert len(stage.seen) == 3 and len(stage.seen[2]) == 1  # the window holds only yesterday's deploy


def test_maxsim_over_a_model_it_cannot_run_leaves_the_fused_order_and_says_why_once(
    settings: Settings, embedder: Embedder, notes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # the hashing test embedder's model is no local model directory: there is no graph to take token states from
    settings.search.rescore = "off"
    off = hits(settings, embedder, "redis appendfsync writes")
    settings.search.rescore = "maxsim"
    with Hive(settings, embedder=embedder) as hive, caplog.at_level(logging.WARNING):
        on = [[(h.memory.id, h.score) for h in hive.search_memory("redis appendfsync writes").hits] for _ in range(2)]
    assert on == [off, off]
    assert caplog.text.count("re-scoring (search.rescore) is off") == 1


class HalfEach:
    """A stand-in pair scorer (this test is about the pipeline's scales, not a model): every text scores 0.5."""

    def score(self, query: str, texts: list[str]) -> list[float]:
        return [0.5] * len(texts)


def test_with_rank_fusion_and_a_second_stage_the_time_boost_still_lifts_a_vector_only_window_hit(
    settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rank fusion scores ~1/61; the second stage blends to 0..1: the boost must compare one scale with itself
    settings.search.fusion = "rrf"
    now = time.time()
    midnight = datetime.fromtimestamp(now).astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    with Hive(settings, embedder=embedder) as hive:
        store_at(hive, now - 40 * 86400, "Deploy of the worker pool went out with the queue fix", monkeypatch)
        store_at(hive, midnight.timestamp() - 3600, "The worker drained its queue overnight", monkeypatch)
        hive.parts.retrieval.rescorers = [HeadRescorer(hive.parts.store, HalfEach(), depth=10, weight=0.5)]
        found = hive.search_memory("deploy worker yesterday").hits
    assert [h.memory.text for h in found][:1] == ["The worker drained its queue overnight"]
    scores = [h.score for h in found]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)


class Broken:
    """A stand-in pair scorer that fails as onnxruntime can at run time (not a missing model)."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, query: str, texts: list[str]) -> list[float]:
        self.calls += 1
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code")


def test_a_second_stage_that_fails_while_scoring_leaves_the_fused_order_and_says_why_once(
    settings: Settings, embedder: Embedder, notes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    off = hits(settings, embedder, "redis appendfsync writes")
    broken = Broken()
    with Hive(settings, embedder=embedder) as hive, caplog.at_level(logging.WARNING):
        hive.parts.retrieval.rescorers = [HeadRescorer(hive.parts.store, broken, depth=10, weight=0.5)]
        on = [[(h.memory.id, h.score) for h in hive.search_memory("redis appendfsync writes").hits] for _ in range(2)]
    assert on == [off, off]
    assert broken.calls == 1  # off for the rest of the process, not tried (and logged) on every search
    assert caplog.text.count("re-scoring (search.rescore) is off") == 1 and "RuntimeError" in caplog.text
