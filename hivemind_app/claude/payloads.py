"""Claude Code hook payloads: parsing, clipping and the facts read from them. Stdlib and the redactor only.

Shared by the hook handlers (`hooks.py`, which apply an event to the hive) and the spool (`spool.py`, which
keeps an event for them without opening the store): both must read a payload the same way.
"""

from __future__ import annotations

import json

from hivemind_app.trust.redact import redact

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PostToolUse",
    "PostToolUseFailure",
    "Stop",
    "SessionEnd",
    "PreCompact",
)
RESULT_LIMIT = 4000
CONTEXT_LIMIT = 2000
CONTEXT_MEMORIES = 5
TASK_LIMIT = 2000
# Strings are cut to their limit plus this much before redaction (a secret straddling the limit is still
# seen whole; a private key block is at most a few KB), so a megabyte of tool output costs no more than this.
_REDACT_MARGIN = 25_000
INPUT_LIMIT = 8000
_FILE_KEYS = ("file_path", "path", "notebook_path")


def parse_payload(raw: bytes) -> dict[str, Any] | None:
    import logging  # here, not at the top: the spool's hot path never parses this way

    log = logging.getLogger("hivemind_app.claude.hooks")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("hook input is not JSON (%s); ignored", exc)
        return None
    if not isinstance(payload, dict):
        log.warning("hook input is not a JSON object; ignored")
        return None
    return payload


def session_id_of(payload: dict[str, Any]) -> str | None:
    value = payload.get("session_id")
    return value if isinstance(value, str) and value.strip() else None


def redact_clipped(value: Any, limit: int) -> Any:
    """Every string inside JSON-like data redacted, then cut to `limit` (dict keys are left as they are).

    Redacted first, as far as `limit` + the redaction margin (a secret across `limit` is seen whole, and a
    megabyte costs no more than the margin), then cut to `limit`: a secret cut in two at the margin's edge,
    which the redactor may not recognise, is never kept: when the input went past the margin, the redacted
    text's last margin is dropped too (earlier secrets replaced by shorter markers move that cut secret
    left, but it stays within the margin of the end), so such a string whose earlier secrets shrank it keeps
    less than `limit` (nothing, if the redacted text is shorter than the margin), never more."""
    if isinstance(value, str):
        if len(value) <= limit + _REDACT_MARGIN:
            return redact(value)[:limit]
        redacted = redact(value[: limit + _REDACT_MARGIN])
        return redacted[: max(0, min(limit, len(redacted) - _REDACT_MARGIN))]  # never a cut counted from the end
    if isinstance(value, list):
        return [redact_clipped(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: redact_clipped(v, limit) for k, v in value.items()}
    return value


def tool_succeeded(response: Any) -> bool:
    if isinstance(response, dict):
        if response.get("success") is False or response.get("is_error") or response.get("isError"):
            return False
        if response.get("error") or response.get("interrupted"):
            return False
    return True


def touched_files(tool_input: Any) -> list[str]:
    if not isinstance(tool_input, dict):
        return []
    return [v for k in _FILE_KEYS if isinstance(v := tool_input.get(k), str) and v]
