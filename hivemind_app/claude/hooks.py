"""Claude Code hooks: `hivemind-app hook EVENT` reads the hook's JSON on stdin.

A hook must never get in Claude Code's way. The events that print nothing are spooled by the console
script before this module is imported (`claude/spool.py`) and applied here later by the drainer, with the
time they happened; `SessionStart` is handled here at once (keyword search only, the embedding model is never
loaded). A hook never fails on our account: any problem is one warning on stderr and exit status 0.
Everything stored passes through the secret redactor first.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from hivemind_app.claude.payloads import (
    CONTEXT_LIMIT,
    CONTEXT_MEMORIES,
    EVENTS,
    INPUT_LIMIT,
    RESULT_LIMIT,
    TASK_LIMIT,
    clip,
    session_id_of,
    tool_succeeded,
    touched_files,
)
from hivemind_app.errors import InvalidInputError
from hivemind_app.hive import Hive
from hivemind_app.trust.redact import redact, redact_value

log = logging.getLogger(__name__)


def session_start_context(hive: Hive, payload: dict[str, Any]) -> str:
    """A few memories relevant to the working directory, bounded in size (keyword search: no model load).

    The project's directory name is searched as one phrase (`hivemind-app` matches "hivemind app" and the
    paths of files under it); with nothing found, its parent's name; with nothing at all, the newest memories.
    """
    given = payload.get("cwd")
    cwd = Path(given if isinstance(given, str) and given else os.getcwd())
    project = cwd.name or str(cwd)
    memories: list[Any] = []
    seen: set[str] = set()
    for query in dict.fromkeys(q for q in (project, f"{cwd.parent.name}/{project}") if q.strip("/")):
        try:
            hits = hive.search_memory(query, limit=CONTEXT_MEMORIES, mode="keyword").hits
        except InvalidInputError:  # a name with no words in it
            continue
        for hit in hits:
            if hit.memory.id not in seen:
                seen.add(hit.memory.id)
                memories.append(hit.memory)
        if memories:
            break
    memories = memories[:CONTEXT_MEMORIES] or hive.recent_memories(3)
    if not memories:
        return ""
    lines = [f"Relevant memories from hivemind for {project}:"]
    for memory in memories:
        line = " ".join(memory.text.split())
        lines.append(f"- {line[:300]}")
    return "\n".join(lines)[:CONTEXT_LIMIT]


def handle(hive: Hive, event: str, payload: dict[str, Any], at: float | None = None) -> str | None:
    """Apply one hook event; returns text for stdout (SessionStart's additional context) or None.

    `at` is when the event happened, for an event applied later from the spool (default: now)."""
    at = time.time() if at is None else at
    session_id = session_id_of(payload)
    if event == "SessionStart":
        if session_id:
            hive.set_context(session_id, {"context": {"cwd": payload.get("cwd"), "started_at": at}})
        context = session_start_context(hive, payload)
        if not context:
            return None
        return json.dumps({"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": context}})
    if session_id is None:
        log.warning("%s hook payload has no session_id; ignored", event)
        return None
    if event == "UserPromptSubmit":
        prompt = payload.get("prompt")
        if isinstance(prompt, str) and prompt.strip():
            hive.set_context(session_id, {"current_task": redact(clip(prompt, TASK_LIMIT))[:TASK_LIMIT]})
        return None
    if event in ("PostToolUse", "PostToolUseFailure"):
        tool = payload.get("tool_name")
        if not isinstance(tool, str) or not tool:
            log.warning("%s payload has no tool_name; ignored", event)
            return None
        raw_input = redact_value(clip(payload.get("tool_input", {}), INPUT_LIMIT))
        tool_input = raw_input if isinstance(raw_input, str) else json.dumps(raw_input, default=str, ensure_ascii=False)
        tool_input = tool_input[:INPUT_LIMIT]  # a Write's whole file content is not needed to learn from
        if event == "PostToolUse":
            response = payload.get("tool_response")
            success = tool_succeeded(response)
        else:  # newer Claude Code reports a failed tool here, with `error` instead of `tool_response`
            response = payload.get("error")
            success = False
        response = redact_value(clip(response, RESULT_LIMIT))
        result = response if isinstance(response, str) else json.dumps(response, default=str, ensure_ascii=False)
        task = hive.get_context(session_id).current_task
        hive.add_to_learning_queue(
            {
                "user_query": task,
                "tool_used": tool,
                "tool_input": tool_input,
                "result": redact(result)[:RESULT_LIMIT],
                "success": success,
                "session_id": session_id,
                "timestamp": at,
            }
        )
        files = touched_files(payload.get("tool_input"))
        if files:
            hive.set_context(session_id, {"files": files})
        return None
    if event in ("Stop", "SessionEnd"):
        hive.close_session(session_id)
        return None
    log.warning("unknown hook event %r (known: %s); ignored", event, ", ".join(EVENTS))
    return None
