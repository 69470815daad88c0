"""Context-aware scoring (retrieval/context.py, `search.session_context`): a memory's score gains its session
neighbours' mean score; results are still the memories themselves; off gives the plain fused ranking."""

from __future__ import annotations

import pytest

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.retrieval.candidates import Fused, Generator
from hivemind_app.retrieval.context import SessionContext
from tests.retrieval.test_search_quality import NOTES

# Two conversations, stored turn by turn. The question's words sit in one turn of each; in "trip" the turns
# around that one are about the same thing, in "misc" they are not.
TRIP = [
    "We drove to Yosemite for the camping trip in June",
    "The camping trip lasted five days, three in Yosemite and two at Mono Lake",
    "The camping trip ended at Mono Lake, cold at night",
]
MISC = [
    "The dentist moved my appointment to Thursday",
    "Five days of camping trip photos still need sorting",
    "The printer is out of toner again",
]
QUESTION = "how many days was the camping trip"


@pytest.fixture
def conversations(hive: Hive) -> dict[str, str]:
    ids = {}
    for session, turns in (("trip", TRIP), ("misc", MISC)):
        for turn in turns:
            ids[turn] = hive.store_memories([MemoryDraft(turn, session_id=session)])[0].memory.id
    hive.store_memories([MemoryDraft("camping trip checklist: tent, stove, five days of food")])  # no session
    hive.store_memories([MemoryDraft(text) for text in NOTES.values()])  # unrelated notes, so words are rare
    return ids


def search(settings: Settings, embedder: Embedder, on: bool) -> list[tuple[str, float]]:
    settings.search.session_context = on
    settings.search.context_weight = 1.0
    with Hive(settings, embedder=embedder) as hive:
        return [(h.memory.text, h.score) for h in hive.search_memory(QUESTION, mode="keyword", limit=10).hits]


def test_a_turn_whose_neighbours_match_outranks_an_equal_match_among_unrelated_turns(
    settings: Settings, embedder: Embedder, conversations: dict[str, str]
) -> None:
    off, on = search(settings, embedder, False), search(settings, embedder, True)
    assert sorted(t for t, _ in on) == sorted(t for t, _ in off)  # the same memories, none added or dropped
    rank_off = {t: i for i, (t, _) in enumerate(off)}
    rank_on = {t: i for i, (t, _) in enumerate(on)}
    assert rank_on[TRIP[1]] < rank_on[MISC[1]]
    scores_off, scores_on = dict(off), dict(on)
    assert scores_on[MISC[1]] == pytest.approx(scores_off[MISC[1]])  # its neighbours are not candidates
    assert scores_on[TRIP[1]] > scores_off[TRIP[1]]
    checklist = "camping trip checklist: tent, stove, five days of food"
    assert scores_on[checklist] == pytest.approx(scores_off[checklist])  # no session, no neighbours
    assert rank_off[TRIP[1]] > rank_off[MISC[1]]  # without its neighbours, the shorter match ranked first


def test_switching_the_stage_off_gives_the_fused_ranking_unchanged(
    settings: Settings, embedder: Embedder, conversations: dict[str, str]
) -> None:
    settings.search.session_context = False
    with Hive(settings, embedder=embedder) as hive:
        plain = [(h.memory.text, h.score) for h in hive.search_memory(QUESTION, mode="keyword", limit=10).hits]
        keyword = hive.parts.retrieval.keyword.generate(QUESTION, 10, hive.make_filters())
        by_rowid = hive.parts.store.get_many(keyword.rowids)
    assert plain == [(by_rowid[c.rowid].text, c.score) for c in keyword.candidates]


def test_the_neighbourhood_is_the_mean_over_both_sides_and_a_window_of_zero_weight_changes_nothing(
    hive: Hive, conversations: dict[str, str]
) -> None:
    rowids = sorted(hive.parts.store.get_many(range(1, 100)))[:3]  # the three "trip" turns, in storage order
    first, middle, last = rowids
    fused = [Fused(middle, 1.0, {Generator.KEYWORD: 1}), Fused(first, 0.5), Fused(last, 0.25)]
    stage = SessionContext(hive.parts.store, weight=1.0, window=1)
    by_rowid = {f.rowid: f.score for f in stage.rescore(fused)}
    assert by_rowid[middle] == pytest.approx(1.0 + (0.5 + 0.25) / 2)
    assert by_rowid[first] == pytest.approx(0.5 + 1.0 / 2)  # its other side is not a candidate: 0
    assert by_rowid[last] == pytest.approx(0.25 + 1.0 / 2)
    assert [f.ranks for f in stage.rescore(fused) if f.rowid == middle] == [{Generator.KEYWORD: 1}]
    assert SessionContext(hive.parts.store, weight=0.0, window=1).rescore(fused) == fused
