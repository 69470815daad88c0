"""Query analysis: a caller's request checked and turned into what the generators need.

Invariant: everything a caller can get wrong (empty query, limit out of range, unknown mode, bad filter
values) is refused here with a message that says what to give instead, before any search work is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hivemind_app.config import SearchSettings
from hivemind_app.content import MAX_TAGS, check_count, check_label, check_text
from hivemind_app.errors import InvalidInputError
from hivemind_app.records.memories import MAX_PROJECT_CHARS, SearchFilters
from hivemind_app.records.search import SEARCH_MODES, SearchMode
from hivemind_app.store.search import MAX_KNN_K
from hivemind_app.timespec import parse_time


@dataclass(frozen=True)
class Query:
    """A checked search request."""

    text: str
    limit: int
    mode: SearchMode
    filters: SearchFilters
    reformulate: bool

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
) -> Query:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("The query is empty; give some words to search for.")
    text = check_text(text, max_text_bytes, "the query")
    limit = settings.default_limit if limit is None else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= settings.max_limit:
        raise InvalidInputError(f"limit must be a whole number from 1 to {settings.max_limit}.")
    for known in SEARCH_MODES:
        if mode == known:
            return Query(text, limit, known, filters or SearchFilters(), reformulate)
    raise InvalidInputError(f"Unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}.")
