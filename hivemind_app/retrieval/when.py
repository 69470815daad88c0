"""Time in a question: "yesterday", "last week", "in May", "since Monday" become a window of unix seconds.

Invariants: calendar words are read in local time (a day starts at local midnight, a week on Monday; each
bound is localised on its own, so a day across a DST change is 23 or 25 hours); a
window never ends after `now`; a month named alone is its most recent occurrence that has begun (in March,
"in May" is last May); the phrase found is removed from the text the generators search (its words say when,
not what), unless nothing else would be left. English only; a question with no such phrase has no window, nor
does one whose date is out of range (a year outside 1970..9998): finding a window never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")  # fmt: skip
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH = "|".join(MONTHS) + "|" + "|".join(m[:3] for m in MONTHS if m != "may")
_DAY = "|".join(DAYS)
_UNIT_DAYS = {"day": 1, "week": 7}
_COUNT = r"(\d{1,3}|a|an|one|two|three|four|five|six|seven)"
YEARS = range(1970, 9999)
"""The years a question may name: before 1970 nothing was stored, after 9998 the month after is past datetime's
range. A phrase naming another year sets no window."""

# Ordered: the first pattern that matches decides. A bare "on Monday" is not one: it is as often a schedule
# ("the cron that runs on Monday") as a time to search.
_PATTERNS = [
    ("today", re.compile(r"\b(?:earlier\s+)?today\b|\bthis\s+(?:morning|afternoon|evening)\b", re.I)),
    ("yesterday", re.compile(r"\byesterday\b", re.I)),
    ("ago", re.compile(rf"\b{_COUNT}\s+(day|week)s?\s+ago\b", re.I)),
    (
        "past",
        re.compile(
            r"\b(?:in\s+)?(?:the\s+)?(?:last|past)\s+(\d{1,3}|two|three|four|five|six|seven)\s+(day|week)s\b", re.I
        ),
    ),
    ("since_day", re.compile(rf"\bsince\s+(?:last\s+)?({_DAY})\b", re.I)),
    ("since_month", re.compile(rf"\bsince\s+({_MONTH})\b", re.I)),
    ("last_day", re.compile(rf"\blast\s+({_DAY})\b", re.I)),
    ("this_week", re.compile(r"\bthis\s+week\b", re.I)),
    ("last_week", re.compile(r"\blast\s+week\b", re.I)),
    ("this_month", re.compile(r"\bthis\s+month\b", re.I)),
    ("last_month", re.compile(r"\blast\s+month\b", re.I)),
    ("in_month", re.compile(rf"\b(?:in|during)\s+({_MONTH})(?:\s+(\d{{4}}))?\b", re.I)),
]
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}


@dataclass(frozen=True)
class TimeWindow:
    since: float
    until: float
    phrase: str
    """The words that set it, as they stand in the question."""
    start: int = 0
    end: int = 0
    """Where `phrase` stands in the question: text[start:end] (the span removed from the text searched)."""

    def holds(self, moment: float) -> bool:
        return self.since <= moment < self.until


def _same(word: str, name: str) -> bool:
    """`word` is `name` as the patterns match it (ignoring case, as `re.I` does: "İ", "ſ", "K" included)."""
    return re.fullmatch(re.escape(name), word, re.I) is not None


def _count(word: str) -> int:
    return next((n for name, n in _NUMBERS.items() if _same(word, name)), None) or int(word)


def _month_index(word: str) -> int:
    return next(i for i, m in enumerate(MONTHS, start=1) if _same(word, m) or _same(word, m[:3]))


def _unit_days(word: str) -> int:
    return next(days for unit, days in _UNIT_DAYS.items() if _same(word, unit))


def _day_index(word: str) -> int:
    return next(i for i, d in enumerate(DAYS) if _same(word, d))


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1)


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def _recent_month(month: int, now: datetime, year: str) -> datetime:
    """The start of the named month: in `year`, else its most recent occurrence that has begun."""
    if year:
        if int(year) not in YEARS:
            raise ValueError(f"year {year} is outside {YEARS.start}..{YEARS.stop - 1}")
        return _month_start(int(year), month)
    start = _month_start(now.year, month)
    return start if start <= now else start.replace(year=now.year - 1)


def _bounds(kind: str, groups: tuple[str, ...], now: datetime) -> tuple[datetime, datetime]:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    monday = midnight - timedelta(days=now.weekday())
    if kind == "today":
        return midnight, now
    if kind == "yesterday":
        return midnight - timedelta(days=1), midnight
    if kind == "ago":  # the day (or week) that many back, as a window of that length
        days = _count(groups[0]) * _unit_days(groups[1])
        start = midnight - timedelta(days=days)
        return start, start + timedelta(days=_unit_days(groups[1]))
    if kind == "past":
        return now - timedelta(days=_count(groups[0]) * _unit_days(groups[1])), now
    if kind in ("since_day", "last_day"):
        back = (now.weekday() - _day_index(groups[0])) % 7
        if kind == "last_day" and back == 0:
            back = 7  # "last Monday" on a Monday is a week ago
        start = midnight - timedelta(days=back)
        return start, now if kind == "since_day" else start + timedelta(days=1)
    if kind == "since_month":
        return _recent_month(_month_index(groups[0]), now, ""), now
    if kind == "this_week":
        return monday, now
    if kind == "last_week":
        return monday - timedelta(days=7), monday
    this_month = midnight.replace(day=1)
    if kind == "this_month":
        return this_month, now
    if kind == "last_month":
        previous = (this_month - timedelta(days=1)).replace(day=1)
        return previous, this_month
    start = _recent_month(_month_index(groups[0]), now, groups[1])  # in_month
    return start, min(_next_month(start), now)


def find_window(text: str, now: float) -> TimeWindow | None:
    """The window the question's first time phrase names, or None."""
    # Calendar arithmetic on naive local wall-clock times; each bound is then localised on its own (a naive
    # datetime's timestamp() reads it in the local zone, DST included), so "yesterday" across a DST change is
    # 23 or 25 hours, midnight to midnight, not a day at today's offset.
    local_now = datetime.fromtimestamp(now)
    for kind, pattern in _PATTERNS:
        match = pattern.search(text)  # on the text itself, never a lowered copy: lowering can change its length
        if match is None:
            continue
        groups = tuple(g or "" for g in match.groups())
        try:
            start, end = _bounds(kind, groups, local_now)
            since = now if start == local_now else start.timestamp()
            until = now if end == local_now else min(end.timestamp(), now)
        except (ValueError, OverflowError, OSError, StopIteration):  # a date out of range: no window, never an error
            return None
        if since >= now:  # a month named with a future year: nothing can be in it
            since = until = now
        return TimeWindow(since, until, match.group(), match.start(), match.end())
    return None


def without_phrase(text: str, window: TimeWindow | None) -> str:
    """The question with the time phrase taken out (what the generators search), if anything else is left."""
    if window is None:
        return text
    if text[window.start : window.end] != window.phrase:  # a window found in another text: nothing to remove
        return text
    rest = " ".join((text[: window.start] + " " + text[window.end :]).split())
    return rest if re.search(r"\w", rest) else text
