"""Query analysis (retrieval/query.py): everything a caller can get wrong is refused before any search work,
with a message that says what to give instead."""

from __future__ import annotations

import re

import pytest

from hivemind_app.config.sections import SearchSettings
from hivemind_app.errors import BinaryContentError, InvalidInputError, TextTooLargeError
from hivemind_app.hive import Hive
from hivemind_app.records.memories import SearchFilters
from hivemind_app.retrieval.query import SEARCH_MODES, Query, analyse, make_filters

SETTINGS = SearchSettings()
MAX_BYTES = 1000


def check(text: object, limit: int | None = None, mode: str = "hybrid", settings: SearchSettings = SETTINGS) -> Query:
    return analyse(text, limit, mode, None, False, settings, MAX_BYTES)


def test_search_input_is_checked(hive: Hive) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        hive.search_memory("  ")
    with pytest.raises(InvalidInputError, match="from 1 to 1000"):
        hive.search_memory("x", limit=0)
    with pytest.raises(InvalidInputError, match="from 1 to 1000"):
        hive.search_memory("x", limit="5")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="Unknown search mode 'fuzzy'"):
        hive.search_memory("x", mode="fuzzy")


@pytest.mark.parametrize("text", ["", "   \n\t", None, 42, b"bytes"])
def test_an_empty_or_non_text_query_is_refused(text: object) -> None:
    with pytest.raises(InvalidInputError, match=re.escape("The query is empty; give some words to search for.")):
        check(text)


def test_a_query_that_is_not_clean_text_is_refused_and_named_the_query() -> None:
    with pytest.raises(BinaryContentError, match=r"^the query contains NUL characters"):
        check("redis\x00port")
    with pytest.raises(BinaryContentError, match=r"^the query holds bytes that are not valid UTF-8"):
        check("caf\udce9")
    with pytest.raises(BinaryContentError, match=r"^the query is .* control characters"):
        check("\x01\x02\x03\x04\x05ab")
    with pytest.raises(TextTooLargeError, match=r"^the query is 1,001 bytes, over the limit of 1,000 bytes"):
        check("x" * 1001)


@pytest.mark.parametrize("limit", [0, -1, 1001, True, "5", 2.0])
def test_a_limit_outside_the_range_or_not_a_whole_number_is_refused(limit: object) -> None:
    with pytest.raises(InvalidInputError, match=re.escape("limit must be a whole number from 1 to 1000.")):
        check("x", limit=limit)  # type: ignore[arg-type]


def test_the_limit_range_follows_the_settings() -> None:
    small = SearchSettings(max_limit=50, default_limit=7)
    assert check("x", limit=50, settings=small).limit == 50
    assert check("x", settings=small).limit == 7  # no limit given: the default
    with pytest.raises(InvalidInputError, match=re.escape("from 1 to 50.")):
        check("x", limit=51, settings=small)


def test_an_unknown_mode_is_refused_with_the_modes_there_are() -> None:
    with pytest.raises(
        InvalidInputError, match=re.escape("Unknown search mode 'fuzzy'; use one of hybrid, vector, keyword.")
    ):
        check("x", mode="fuzzy")
    with pytest.raises(InvalidInputError, match="Unknown search mode 'Hybrid'"):
        check("x", mode="Hybrid")


def test_a_checked_query_keeps_the_request_and_widens_the_pool_only_for_hybrid() -> None:
    for mode in SEARCH_MODES:
        query = check("  staging port\r\n", limit=3, mode=mode)
        assert (query.text, query.limit, query.mode, query.filters, query.reformulate) == (
            "staging port",  # normalised, as stored texts are
            3,
            mode,
            SearchFilters(),
            False,
        )
        assert query.depth == (50 if mode == "hybrid" else 3)
    assert check("x", limit=200).depth == 1000
    assert check("x", limit=1000).depth == 4096  # the store's largest k


def test_filters_are_normalised() -> None:
    filters = make_filters(session_id=" s1 ", source="notes/*", tags=["Redis", "nas", "redis"], since=100, until="200")
    assert filters == SearchFilters(session_id="s1", source="notes/*", tags=("nas", "redis"), since=100.0, until=200.0)
    assert make_filters() == SearchFilters() and make_filters().empty


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tags": "redis"}, "tags must be a list of strings, not one string."),
        ({"tags": ["ok", ""]}, "a tag is empty."),
        ({"tags": ["two\nlines"]}, "a tag must be one line of at most 100 characters."),
        ({"tags": ["x" * 101]}, "a tag must be one line of at most 100 characters."),
        ({"tags": [7]}, "a tag must be a string, not int."),
        ({"session_id": "   "}, "the session id is empty."),
        ({"session_id": 12}, "the session id must be a string, not int."),
        ({"session_id": "a\nb"}, "the session id must be one line of at most 200 characters."),
        ({"source": "y" * 1001}, "the source must be one line of at most 1000 characters."),
        ({"since": "last tuesday"}, "'last tuesday' is not a time: use a duration back from now"),
        ({"until": True}, "A time must be a duration like 7d, an ISO date, or unix seconds, not a boolean."),
        ({"since": [1]}, "A time must be a string or a number, not list."),
    ],
)
def test_every_bad_filter_is_refused_with_what_to_give_instead(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        make_filters(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "identifier"),
    [
        ("what did I fix 3 days ago", False),  # the digit is the time phrase's, not the question's
        ("what broke in the past 2 weeks", False),
        ("what broke on port 5433 3 days ago", True),
    ],
)
def test_a_digit_in_the_time_phrase_does_not_make_an_identifier_query(text: str, identifier: bool) -> None:
    assert analyse(text, 5, "hybrid", None, False, SearchSettings(), MAX_BYTES).identifier is identifier
