"""A scripted stand-in for the Anthropic Messages API on loopback, for driving the real `claude -p`.

Claude Code (`ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`) POSTs `/v1/messages?beta=true` with `"stream": true`
and reads Anthropic server-sent events. This server answers the *main* conversation from a script (a list of
turns: a text reply, one or more tool_use blocks, or an HTTP error) and anything else with something harmless:
a compaction request (`/compact`) gets a summary in the <analysis>/<summary> form Claude Code expects, other
/v1/messages requests a short text, `count_tokens` a count, unknown paths a 404 (2.1.328 in `-p` mode with
nonessential traffic off sends nothing but main requests, plus the compaction one on /compact). Every request is
recorded, so a test can assert what Claude Code sent: the system prompt, hook context injected into the messages
(as `role: "system"` messages), tool results.

    script = [*mcp_tool("hivemind", "memory_store", {"text": "staging DB is on 5433"}), text("Stored.")]
    with MessagesAPI(script) as api:
        run = run_claude("remember that ...", api=api, ...)
    api.main_requests[-1].tool_results()   # what the MCP tool returned, as Claude Code sent it back
    assert api.exhausted == 0              # Claude Code asked for no more turns than the script had

MCP tools are deferred in Claude Code 2.1.x: the model must first call `ToolSearch` with
`{"query": "select:mcp__<server>__<tool>", "max_results": 5}` (it waits for a server still connecting);
`mcp_tool()` expresses that as the two turns. Servers of a plugin are named `plugin:<plugin>:<server>`, their
tools `mcp__plugin_<plugin>_<server>__<tool>` (`mcp_tool(..., plugin="name")`).

docs/claude-code-internals.md has the wire format and what Claude Code sends, measured.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# ---------------------------------------------------------------------------------------------------------- script


@dataclass(frozen=True)
class ToolCall:
    """One tool_use block: `name` as Claude Code knows the tool (`Bash`, `ToolSearch`, `mcp__hivemind__memory_get`)."""

    name: str
    input: dict[str, Any]
    id: str | None = None  # None: the server makes one (toolu_standin_N)


@dataclass(frozen=True)
class Turn:
    """One assistant reply of the main conversation: text, tool calls, or both (text first)."""

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    error_status: int | None = None  # answer with this HTTP status and an Anthropic error body instead
    error_type: str = "api_error"

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_calls else "end_turn"


def text(reply: str) -> Turn:
    """A plain text answer; it ends the model's turn (stop_reason end_turn)."""
    return Turn(text=reply)


def error(status: int = 500, error_type: str = "api_error", message: str = "stand-in error") -> Turn:
    """An HTTP error for one main request (e.g. 529 overloaded_error); Claude Code retries, taking the next turn."""
    return Turn(text=message, error_status=status, error_type=error_type)


def tool_use(name: str, input: dict[str, Any] | None = None, *more: ToolCall, preamble: str | None = None) -> Turn:
    """A reply calling tool `name` with `input` (and any `more` calls in the same reply)."""
    return Turn(text=preamble, tool_calls=(ToolCall(name, dict(input or {})), *more))


def mcp_tool_name(server: str, tool: str, plugin: str | None = None) -> str:
    """The name Claude Code gives an MCP tool: mcp__<server>__<tool>; for a plugin's server the server part is
    `plugin:<plugin>:<server>` with every character outside [A-Za-z0-9_-] made `_`."""
    if plugin is not None:
        server = f"plugin:{plugin}:{server}"
    return f"mcp__{re.sub(r'[^A-Za-z0-9_-]', '_', server)}__{tool}"


def tool_search(*names: str, max_results: int = 5) -> Turn:
    """The ToolSearch call that loads deferred tools' schemas (`select:` takes a comma-separated list)."""
    return tool_use("ToolSearch", {"query": "select:" + ",".join(names), "max_results": max_results})


def mcp_tool(server: str, tool: str, input: dict[str, Any] | None = None, plugin: str | None = None) -> list[Turn]:
    """Call MCP tool `tool` of server `server` (of plugin `plugin`): ToolSearch to load it, then the call itself
    (two turns, so two main requests)."""
    name = mcp_tool_name(server, tool, plugin)
    return [tool_search(name), tool_use(name, input)]


ScriptItem = Turn | Iterable[Turn]


def flatten(script: Iterable[ScriptItem]) -> list[Turn]:
    turns: list[Turn] = []
    for item in script:
        if isinstance(item, Turn):
            turns.append(item)
        else:
            turns.extend(item)
    return turns


# --------------------------------------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """A request as the stand-in received it, and how it was classified and answered."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON (None when empty or not JSON)
    raw_body: bytes
    kind: str = ""  # main | compact | side | count_tokens | other (see classify)
    answer: str = ""  # what was sent back, in words

    @property
    def model(self) -> str:
        return str(self.body.get("model", "")) if isinstance(self.body, dict) else ""

    @property
    def stream(self) -> bool:
        return bool(isinstance(self.body, dict) and self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []

    @property
    def tool_names(self) -> list[str]:
        if isinstance(self.body, dict) and isinstance(self.body.get("tools"), list):
            return [str(t.get("name")) for t in self.body["tools"] if isinstance(t, dict)]
        return []

    def system_text(self) -> str:
        """The system prompt as one string (`system` is a string or a list of text blocks)."""
        system = self.body.get("system") if isinstance(self.body, dict) else None
        return _text_of(system)

    def system_messages(self) -> list[str]:
        """The texts of the `role: "system"` messages: where Claude Code puts hook output (SessionStart and
        UserPromptSubmit context, PostToolUse additionalContext, ...), the environment block and deferred tools."""
        return [_text_of(m.get("content")) for m in self.messages if m.get("role") == "system"]

    def messages_text(self) -> str:
        """Every text in the messages (text blocks, tool results, strings), joined by newlines."""
        return "\n".join(_text_of(m.get("content")) for m in self.messages)

    def all_text(self) -> str:
        """System prompt and messages together: where to look for injected hook context."""
        return self.system_text() + "\n" + self.messages_text()

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool_result blocks of the last user message (what the tools of the previous turn returned)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
                return []
        return []


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        if value.get("type") == "text":
            return str(value.get("text", ""))
        if value.get("type") == "tool_result":
            return _text_of(value.get("content"))
        if value.get("type") == "tool_use":
            return json.dumps(value.get("input"), sort_keys=True)
        return ""
    return str(value)


# ------------------------------------------------------------------------------------------------- classification


def classify(request: RecordedRequest) -> str:
    """main: the conversation the script answers; compact: the summary request of a compaction; side: anything
    else sent to /v1/messages; count_tokens; other (404).

    Claude Code's main requests carry the tool list (ToolSearch, Bash, ...) and stream (a retry after an error may
    not stream: it is still main and gets the next turn as one JSON body); a compaction request looks
    the same but its last user text asks for a summary; side requests (session title, small-model queries: none
    are made by 2.1.328 in `-p` mode with nonessential traffic off) carry no tools or are not streamed.
    """
    if request.method != "POST":
        return "other"
    if request.path.endswith("/count_tokens"):
        return "count_tokens"
    if not request.path.endswith("/v1/messages"):
        return "other"
    if not isinstance(request.body, dict):
        return "other"
    if _last_user_text(request).lstrip().startswith(COMPACT_MARKER) or COMPACT_TASK in _last_user_text(request):
        return "compact"
    if request.tool_names:
        return "main"
    return "side"


# The instruction Claude Code appends (as the last user text) when it compacts the conversation (/compact, auto).
COMPACT_MARKER = "CRITICAL: Respond with TEXT ONLY. Do NOT call any tools."
COMPACT_TASK = "create a detailed summary of the conversation so far"


def _last_user_text(request: RecordedRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


# ------------------------------------------------------------------------------------------------------ responses


def _usage(input_tokens: int = 10, output_tokens: int = 1) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def content_blocks(turn: Turn, ids: Iterator[int]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if turn.text is not None:
        blocks.append({"type": "text", "text": turn.text})
    for call in turn.tool_calls:
        tool_id = call.id or f"toolu_standin_{next(ids):04d}"
        blocks.append({"type": "tool_use", "id": tool_id, "name": call.name, "input": call.input})
    return blocks


def message_json(message_id: str, model: str, blocks: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    """A complete (non-streamed) Messages API response body."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(output_tokens=max(1, sum(len(json.dumps(b)) for b in blocks) // 4)),
    }


def sse_events(message_id: str, model: str, blocks: list[dict[str, Any]], stop_reason: str) -> bytes:
    """The same message as Anthropic server-sent events, the way the API streams it."""
    out: list[str] = []

    def event(name: str, data: dict[str, Any]) -> None:
        out.append(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n")

    start = message_json(message_id, model, [], stop_reason)
    start["stop_reason"] = None
    start["usage"] = _usage(output_tokens=1)
    event("message_start", {"type": "message_start", "message": start})
    event("ping", {"type": "ping"})
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            event("content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "text", "text": ""}})
            event("content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": "text_delta", "text": block["text"]}})
        else:
            event("content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "tool_use", "id": block["id"],
                                                            "name": block["name"], "input": {}}})
            event("content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": "input_json_delta",
                                                    "partial_json": json.dumps(block["input"])}})
        event("content_block_stop", {"type": "content_block_stop", "index": index})
    output_tokens = max(1, sum(len(json.dumps(b)) for b in blocks) // 4)
    event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                            "usage": {"output_tokens": output_tokens}})
    event("message_stop", {"type": "message_stop"})
    return "".join(out).encode()


# --------------------------------------------------------------------------------------------------------- server


@dataclass
class MessagesAPI:
    """The stand-in server. Use as a context manager (or start()/stop()); `base_url` goes to ANTHROPIC_BASE_URL.

    script: the main conversation's replies, in order (Turns, or lists of Turns such as `mcp_tool(...)` returns).
    When the script runs out, main requests get `default_reply` (and `exhausted` counts them), so a run that makes
    one request more than planned still ends instead of hanging.
    side_reply: the text for side requests (session titles, small-model queries). Requests that ask for JSON
    (a `output_format`/`json_schema`, or "JSON" in the system prompt) get `side_json` serialised instead.
    compact_summary: what a compaction request (`/compact`, auto-compact) gets, inside the <analysis>/<summary>
    blocks Claude Code expects (without them it asks again); it is what PostCompact's `compact_summary` carries.
    """

    script: Iterable[ScriptItem] = ()
    default_reply: str = "(script exhausted)"
    side_reply: str = "Stand-in session"
    side_json: dict[str, Any] = field(default_factory=lambda: {"title": "Stand-in session"})
    compact_summary: str = "1. Primary Request and Intent: stand-in compaction summary."
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self.turns: list[Turn] = flatten(self.script)
        self.requests: list[RecordedRequest] = []
        self.exhausted = 0
        self._next_turn = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> MessagesAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the records are the log
                pass

            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

            def do_HEAD(self) -> None:
                api._handle(self, "HEAD")

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="messages-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MessagesAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- what happened

    def of_kind(self, kind: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == kind]

    @property
    def main_requests(self) -> list[RecordedRequest]:
        return self.of_kind("main")

    @property
    def side_requests(self) -> list[RecordedRequest]:
        return self.of_kind("side")

    @property
    def remaining(self) -> int:
        """Script turns not yet served."""
        with self._lock:
            return len(self.turns) - self._next_turn

    def summary(self) -> list[str]:
        """One line per request: kind, method, path, model, answer (for failure messages)."""
        with self._lock:
            return [f"{r.kind:12} {r.method} {r.path} model={r.model} stream={r.stream} -> {r.answer}"
                    for r in self.requests]

    # -- handling

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        if handler.headers.get("content-encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(
            method=method,
            path=split.path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            raw_body=raw,
        )
        record.kind = classify(record)
        status, content_type, payload = self._answer(record)
        with self._lock:
            self.requests.append(record)
        handler.send_response(status)
        handler.send_header("content-type", content_type)
        handler.send_header("content-length", str(len(payload)))
        handler.send_header("request-id", f"req_standin_{len(self.requests):04d}")
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(payload)

    def _answer(self, record: RecordedRequest) -> tuple[int, str, bytes]:
        if record.kind == "count_tokens":
            tokens = max(1, len(record.raw_body) // 4)
            record.answer = f"input_tokens={tokens}"
            return 200, "application/json", json.dumps({"input_tokens": tokens}).encode()
        if record.kind == "other":
            record.answer = "404"
            error = {"type": "error", "error": {"type": "not_found_error", "message": f"no {record.path} here"}}
            return 404, "application/json", json.dumps(error).encode()
        if record.kind == "main":
            with self._lock:
                if self._next_turn < len(self.turns):
                    turn = self.turns[self._next_turn]
                    self._next_turn += 1
                else:
                    turn = Turn(text=self.default_reply)
                    self.exhausted += 1
        elif record.kind == "compact":
            turn = Turn(text=f"<analysis>Stand-in analysis.</analysis>\n<summary>{self.compact_summary}</summary>")
        else:
            turn = Turn(text=self._side_text(record))
        if turn.error_status is not None:
            record.answer = f"{turn.error_status} {turn.error_type}"
            body = {"type": "error", "error": {"type": turn.error_type, "message": turn.text or ""}}
            return turn.error_status, "application/json", json.dumps(body).encode()
        blocks = content_blocks(turn, self._ids)
        message_id = f"msg_standin_{next(self._ids):04d}"
        model = record.model or "claude-standin"
        record.answer = ", ".join(
            f"text {b['text'][:40]!r}" if b["type"] == "text" else f"tool_use {b['name']} {json.dumps(b['input'])[:60]}"
            for b in blocks
        )
        if record.stream:
            return 200, "text/event-stream", sse_events(message_id, model, blocks, turn.stop_reason)
        return 200, "application/json", json.dumps(message_json(message_id, model, blocks, turn.stop_reason)).encode()

    def _side_text(self, record: RecordedRequest) -> str:
        body = record.body if isinstance(record.body, dict) else {}
        config = body.get("output_config")
        structured = body.get("output_format") or (config.get("format") if isinstance(config, dict) else None)
        wants_json = bool(structured) or "json" in record.system_text().lower()
        return json.dumps(self.side_json) if wants_json else self.side_reply
