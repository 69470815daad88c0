"""A session's digest, written without a language model: what was asked, touched, run, what failed and what
fixed it, and how it ended.

Deterministic: the same session and learning-queue entries give the same text, so a digest written again
unchanged is the same memory (its id is the text's). Every part is bounded (the whole stays under
`DIGEST_CHARS`), and everything in it was redacted when it was recorded (session fields and queue entries
pass the redactor on the way in); it passes the redactor once more when it is stored, like any memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from hivemind_app.records.learning import LearningEntry
from hivemind_app.records.sessions import Session

DIGEST_CHARS = 1500
_FIELD = 200
_COMMANDS = 8
_FILES = 12
_FAILURES = 4


def _short(text: str, limit: int = _FIELD) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _what(entry: LearningEntry) -> str:
    """A tool use in a few words: a command's text, a file's path, or the tool's name."""
    try:
        data = json.loads(entry.tool_input)
    except ValueError:
        data = entry.tool_input
    if isinstance(data, dict):
        for key in ("command", "file_path", "path", "notebook_path", "pattern", "url", "query"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return f"{entry.tool_used} `{_short(value, 120)}`"
    return entry.tool_used


def digest_text(session: Session, entries: Sequence[LearningEntry], outcome: str, project: str | None) -> str:
    """The digest of `session` with its tool uses (oldest first); `outcome`: how it stands (e.g. "ended")."""
    context = session.context
    first = context.get("task") if isinstance(context.get("task"), str) else ""
    task = first or session.current_task
    day = time.strftime("%Y-%m-%d", time.localtime(session.updated_at or time.time()))
    lines = [f"Session {session.session_id[:12]} on {day}" + (f" in {project}" if project else "") + f": {outcome}."]
    lines.append(f"Task: {_short(task) if task else '(none recorded)'}")
    recorded = context.get("prompts")
    prompts = [p for p in recorded if isinstance(p, str)] if isinstance(recorded, list) else []
    later = [p for p in prompts if p != task][-3:]
    if later:
        lines.append("Then asked: " + " | ".join(_short(p, 120) for p in later))
    if session.files:
        more = f" (+{len(session.files) - _FILES} more)" if len(session.files) > _FILES else ""
        lines.append("Files touched: " + ", ".join(session.files[:_FILES]) + more)
    commands = [_short(json.loads(e.tool_input).get("command", ""), 120) for e in entries if _is_bash(e)]
    if commands:
        shown = list(dict.fromkeys(c for c in commands if c))[-_COMMANDS:]
        lines.append("Commands run: " + "; ".join(f"`{c}`" for c in shown))
    failures = []
    for i, entry in enumerate(entries):
        if entry.success:
            continue
        fixed = any(later.success and _what(later) == _what(entry) for later in entries[i + 1 :])
        result = _short(_error_of(entry.result), 120)
        failures.append(f"{_what(entry)} failed ({result or 'no output'})" + ("; later succeeded" if fixed else ""))
    if failures:
        lines.append("Failures: " + " | ".join(failures[-_FAILURES:]))
    tools = sorted({e.tool_used for e in entries})
    if tools:
        failed = sum(not e.success for e in entries)
        lines.append(f"Tools: {', '.join(tools)} ({len(entries)} uses, {failed} failed)")
    text = "\n".join(lines)
    return text if len(text) <= DIGEST_CHARS else text[: DIGEST_CHARS - 3] + "..."


def _error_of(result: str) -> str:
    """What a failed tool said: its error or stderr when the result is a tool response's JSON, else the last
    line of its output."""
    try:
        data = json.loads(result)
    except ValueError:
        data = result
    if isinstance(data, dict):
        for key in ("error", "stderr", "message", "stdout"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                data = value
                break
    text = data if isinstance(data, str) else ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _is_bash(entry: LearningEntry) -> bool:
    if entry.tool_used != "Bash":
        return False
    try:
        data = json.loads(entry.tool_input)
    except ValueError:
        return False
    return isinstance(data, dict) and isinstance(data.get("command"), str)
