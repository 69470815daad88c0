"""Points in time as users write them: `90m`, `7d`, `2w` ago, an ISO date, or unix seconds."""

from __future__ import annotations

import re
import time
from datetime import datetime

from hivemind_app.errors import InvalidInputError
from hivemind_app.records.memories import OCCURRED_RANGE

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: str | float | int, now: float | None = None) -> float:
    """Unix seconds for `value`; relative values count back from now."""
    if isinstance(value, bool):
        raise InvalidInputError("A time must be a duration like 7d, an ISO date, or unix seconds, not a boolean.")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise InvalidInputError(f"A time must be a string or a number, not {type(value).__name__}.")
    match = _RELATIVE.match(value)
    if match:
        return (now or time.time()) - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInputError(
            f"'{value}' is not a time: use a duration back from now (30m, 12h, 7d, 2w), an ISO date "
            "(2026-11-01 or 2026-11-01T09:30), or unix seconds."
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # a date without a zone is local time
    return parsed.timestamp()


def occurred_time(value: str | float | None) -> float | None:
    """The time a memory describes as unix seconds (None stays None), refused with what to give instead when it
    is not a time or lies outside `OCCURRED_RANGE`."""
    if value is None:
        return None
    at = parse_time(value)
    low, high = OCCURRED_RANGE
    if not low <= at < high:  # also refuses nan and inf
        raise InvalidInputError(
            f"The time a memory describes must lie between 1970-01-01 and 9999-12-31; {value!r} does not. "
            "Give an ISO date (2026-05-14 or 2026-05-14T09:30), a duration back from now (3d), or unix seconds."
        )
    return at


def humanise_age(seconds: float) -> str:
    """`just now`, `5m ago`, `3h ago`, `12d ago`."""
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit == "w" else 1):
            return f"{int(seconds // size)}{unit} ago"
    return "just now" if seconds < 10 else f"{int(seconds)}s ago"
