"""The seed's session context (get/set/clear), session conflicts, and summaries of closed sessions.

Invariants: everything stored in a session passes the redactor first; an update is checked whole (types,
plain JSON, size) before anything is written; a closed session is summarised once per closing, and a
newer summary replaces the older one instead of stacking beside it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hivemind_app.config import Settings
from hivemind_app.content import check_label
from hivemind_app.errors import InvalidInputError
from hivemind_app.records.learning import LearningEntry
from hivemind_app.records.memories import DIGEST_TAG, SUMMARY_TAG, MemoryDraft, SearchFilters, StoredMemory
from hivemind_app.records.sessions import Session
from hivemind_app.services.digest import digest_text
from hivemind_app.services.language import LanguageService
from hivemind_app.services.memories import MemoryService
from hivemind_app.services.sync import SyncService
from hivemind_app.store.local_state import LocalState
from hivemind_app.trust.redact import redact, redact_value

# A session is summarised once it has been closed this long (Claude Code closes it after every reply).
SUMMARY_IDLE_S = 600.0


def _checked_update(update: object) -> tuple[str | None, list[str] | None, dict[str, Any]]:
    """(current_task, files, context) from a caller's update, types checked, nothing redacted yet."""
    if not isinstance(update, dict):
        raise InvalidInputError("The session update must be a JSON object.")
    rest = dict(update)
    task = rest.pop("current_task", None)
    files = rest.pop("files", None)
    context = rest.pop("context", {})
    if task is not None and not isinstance(task, str):
        raise InvalidInputError("current_task must be a string.")
    if files is not None and (not isinstance(files, list) or not all(isinstance(f, str) for f in files)):
        raise InvalidInputError("files must be a list of paths (strings).")
    if not isinstance(context, dict):
        raise InvalidInputError("context must be a JSON object.")
    return task, files, {**context, **rest}


class SessionService:
    def __init__(
        self,
        settings: Settings,
        local: LocalState,
        memories: MemoryService,
        language: LanguageService,
        sync: SyncService,
    ) -> None:
        self.settings = settings
        self.local = local
        self.memories = memories
        self.language = language
        self.sync = sync

    def get(self, session_id: str) -> Session:
        session_id = check_label(session_id, "the session id")
        self.sync.before_read()
        return self.local.get_session(session_id) or Session(session_id)

    def set(self, session_id: str, update: dict[str, Any]) -> Session:
        """Merge `update` into the session: `current_task` replaces, `files` adds, anything else joins `context`."""
        session_id = check_label(session_id, "the session id")
        task, files, context = _checked_update(update)
        context = redact_value(context)
        task = redact(task) if task is not None else None
        files = [redact(f) for f in files] if files is not None else None
        try:
            size = len(json.dumps(context)) + len(task or "") + len(json.dumps(files or []))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"The session update is not plain JSON data: {exc}.") from exc
        limit = self.settings.store.max_text_bytes
        if size > limit:
            raise InvalidInputError(f"The session update is {size:,} bytes, over the {limit:,}-byte limit.")
        session = self.local.update_session(session_id, context=context, files=files, current_task=task)
        self.sync.after_write()
        return session

    def close(self, session_id: str) -> Session:
        closed = self.local.update_session(check_label(session_id, "the session id"), closed=True)
        self.sync.after_write()
        return closed

    def recent(self, limit: int = 100) -> list[Session]:
        """Sessions touched in the last seven days, most recent first."""
        return self.local.list_sessions(limit)

    def clear(self, session_id: str) -> None:
        self.local.clear_session(check_label(session_id, "the session id"))
        self.sync.after_write()

    def conflicts(self, sync: bool = True) -> dict[str, dict[str, Any]]:
        """Sessions edited on two nodes while apart: {session: {winner, loser}}, until resolved."""
        hub = self.sync.require_hub()
        if sync:
            self.sync.sync()
        return hub.replica.conflicts()

    def resolve_conflict(self, session_id: str, keep: str) -> dict[str, Any]:
        """Keep "A" (the winning edit) or "B" (the other one, written again as the newest edit)."""
        if keep not in ("A", "B"):
            raise InvalidInputError("keep must be A (the winner) or B (the other edit).")
        return self.sync.require_hub().resolve_conflict(check_label(session_id, "the session id"), keep)

    def summarise_closed(self, idle_s: float = SUMMARY_IDLE_S, limit: int = 10) -> list[StoredMemory]:
        """Turn sessions closed for `idle_s` into memories: the task, files and tools used, and the LLM's summary.

        The facts are written out whatever the LLM says, so even a poor summary leaves a useful memory. A
        session reopened and closed again gets a fresh summary that replaces its previous one.
        """
        stored = []
        for session in self.local.sessions_to_summarise(idle_s, limit):
            source = f"session:{session.session_id}"
            previous = self.memories.recent(10, SearchFilters(source=source, tags=(SUMMARY_TAG,)))
            text = self._summary_text(session, self.local.session_entries(session.session_id))
            project = _project_of(session)
            # it describes the session, which may have closed long before this node summarised it (it was off)
            draft = MemoryDraft(
                text,
                tags=[SUMMARY_TAG],
                source=source,
                session_id=session.session_id,
                project=project,
                occurred_at=session.closed_at,
            )
            written = self.memories.store_many([draft])[0]
            previous += self.memories.recent(10, SearchFilters(source=source, tags=(DIGEST_TAG,)))  # replaced too
            for old in previous:
                if old.id != written.memory.id:
                    self.memories.delete(old.id)
            stored.append(written)
            self.local.mark_summarised(session.session_id)
        return stored

    def digest(self, session_id: str, outcome: str) -> StoredMemory | None:
        """Store the session's deterministic digest (no LLM), replacing its previous one; None for a session
        with nothing recorded yet. A digest whose text has not changed is not written again (Stop comes after
        every reply: a rewrite would give the memory a new version, and the hub a push, each time); it is
        returned as it is (`created` and `embedded` False: nothing was written)."""
        session = self.get(session_id)
        entries = self.local.session_entries(session.session_id)
        if not (session.current_task or session.files or entries):
            return None
        project = _project_of(session)
        source = f"session:{session.session_id}"
        previous = self.memories.recent(10, SearchFilters(source=source, tags=(DIGEST_TAG,)))
        text = digest_text(session, entries, outcome, project)
        draft = MemoryDraft(text, tags=[DIGEST_TAG], source=source, session_id=session.session_id, project=project)
        unchanged = [m for m in previous if m.id == self.memories.prepare(draft).id]
        if unchanged and len(previous) == 1:
            return StoredMemory(memory=unchanged[0], created=False, embedded=False)
        written = self.memories.store_many([draft])[0]
        for old in previous:
            if old.id != written.memory.id:
                self.memories.delete(old.id)
        return written

    def _summary_text(self, session: Session, entries: list[LearningEntry]) -> str:
        tools = sorted({e.tool_used for e in entries})
        failures = sum(not e.success for e in entries)
        facts = [f"Task: {session.current_task or '(none recorded)'}"]
        if session.files:
            facts.append("Files: " + ", ".join(session.files[:20]))
        if tools:
            facts.append(f"Tools: {', '.join(tools)} ({len(entries)} uses, {failures} failed)")
        summary = ""
        if session.current_task or entries:
            prompt = "Summarise this coding session in two sentences for the developer's notes.\n" + "\n".join(facts)
            summary = self.language.summarise(prompt)
        day = time.strftime("%Y-%m-%d", time.localtime(session.closed_at or session.updated_at or time.time()))
        headline = f"Coding session {session.session_id[:12]} on {day}." + (f" {summary}" if summary else "")
        return "\n".join([headline, *facts])


def _project_of(session: Session) -> str | None:
    """The project the hooks recorded for the session at its start (None when none was)."""
    project = session.context.get("project")
    return project if isinstance(project, str) and project else None
