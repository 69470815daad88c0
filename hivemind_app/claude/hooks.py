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
import time
from typing import Any

from hivemind_app.claude.inject import ITEM_CHARS, forget_session, prune_seen, remember, render, scope_of, seen
from hivemind_app.claude.payloads import (
    CONTEXT_MEMORIES,
    EVENTS,
    INPUT_LIMIT,
    RESULT_LIMIT,
    TASK_LIMIT,
    redact_clipped,
    session_id_of,
    tool_succeeded,
    touched_files,
)
from hivemind_app.hive import Hive
from hivemind_app.projects import current_project
from hivemind_app.records.memories import DIGEST_TAG, SUMMARY_TAG
from hivemind_app.trust.redact import redact

log = logging.getLogger(__name__)
DIGEST_CHARS = 700  # of SessionStart's budget, the last session's digest may take this much
PROMPTS_KEPT = 8  # the session's latest prompts, for its digest
PROMPT_KEPT = 300


def session_start_context(hive: Hive, payload: dict[str, Any], session_id: str | None) -> str:
    """What a session starts with, within `inject.budget_chars`: this project's last session digest (on
    `resume` and `compact`: this session's own, which PreCompact kept), then this project's newest memories,
    then global ones and those of no project; none given to this session before. Reads only, no model load."""
    budget = hive.settings.inject.budget_chars
    if budget <= 0:
        return ""
    source = payload.get("source") if isinstance(payload.get("source"), str) else "startup"
    cwd = payload.get("cwd")
    project = current_project(cwd if isinstance(cwd, str) else None)
    scope = scope_of(project)
    if session_id and source in ("clear", "compact"):  # a fresh context window: what it was given is gone
        forget_session(session_id)
    prune_seen()
    given = seen(session_id) if session_id else set()
    digests = [
        d
        for tag in (DIGEST_TAG, SUMMARY_TAG)  # a session's LLM summary, once written, replaces its digest
        for d in hive.recent_memories(20, hive.make_filters(tags=[tag], projects=scope))
        if d.project == project and d.id not in given
    ]
    digests.sort(key=lambda d: -d.created_at)
    own = [d for d in digests if d.session_id == session_id]
    others = [d for d in digests if d.session_id != session_id]
    chosen = (own if source in ("resume", "compact") else []) + others
    items: list[tuple[str, str]] = [(d.id, d.text) for d in chosen[:1]]
    recent = [
        m
        for m in hive.recent_memories(CONTEXT_MEMORIES * 4, hive.make_filters(projects=scope))
        if m.id not in given and DIGEST_TAG not in m.tags and SUMMARY_TAG not in m.tags
    ]
    recent.sort(key=lambda m: m.project != project)  # this project's first; stable: newest first within each
    items += [(m.id, m.text) for m in recent[: CONTEXT_MEMORIES * 2]]
    where = project or "this directory (no project)"
    header = f"hivemind memories for {where} (memory_get ID for details):"
    block, ids = render(header, items, budget, first_chars=DIGEST_CHARS if chosen else ITEM_CHARS)
    if session_id and ids:
        remember(session_id, ids)
    return block


def handle(hive: Hive, event: str, payload: dict[str, Any], at: float | None = None) -> str | None:
    """Apply one hook event; returns text for stdout (SessionStart's additional context) or None.

    `at` is when the event happened, for an event applied later from the spool (default: now)."""
    at = time.time() if at is None else at
    session_id = session_id_of(payload)
    if event == "SessionStart":
        if session_id:
            project = _project_of(payload)
            hive.set_context(session_id, {"context": {"cwd": payload.get("cwd"), "started_at": at, "project": project}})
        context = session_start_context(hive, payload, session_id)
        if not context:
            return None
        return json.dumps({"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": context}})
    if session_id is None:
        log.warning("%s hook payload has no session_id; ignored", event)
        return None
    if event == "UserPromptSubmit":
        prompt = payload.get("prompt")
        if isinstance(prompt, str) and prompt.strip():
            task = redact_clipped(prompt, TASK_LIMIT)
            known = hive.get_context(session_id).context
            recorded = known.get("prompts")
            prompts = [p for p in recorded if isinstance(p, str)] if isinstance(recorded, list) else []
            update: dict[str, Any] = {"prompts": [*prompts, task[:PROMPT_KEPT]][-PROMPTS_KEPT:]}
            if not known.get("task"):  # the first prompt: the session's task, for its digest
                update["task"] = task
            if not known.get("project"):  # no SessionStart seen: the project the prompt's hook found
                project = payload.get("project") if "project" in payload else _project_of(payload)
                if isinstance(project, str) and project:
                    update["project"] = project
            hive.set_context(session_id, {"current_task": task, "context": update})
        return None
    if event in ("PostToolUse", "PostToolUseFailure"):
        tool = payload.get("tool_name")
        if not isinstance(tool, str) or not tool:
            log.warning("%s payload has no tool_name; ignored", event)
            return None
        raw_input = redact_clipped(payload.get("tool_input", {}), INPUT_LIMIT)
        tool_input = raw_input if isinstance(raw_input, str) else json.dumps(raw_input, default=str, ensure_ascii=False)
        tool_input = tool_input[:INPUT_LIMIT]  # a Write's whole file content is not needed to learn from
        if event == "PostToolUse":
            response = payload.get("tool_response")
            success = tool_succeeded(response)
        else:  # newer Claude Code reports a failed tool here, with `error` instead of `tool_response`
            response = payload.get("error")
            success = False
        response = redact_clipped(response, RESULT_LIMIT)
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
    if event in ("Stop", "SessionEnd", "PreCompact"):
        if event != "PreCompact":
            hive.close_session(session_id)
        hive.digest_session(session_id, _outcome(event, payload))
        return None
    log.warning("unknown hook event %r (known: %s); ignored", event, ", ".join(EVENTS))
    return None


def _project_of(payload: dict[str, Any]) -> str | None:
    """The project of a payload handled at once (not spooled: this process is the hook's own)."""
    cwd = payload.get("cwd")
    return current_project(cwd if isinstance(cwd, str) else None)


def _outcome(event: str, payload: dict[str, Any]) -> str:
    """How the session stands, for its digest."""
    detail = next((v for k in ("reason", "trigger") if isinstance(v := payload.get(k), str) and v), "")
    if event == "SessionEnd":
        return f"ended ({detail})" if detail else "ended"
    if event == "PreCompact":
        return f"context compacted ({detail})" if detail else "context compacted"
    return "in progress (last reply finished)"

