"""The seed's learning queue (interactions for the trainer) and tool-output cache.

Invariants: an interaction is checked and redacted whole before it is queued; the tool cache is the hive's
(Redis) first and the local copy answers whenever the hub does not.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from hivemind_app.config import Settings
from hivemind_app.content import check_label, check_text
from hivemind_app.errors import InvalidInputError
from hivemind_app.records.learning import LearningEntry
from hivemind_app.seed import TOOL_CACHE_TTL_S
from hivemind_app.services.sync import SyncService
from hivemind_app.store.local_state import LocalState
from hivemind_app.trust.redact import redact

TOOL_CACHE_MAX_TTL_S = 7 * 86400


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def tool_key(tool: str, inputs: str) -> tuple[str, str]:
    """(tool, sha256 of its inputs): the cache key, the seed's `tool:{name}:{hash}`."""
    tool = check_label(tool, "the tool name")
    if not isinstance(inputs, str):
        raise InvalidInputError("inputs must be a string (serialise structured inputs as JSON).")
    return tool, hashlib.sha256(inputs.encode("utf-8", "surrogatepass")).hexdigest()


class QueueService:
    def __init__(self, settings: Settings, local: LocalState, sync: SyncService) -> None:
        self.settings = settings
        self.local = local
        self.sync = sync

    def add_interaction(self, interaction: dict[str, Any]) -> int:
        """Record one interaction (user_query, tool_used, result, success) for the trainer."""
        entry = self._entry(interaction)
        entry_id = self.local.add_learning(entry)
        self.sync.after_write()
        return entry_id

    def _entry(self, interaction: object) -> LearningEntry:
        if not isinstance(interaction, dict):
            raise InvalidInputError("An interaction must be a JSON object.")
        query = interaction.get("user_query", "")
        tool = interaction.get("tool_used")
        success = interaction.get("success", True)
        if not isinstance(tool, str) or not tool.strip():
            raise InvalidInputError("tool_used must be a non-empty string.")
        if not isinstance(query, str):
            raise InvalidInputError("user_query must be a string.")
        if not isinstance(success, bool):
            raise InvalidInputError("success must be true or false.")
        tool_input = redact(_as_text(interaction.get("tool_input", "")))
        result = redact(_as_text(interaction.get("result", "")))
        query = redact(query)
        limit = self.settings.store.max_text_bytes
        for name, value in (("user_query", query), ("tool_input", tool_input), ("result", result)):
            if len(value.encode("utf-8", "replace")) > limit:
                raise InvalidInputError(f"{name} is over the {limit:,}-byte limit.")
        session_id = interaction.get("session_id")
        return LearningEntry(
            user_query=query,
            tool_used=redact(tool.strip()),
            tool_input=tool_input,
            result=result,
            success=success,
            session_id=check_label(session_id, "the session id") if session_id else None,
            timestamp=float(interaction.get("timestamp") or time.time()),
        )

    def entries(self, limit: int = 100) -> list[LearningEntry]:
        """This node's learning queue as stored (checked and redacted), newest first."""
        return self.local.learning_entries(limit)

    def get_tool_output(self, tool: str, inputs: str) -> str | None:
        """The seed's cache lives in Redis (shared by the hive); the local copy answers when it is away."""
        key = tool_key(tool, inputs)
        hub = self.sync.hub
        if hub is not None and hub.should_try():
            try:
                found = hub.get_tool_output(*key)
            except Exception:  # any hub failure: the local copy answers, the next sync reports the outage
                found = None
            if found is not None:
                return found
        return self.local.get_tool_output(*key)

    def set_tool_output(self, tool: str, inputs: str, output: str, ttl_s: float = float(TOOL_CACHE_TTL_S)) -> None:
        key = tool_key(tool, inputs)
        output = check_text(output, self.settings.store.max_text_bytes, "the tool output") if output else output
        if not isinstance(output, str):
            raise InvalidInputError("output must be a string.")
        output = redact(output)  # a cached output is shared with every node through Redis
        if not 0 < ttl_s <= TOOL_CACHE_MAX_TTL_S:
            raise InvalidInputError("ttl must be between 1 second and 7 days.")
        self.local.put_tool_output(*key, output, ttl_s)
        self.sync.after_write()
