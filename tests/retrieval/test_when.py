"""Time-aware questions (retrieval/when.py, `search.time_aware`): the window a question names, and what a
search does with it (boost: stored-in-window first; filter: only those; off: words as words)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hivemind_app.config import Settings
from hivemind_app.hive import Hive, MemoryDraft
from hivemind_app.ml.embedder import Embedder
from hivemind_app.retrieval.when import find_window, without_phrase

SUNDAY = datetime(2026, 12, 6, 14, 30).astimezone()  # a Sunday afternoon, local time
NOW = SUNDAY.timestamp()


def local(*args: int) -> float:
    return datetime(*args).astimezone().timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("question", "since", "until", "rest"),
    [
        ("what did I fix yesterday", local(2026, 12, 5), local(2026, 12, 6), "what did I fix"),
        ("notes from earlier today", local(2026, 12, 6), NOW, "notes from"),
        ("deploys last week", local(2026, 11, 23), local(2026, 11, 30), "deploys"),
        ("what changed this week", local(2026, 11, 30), NOW, "what changed"),
        ("since Monday, which tests broke", local(2026, 11, 30), NOW, ", which tests broke"),
        ("the meeting last Friday", local(2026, 12, 4), local(2026, 12, 5), "the meeting"),
        ("the outage last Sunday", local(2026, 11, 29), local(2026, 11, 30), "the outage"),
        ("the bug from 3 days ago", local(2026, 12, 3), local(2026, 12, 4), "the bug from"),
        ("errors in the past two weeks", NOW - 14 * 86400, NOW, "errors"),
        ("the migration in May", local(2026, 5, 1), local(2026, 6, 1), "the migration"),
        ("the migration in May 2025", local(2025, 5, 1), local(2025, 6, 1), "the migration"),
        ("what happened in December", local(2026, 12, 1), NOW, "what happened"),
        ("since March", local(2026, 3, 1), NOW, "since March"),  # nothing else left: the text stays
        ("last month's invoices", local(2026, 11, 1), local(2026, 12, 1), "'s invoices"),
    ],
)
def test_a_time_phrase_names_a_window_in_local_time_and_leaves_the_rest_to_search(
    question: str, since: float, until: float, rest: str
) -> None:
    window = find_window(question, NOW)
    assert window is not None
    assert (window.since, window.until) == (pytest.approx(since), pytest.approx(until))
    assert without_phrase(question, window) == rest


@pytest.mark.parametrize(
    "question", ["what does ECONNRESET mean", "the meaning of the weekly report", "maybe later", "may I ask"]
)
def test_a_question_without_a_time_phrase_has_no_window(question: str) -> None:
    assert find_window(question, NOW) is None


@given(st.text(max_size=80), st.floats(min_value=1e9, max_value=4e9))
def test_any_text_gives_no_window_or_one_that_ends_by_now_and_starts_before_it_ends(text: str, now: float) -> None:
    window = find_window(text, now)
    if window is not None:
        assert window.since <= window.until <= now
        assert window.phrase.lower() in text.lower()


@pytest.mark.parametrize("question", ["errors in may 0000", "notes in dec 9999", "in jan 0001", "in May 1969"])
def test_a_year_out_of_range_gives_no_window_rather_than_an_error(question: str) -> None:
    assert find_window(question, NOW) is None


@given(st.integers(min_value=0, max_value=9999), st.sampled_from(["jan", "may", "dec", "February"]))
def test_any_four_digit_year_gives_no_window_or_one_after_1970(year: int, month: str) -> None:
    window = find_window(f"notes in {month} {year:04d}", NOW)
    assert window is None or 0 <= window.since <= window.until <= NOW


def test_a_letter_whose_lowercase_is_longer_does_not_shift_the_phrase() -> None:
    question = "İİ fix yesterday please"  # "İ".lower() is two characters
    window = find_window(question, NOW)
    assert window is not None and window.phrase == "yesterday"
    assert without_phrase(question, window) == "İİ fix please"


def test_the_span_found_is_the_one_removed_not_an_earlier_copy_of_its_words() -> None:
    question = "the todays list I made today"  # "todays" is not the phrase, but holds its letters
    window = find_window(question, NOW)
    assert window is not None and question[window.start : window.end] == window.phrase == "today"
    assert without_phrase(question, window) == "the todays list I made"


_PIECES = ["İ", "ẞ", "ſ", "K", " ", "x", "yesterday", "laſt weeK", "in MAY", "2 DAYS AGO", "on FRİDAY", "ſince ſept"]


@given(st.lists(st.sampled_from(_PIECES), max_size=8).map("".join))
def test_the_phrase_is_exactly_the_span_it_was_found_at(text: str) -> None:
    window = find_window(text, NOW)
    if window is not None:
        assert text[window.start : window.end] == window.phrase
        rest = " ".join((text[: window.start] + " " + text[window.end :]).split())
        assert without_phrase(text, window) in (rest, text)


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[ZoneInfo]:
    """Local time is Europe/Berlin (two DST changes a year) for this test; the process's zone is restored after."""
    with monkeypatch.context() as m:
        m.setenv("TZ", "Europe/Berlin")
        time.tzset()
        yield ZoneInfo("Europe/Berlin")
    time.tzset()


@pytest.mark.parametrize(
    ("today", "question", "since", "until", "hours"),
    [
        ((2026, 3, 30), "what broke yesterday", (2026, 3, 29), (2026, 3, 30), 23),  # clocks went forward
        ((2026, 10, 26), "what broke yesterday", (2026, 10, 25), (2026, 10, 26), 25),  # clocks went back
        ((2026, 4, 2), "deploys last week", (2026, 3, 23), (2026, 3, 30), 7 * 24 - 1),
        ((2026, 4, 2), "the migration in March", (2026, 3, 1), (2026, 4, 1), 31 * 24 - 1),
        ((2026, 11, 2), "the bug from 8 days ago", (2026, 10, 25), (2026, 10, 26), 25),
    ],
)
def test_a_window_across_a_dst_change_runs_from_local_midnight_to_local_midnight(
    berlin: ZoneInfo,
    today: tuple[int, int, int],
    question: str,
    since: tuple[int, int, int],
    until: tuple[int, int, int],
    hours: int,
) -> None:
    now = datetime(*today, 12, tzinfo=berlin).timestamp()
    window = find_window(question, now)
    assert window is not None
    assert window.since == datetime(*since, tzinfo=berlin).timestamp()
    assert window.until == datetime(*until, tzinfo=berlin).timestamp()
    assert window.until - window.since == hours * 3600


# -- through a real Hive ------------------------------------------------------------------------------


def store_at(hive: Hive, moment: float, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store `text` as if at `moment` (the store's clock, for this one write)."""
    with monkeypatch.context() as m:  # undoes only this patch, not the test's other fixtures' (isolated_env)
        m.setattr("hivemind_app.store.memory_store.time", SimpleNamespace(time=lambda: moment))
        hive.store_memories([MemoryDraft(text)])


def test_storing_at_a_moment_leaves_the_tests_environment_alone(
    hive: Hive, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    store_at(hive, time.time() - 60, "A note stored a minute ago", monkeypatch)
    assert os.environ["HIVEMIND_DATA_DIR"] == str(isolated_env)


@pytest.fixture
def deploys(hive: Hive, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    now = time.time()
    texts = {
        "old": "Deploy of the API went out with the new rate limiter",
        "yesterday": "Deploy of the worker pool, after the queue fix",
        "today": "Deploy of the dashboard rolled back, the CSS bundle was stale",
    }
    midnight = datetime.fromtimestamp(now).astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    moments = {"old": now - 40 * 86400, "yesterday": midnight.timestamp() - 3600, "today": now - 1}
    for key, text in texts.items():
        store_at(hive, moments[key], text, monkeypatch)
    return texts


def test_boost_ranks_what_was_stored_in_the_window_first_and_keeps_the_rest(
    hive: Hive, deploys: dict[str, str]
) -> None:
    found = hive.search_memory("which deploy went out yesterday", mode="keyword").hits
    hits = [h.memory.text for h in found]
    assert hits[0] == deploys["yesterday"] and set(hits) >= {deploys["old"]}
    # the lifted hit scores far below the old one (which also holds "went out"): it shows the score below it
    scores = [h.score for h in found]
    assert scores == sorted(scores, reverse=True)


def test_filter_keeps_only_the_window_and_off_reads_the_words_as_words(
    settings: Settings, embedder: Embedder, hive: Hive, deploys: dict[str, str]
) -> None:
    hive.close()
    settings.search.time_aware = "filter"
    with Hive(settings, embedder=embedder) as filtering:
        hits = filtering.search_memory("deploy went out yesterday", mode="keyword").hits
        assert [h.memory.text for h in hits] == [deploys["yesterday"]]
        # a caller's own since/until wins over the question's words
        mine = filtering.make_filters(since="100d")
        assert len(filtering.search_memory("deploy yesterday", mode="keyword", filters=mine).hits) == 3
    settings.search.time_aware = "off"
    with Hive(settings, embedder=embedder) as plain:
        # "yesterday" is searched as a word, and no memory holds it: strict finds nothing, relaxed finds "deploy"
        off = [h.memory.text for h in plain.search_memory("deploy yesterday", mode="keyword").hits]
        assert set(off) == set(deploys.values())
    settings.search.time_aware = "boost"
    with Hive(settings, embedder=embedder) as boosting:
        boosted = [h.memory.text for h in boosting.search_memory("deploy yesterday", mode="keyword").hits]
    assert boosted[0] == deploys["yesterday"] and sorted(boosted) == sorted(off)


@pytest.mark.ranking  # the real MiniLM: the hashing embedder's similarities are noise at this scale
def test_many_unrelated_memories_stored_in_the_window_do_not_push_out_the_relevant_one(
    hive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    relevant = "The worker pool deploy failed because the job queue was full"
    store_at(hive, now - 40 * 86400, relevant, monkeypatch)
    imported = [f"Recipe {i}: simmer {i} onions with saffron and cardamom" for i in range(30)]
    with monkeypatch.context() as m:  # an import yesterday
        m.setattr("hivemind_app.store.memory_store.time", SimpleNamespace(time=lambda: now - 86400))
        hive.store_memories([MemoryDraft(text) for text in imported])
    for mode in ("hybrid", "keyword"):
        hits = [
            h.memory.text for h in hive.search_memory("why did the worker pool deploy fail yesterday", 3, mode).hits
        ]
        assert relevant in hits, mode


@pytest.mark.parametrize("question", ["the cron that runs on Monday", "backups run on Sunday night"])
def test_a_weekday_after_on_is_a_schedule_not_a_time_to_search(question: str) -> None:
    assert find_window(question, NOW) is None


# -- the time a memory describes (occurred_at), not only when it was stored ---------------------------------


def test_a_memory_about_may_stored_in_december_is_found_by_in_may(
    settings: Settings, embedder: Embedder, hive: Hive
) -> None:
    may = local(2025, 5, 14, 10)
    about_may = hive.store_memory("The migration of the billing database to Postgres 16", occurred_at=may).memory
    hive.store_memory("The migration of the search cluster to OpenSearch")  # stored now, about now
    assert about_may.occurred_at == may and about_may.created_at > local(2026, 1, 1)
    boosted = hive.search_memory("the migration in May 2025", mode="keyword").hits
    assert boosted[0].memory.id == about_may.id
    hive.close()
    settings.search.time_aware = "filter"
    with Hive(settings, embedder=embedder) as filtering:
        for mode in ("keyword", "hybrid"):
            hits = filtering.search_memory("the migration in May 2025", mode=mode).hits
            assert [h.memory.id for h in hits] == [about_may.id], mode
        # a caller's --since/--until read the same time
        window = filtering.make_filters(since="2025-05-01", until="2025-06-01")
        assert [h.memory.id for h in filtering.search_memory("migration", filters=window).hits] == [about_may.id]


def test_the_time_a_memory_describes_wins_over_when_it_was_stored(
    settings: Settings, embedder: Embedder, hive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat from last year imported yesterday is not among yesterday's memories; one stored yesterday without
    a time of its own still is."""
    midnight = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    with monkeypatch.context() as m:
        m.setattr("hivemind_app.store.memory_store.time", SimpleNamespace(time=lambda: midnight - 3600))
        hive.store_memories(
            [
                MemoryDraft("Deploy of the worker pool, after the queue fix"),
                MemoryDraft("Deploy of the old mail relay, from last year's chat", occurred_at=local(2025, 3, 2)),
            ]
        )
    hive.close()
    settings.search.time_aware = "filter"
    with Hive(settings, embedder=embedder) as filtering:
        hits = filtering.search_memory("which deploy went out yesterday", mode="keyword").hits
        assert [h.memory.text for h in hits] == ["Deploy of the worker pool, after the queue fix"]
