"""The local LLM beside the write path: query rewrites, tool suggestions, completions for summaries.

Invariant: no write waits on it. Every caller has a path for `LLMUnavailableError` (no model installed,
no infer node): a search without its rewrite, a summary made of the facts alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hivemind_app.config import Settings
from hivemind_app.content import MAX_TOOLS, check_count, check_text
from hivemind_app.errors import InvalidInputError
from hivemind_app.ml.llm import LLMUnavailableError, LocalLLM, RemoteLLM, clean_reformulation, reformulation_prompt
from hivemind_app.ml.remote import local_node_health
from hivemind_app.services.notices import Notices


class LanguageService:
    def __init__(self, settings: Settings, notices: Notices, llm: LocalLLM | RemoteLLM | None = None) -> None:
        self.settings = settings
        self.notices = notices
        self._llm = llm

    def client(self) -> LocalLLM | RemoteLLM:
        """The local node's LLM when a node with the infer role runs here, else one in-process."""
        if self._llm is None:
            node = self.settings.node
            health = local_node_health(node.local_url, node.hive)
            url = node.local_url if health and health.get("llm_model") else None
            infer = self.settings.infer
            self._llm = RemoteLLM(url) if url else LocalLLM(infer.model_path, infer.n_ctx, infer.threads)
        return self._llm

    def suggest_tool(self, task: str, tools: Sequence[str]) -> dict[str, Any]:
        """The local LLM's pick of a tool from `tools` for `task`, with arguments (always valid JSON)."""
        if not isinstance(task, str) or not task.strip():
            raise InvalidInputError("The task is empty; describe what should be done.")
        if isinstance(tools, str) or not tools or not all(isinstance(t, str) for t in tools):
            raise InvalidInputError("tools must be a non-empty list of tool names.")
        check_count(list(tools), "tool names", MAX_TOOLS)
        return self.client().suggest_tool(check_text(task, 10_000, "the task"), list(tools))

    def reformulate(self, query: str) -> str | None:
        """The local LLM's rewrite of `query`, or None when there is no LLM or no different rewrite."""
        try:
            rewrite = clean_reformulation(self.client().complete(reformulation_prompt(query), max_tokens=48).text)
        except LLMUnavailableError as exc:
            self.notices.fallback(f"Query reformulation is unavailable: {exc}")
            return None
        return rewrite if rewrite and rewrite.lower() != query.lower() else None

    def summarise(self, prompt: str) -> str:
        """A short completion for a session summary ('' when no LLM is available)."""
        try:
            return " ".join(self.client().complete(prompt, max_tokens=96).text.split())
        except LLMUnavailableError as exc:
            self.notices.fallback(f"Sessions are summarised without an LLM: {exc}")
            return ""
