"""Secrets out before anything is stored: API keys, tokens, passwords in URLs, private keys.

Every pattern is bounded (no unbounded repeat that can backtrack), so a megabyte of text is redacted in
linear time. The patterns aim at what shows up in a coding session's tool output (env dumps, config files, curl
commands, git remotes). A redacted value becomes `[REDACTED:kind]` so the shape of the text survives.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "private-key",
        re.compile(
            # the body stops at the next "-----", so a run of BEGIN lines with no END stays linear
            r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----(?:[^-]|-(?!----)){0,20000}-----END [A-Z ]{0,40}PRIVATE KEY-----"
        ),
    ),
    ("aws-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("api-key", re.compile(r"\b(?:sk|rk|pk)-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{20,}\b")),
    ("slack-token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("bearer", re.compile(r"(?i)(\bbearer\s+)(?!\[REDACTED)[A-Za-z0-9._~+/=-]{12,}")),
    ("basic-auth", re.compile(r"(?i)(\bauthorization:\s*basic\s+)[A-Za-z0-9+/=]{8,}")),
    ("url-password", re.compile(r"(\b[a-z][a-z0-9+.-]{0,30}://[^\s:/@]{0,256}:)(?!\[REDACTED)[^\s@/]{1,512}(@)", re.I)),
    # NAME=value, NAME: value, "name": "value" where NAME ends in a secret-ish word (so max_tokens and
    # tokenizer are left alone); type annotations (password: str) and values already redacted are skipped.
    (
        "secret",
        re.compile(
            r"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?"
            r"|private[_-]?key|credentials?)\b[\"']?\s*[=:]\s*)"
            r"(?!\[REDACTED)(?!(?:str|bytes|int|bool|none|any|optional|string)\b)"
            r"(\"[^\"\n]{4,512}\"|'[^'\n]{4,512}'|[^\s\"',;)\]}]{4,512})"
        ),
    ),
]


def redact(text: str) -> str:
    for kind, pattern in _PATTERNS:
        text = pattern.sub(_replacement(kind, pattern.groups), text)
    return text


def _replacement(kind: str, groups: int) -> Callable[[re.Match[str]], str]:
    """Keep the captured prefix (`password=`, `Bearer `, `scheme://user:`) and suffix; drop the secret."""

    def replace(match: re.Match[str]) -> str:
        prefix = match.group(1) if groups >= 1 else ""
        if kind == "secret":  # group 2 is the value: keep its quotes, if any
            value = match.group(2)
            quote = value[0] if value[0] in "\"'" else ""
            return f"{prefix}{quote}[REDACTED:{kind}]{quote}"
        suffix = match.group(2) if groups >= 2 else ""
        return f"{prefix}[REDACTED:{kind}]{suffix}"

    return replace


def redact_value(value: Any) -> Any:
    """Redact every string inside JSON-like data."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value
