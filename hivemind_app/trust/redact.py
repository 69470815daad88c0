"""Secrets out before anything is stored or pushed: keys, tokens, passwords, in any field.

`redact(text)` replaces each secret with `[REDACTED:kind]`, keeping the text around it (`password=`,
`Bearer `, `scheme://user:`, the quotes of a quoted value), so the shape of the text survives. The rules
are data (`trust.rules`); this module runs them, and `checks.py` holds what a context rule's match must pass:

- a rule runs only when one of its keywords occurs in the lower-cased text, and its regex is compiled the
  first time it runs, so importing this module and redacting a short text stay cheap;
- every rule scans the original text; the secrets' spans are merged (overlapping spans become one, under
  the kind of the earlier rule), and the text is rebuilt once;
- context rules pass a check here: an assignment's name must be secret-ish by its words (`*_SECRET_KEY`,
  `dbPassword`, `X-Api-Key`, ...), and its value must be a literal (not `$VAR`, `{{ x }}`, `<token>`,
  `None`, a type, a variable or attribute in code, prose after a colon); for names that are only borderline
  (`*_KEY`, `*_AUTH`, `*_SALT`, ...) the value's Shannon entropy decides, with detect-secrets' limits.

Every repeat in the rules is bounded, so a megabyte is redacted in linear time.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

from hivemind_app.trust.checks import CHECKS, Span, assignment_spans, spaced_join_code_spans
from hivemind_app.trust.rules import RULES, Rule

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs the hook path milliseconds to import
    from typing import Any

_compiled: list[re.Pattern[str] | None] = [None] * len(RULES)
_boundaries: dict[str, re.Pattern[str]] = {}
_SECRET_GROUPS = ("secret", "dq", "sq")
_MARKER = r"\[REDACTED:[a-z0-9-]{1,40}\]"
# below this many characters the keyword test is nearly free and spares compiling rules that cannot match;
# above it, a rule's regex (which starts with a literal) finds its start as fast as the keyword test would
_PREFILTER_MAX = 32768


def redact(text: str) -> str:
    """`text` with every secret replaced by `[REDACTED:kind]`."""
    if not text:
        return text
    lower = text.lower() if len(text) < _PREFILTER_MAX else ""
    spans: list[tuple[int, int, int]] = []
    for index, rule in enumerate(RULES):
        if lower and rule.keywords and not any(keyword in lower for keyword in rule.keywords):
            continue
        for start, end in _rule_spans(index, rule, text):
            if start < end:
                spans.append((start, end, index))
    if not spans:
        return text
    if "[REDACTED:" in text:  # redacting again: what is already a marker stays as it is
        markers = [m.span() for m in re.finditer(_MARKER, text)]
        spans = [x for x in spans if not _overlaps(markers, x[0], x[1])]
        if not spans:
            return text
    return _rebuild(text, spans)


def redact_value(value: Any) -> Any:
    """Redact every string inside JSON-like data (dict keys are left as they are)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value


# --- engine -------------------------------------------------------------------------------------------


def _pattern(index: int) -> re.Pattern[str]:
    pattern = _compiled[index]
    if pattern is None:
        pattern = _compiled[index] = re.compile(RULES[index].pattern)
    return pattern


def _class(chars: str) -> re.Pattern[str]:
    pattern = _boundaries.get(chars)
    if pattern is None:
        pattern = _boundaries[chars] = re.compile(f"[{chars}]")
    return pattern


def _rule_spans(index: int, rule: Rule, text: str) -> Iterator[Span]:
    if rule.check == "assignment":
        yield from assignment_spans(_pattern(index), text)
        return
    if rule.check == "spaced-join-code":
        yield from spaced_join_code_spans(_pattern(index), text)
        return
    check = CHECKS[rule.check]
    boundary = _class(rule.boundary) if rule.boundary else None
    for match in _pattern(index).finditer(text):
        span = _secret_span(match)
        first = match.start()
        if rule.before is not None:
            extended = _extend_back(text, first, rule.before, span)
            if extended is None:
                continue
            span = extended
            first = span[0]
        if boundary is not None and first > 0 and boundary.match(text, first - 1):
            continue  # the match starts inside a longer token
        checked = check(match, span)
        if checked is not None:
            yield checked


def _extend_back(text: str, start: int, before: tuple[str, int, int], span: Span) -> Span | None:
    """The secret extended back over `before`'s min..max characters in front of the match, else None."""
    chars, least, most = before
    body = _class(chars)
    i = start
    while i > 0 and start - i < most and body.match(text, i - 1):
        i -= 1
    if start - i < least or (i > 0 and body.match(text, i - 1)):
        return None  # too short, or part of a longer run
    return i, span[1]


def _overlaps(markers: list[Span], start: int, end: int) -> bool:
    """Whether [start, end) overlaps one of `markers` (sorted, disjoint)."""
    i = bisect.bisect_right(markers, (start, len(markers) and markers[-1][1] + 1))
    return (i > 0 and markers[i - 1][1] > start) or (i < len(markers) and markers[i][0] < end)


def _rebuild(text: str, spans: list[tuple[int, int, int]]) -> str:
    spans.sort()
    out: list[str] = []
    pos = 0
    start, end, rule = spans[0]
    for s, e, r in spans[1:]:
        if s < end:  # overlapping: one redaction, named by the earlier (more specific) rule
            end = max(end, e)
            rule = min(rule, r)
            continue
        out += (text[pos:start], f"[REDACTED:{RULES[rule].kind}]")
        pos, start, end, rule = end, s, e, r
    out += (text[pos:start], f"[REDACTED:{RULES[rule].kind}]", text[end:])
    return "".join(out)


def _secret_span(match: re.Match[str]) -> Span:
    groups = match.re.groupindex
    for name in _SECRET_GROUPS:
        if name in groups and match.group(name) is not None:
            return match.span(name)
    return match.span()
