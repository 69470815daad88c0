"""Query analysis: a caller's request checked and turned into what the generators need.

Invariant: everything a caller can get wrong (empty query, limit out of range, unknown mode, bad filter
values) is refused here with a message that says what to give instead, before any search work is done.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hivemind_app.config import SearchSettings
from hivemind_app.content import MAX_TAGS, check_count, check_label, check_text
from hivemind_app.errors import InvalidInputError
from hivemind_app.records.memories import MAX_PROJECT_CHARS, SearchFilters
from hivemind_app.records.search import SEARCH_MODES, SearchMode
from hivemind_app.retrieval.when import TimeWindow, find_window, without_phrase
from hivemind_app.store.search import MAX_KNN_K
from hivemind_app.timespec import parse_time

# A token an embedding model is poor at telling from its neighbours: one with a digit (5433, HTTP 428's 428,
# q_proj2), an ALL-CAPS name of 3+ (ECONNRESET, SIGPIPE), snake_case, dotted.or/slashed:names, or camelCase.
_IDENTIFIER = re.compile(r"[A-Za-z]*\d[\w.:/-]*|[A-Z][A-Z0-9_]{2,}|\w+[_./:]\w[\w./:-]*|[a-z]+[A-Z]\w*")
_PUNCTUATION = "?!,;:()[]{}'\"`"


def has_identifier(text: str) -> bool:
    """Whether the query holds an identifier-like token (see `_IDENTIFIER`); sentence punctuation around a
    token does not count."""
    return any(_IDENTIFIER.fullmatch(token.strip(_PUNCTUATION).rstrip(".")) for token in text.split())


@dataclass(frozen=True)
class Query:
    """A checked search request."""

    text: str
    limit: int
    mode: SearchMode
    filters: SearchFilters
    reformulate: bool
    window: TimeWindow | None = None
    """The time the question names ("last week"), when `search.time_aware` is on and no since/until was given."""

    @property
    def search_text(self) -> str:
        """What the generators search: the question less its time phrase."""
        return without_phrase(self.text, self.window)

    def within_window(self) -> Query:
        """This query with the question's window as its since/until filters (itself when it names no time)."""
        if self.window is None:
            return self
        filters = dataclasses.replace(self.filters, since=self.window.since, until=self.window.until)
        return dataclasses.replace(self, filters=filters)

    @property
    def identifier(self) -> bool:
        """The text searched holds an identifier-like token: exact terms weigh more in fusion. The time phrase
        is not searched, so its digits ("3 days ago", "in May 2025") do not count."""
        return has_identifier(self.search_text)

    @property
    def depth(self) -> int:
        """How many candidates each generator returns: the limit itself, or a wider pool for fusion to choose from."""
        return self.limit if self.mode != "hybrid" else min(MAX_KNN_K, max(self.limit * 5, 50))


def make_filters(
    session_id: str | None = None,
    source: str | None = None,
    tags: Sequence[str] = (),
    since: str | float | None = None,
    until: str | float | None = None,
    projects: Sequence[str] | None = None,
) -> SearchFilters:
    if isinstance(tags, str):
        raise InvalidInputError("tags must be a list of strings, not one string.")
    check_count(tags, "tags", MAX_TAGS)
    return SearchFilters(
        session_id=check_label(session_id, "the session id") if session_id else None,
        source=check_label(source, "the source", 1000) if source else None,
        tags=tuple(sorted({check_label(t, "a tag", 100).lower() for t in tags})),
        since=parse_time(since) if since is not None else None,
        until=parse_time(until) if until is not None else None,
        projects=None if projects is None else tuple(check_label(p, "a project", MAX_PROJECT_CHARS) for p in projects),
    )


def analyse(
    text: object,
    limit: int | None,
    mode: str,
    filters: SearchFilters | None,
    reformulate: bool,
    settings: SearchSettings,
    max_text_bytes: int,
    now: float | None = None,
) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("The query is empty; give some words to search for.")
    text = check_text(text, max_text_bytes, "the query")
    limit = settings.default_limit if limit is None else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= settings.max_limit:
        raise InvalidInputError(f"limit must be a whole number from 1 to {settings.max_limit}.")
    for known in SEARCH_MODES:
        if mode == known:
            filters = filters or SearchFilters()
            window = None
            if settings.time_aware != "off" and filters.since is None and filters.until is None:
                window = find_window(text, time.time() if now is None else now)
            query = Query(text, limit, known, filters, reformulate, window)
            return query.within_window() if settings.time_aware == "filter" else query
    raise InvalidInputError(f"Unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}.")
