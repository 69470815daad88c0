"""`hivemind-app mcp`: the seed's MCP tools over stdio, on the official SDK's `MCPServer`.

Importing this module loads `mcp` but not torch: the embedding model is loaded by the facade on the first
vector search (or asked of the local node), so `initialize` and `tools/list` answer at once. Nothing but
protocol goes to stdout; logs go to stderr.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from hivemind_app.claude.inject import forget_session, remember
from hivemind_app.config import load_settings
from hivemind_app.errors import HivemindError
from hivemind_app.hive import Hive
from hivemind_app.projects import current_project
from hivemind_app.records.memories import GLOBAL_TAG
from hivemind_app.records.search import SearchMode
from hivemind_app.records.sessions import Session
from hivemind_app.seed import TOOL_CACHE_TTL_S

T = TypeVar("T")
SESSION_ENV = "CLAUDE_CODE_SESSION_ID"  # Claude Code gives its MCP servers the session id its hooks get
CONFIRMATION_TTL_S = 300.0

INSTRUCTIONS = (
    "hivemind is the user's long-term memory, shared across their machines. Call memory_recall before "
    "answering questions about past work, decisions, hosts, ports or commands; call memory_store when the "
    "user says to remember something or when you learn a durable fact worth keeping."
)


@dataclass
class HiveContext:
    """What every tool call works with: one `Hive`, and the confirmation tokens handed out for clears."""

    hive: Hive
    confirmations: dict[str, tuple[str, float]] = field(default_factory=dict)
    project: str | None = None
    """The project Claude Code runs in (`CLAUDE_PROJECT_DIR`, else the server's working directory)."""
    session_id: str | None = None
    """The Claude Code session this server serves (`CLAUDE_CODE_SESSION_ID`: the hooks' `session_id`)."""

    def scope(self, project: str | None, all_projects: bool) -> tuple[str, ...] | None:
        """The projects a recall covers: the one asked for, every one, or this one (plus global memories)."""
        if all_projects:
            return None
        chosen = project or self.project
        return (chosen,) if chosen else ()


# Static resources get no Context from the SDK, so they reach the lifespan's state through this.
_running: list[HiveContext] = []


@asynccontextmanager
async def lifespan(server: MCPServer[HiveContext]) -> AsyncIterator[HiveContext]:
    hive = await anyio.to_thread.run_sync(lambda: Hive(load_settings()))
    session = os.environ.get(SESSION_ENV, "").strip() or None
    state = HiveContext(hive, project=current_project(), session_id=session)
    _running.append(state)
    try:
        yield state
    finally:
        _running.remove(state)
        hive.close()


mcp: MCPServer[HiveContext] = MCPServer("hivemind", instructions=INSTRUCTIONS, lifespan=lifespan)


def _state(ctx: Context) -> HiveContext:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, HiveContext)
    return state


async def _call(fn: Callable[[], T]) -> T:
    """Run a facade call off the event loop; its errors become tool errors the model can read."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except HivemindError as exc:
        raise ToolError(str(exc)) from exc


# -- results ----------------------------------------------------------------------------------------


class MemoryHit(BaseModel):
    id: str
    text: str
    score: float
    source: str
    tags: list[str]
    session_id: str | None
    project: str | None
    age_seconds: float
    origin_node: str


class RecallResult(BaseModel):
    query: str
    mode: str = Field(description="the mode actually used")
    fallback: str | None = Field(description="why vector search was not used, when it was not")
    results: list[MemoryHit]


class StoreResult(BaseModel):
    id: str
    created: bool = Field(description="false when the same text was already a memory (tags and source merged)")
    embedded: bool
    redacted: bool = Field(description="true when secrets (keys, tokens, passwords) were removed before storing")


class SessionState(BaseModel):
    session_id: str
    timestamp: float | None
    context: dict[str, Any]
    files: list[str]
    current_task: str


class ClearResult(BaseModel):
    cleared: bool
    message: str
    confirmation_token: str | None = None


class CacheResult(BaseModel):
    hit: bool
    output: str | None


class CachePutResult(BaseModel):
    stored: bool
    ttl_seconds: float


class ConfirmClear(BaseModel):
    confirm: bool = Field(description="Clear this session's context, files and current task?")


# -- tools ------------------------------------------------------------------------------------------

# What each tool does to the user's memory, for clients that decide what to ask the user about. None of
# them reaches outside this machine's hive (open_world_hint False).
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ADDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
EDITS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
REMOVES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
REPLACES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
"""memory_update: a second identical call fails (the memory it names is deleted by the first)."""


@mcp.tool(
    annotations=READS, description="Search the user's past notes and interactions semantically; best matches first."
)
async def memory_recall(
    query: str,
    ctx: Context,
    limit: int = 10,
    mode: SearchMode = "hybrid",
    session_id: str | None = None,
    tags: list[str] | None = None,
    since: str | None = Field(default=None, description="30m, 12h, 7d, 2w, or an ISO date"),
    project: str | None = Field(
        default=None, description="search this project's memories instead of the current project's"
    ),
    all_projects: bool = Field(default=False, description="search every project's memories"),
) -> RecallResult:
    state = _state(ctx)
    hive = state.hive

    def search() -> RecallResult:
        filters = hive.make_filters(
            session_id=session_id, tags=tags or [], since=since, projects=state.scope(project, all_projects)
        )
        result = hive.search_memory(query, limit=limit, mode=mode, filters=filters)
        return RecallResult(
            query=result.query,
            mode=result.mode,
            fallback=result.fallback,
            results=[
                MemoryHit(
                    id=hit.memory.id,
                    text=hit.memory.text,
                    score=round(hit.score, 6),
                    source=hit.memory.source,
                    tags=list(hit.memory.tags),
                    session_id=hit.memory.session_id,
                    project=hit.memory.project,
                    age_seconds=round(hit.memory.age_seconds(), 1),
                    origin_node=hit.memory.origin_node,
                )
                for hit in result.hits
            ],
        )

    return await _call(search)


@mcp.tool(
    annotations=ADDS, description="Save an important fact, decision or piece of context so it can be recalled later."
)
async def memory_store(
    text: str,
    ctx: Context,
    tags: list[str] | None = None,
    source: str | None = None,
    session_id: str | None = None,
    all_projects: bool = Field(
        default=False, description="true: recall it in every project (a general preference), not only this one"
    ),
    occurred_at: str | float | None = Field(
        default=None,
        description="when what it describes happened, if not now (an ISO date such as 2026-05-14, 3d for "
        "three days ago, or unix seconds): questions naming a time ('in May') find it by this",
    ),
) -> StoreResult:
    state = _state(ctx)
    hive = state.hive
    labels = [*(tags or []), GLOBAL_TAG] if all_projects else (tags or [])
    session = session_id or state.session_id
    stored = await _call(
        lambda: hive.store_memory(
            text, tags=labels, source=source, session_id=session, project=state.project, occurred_at=occurred_at
        )
    )
    if state.session_id:  # the model has it in front of it: the hooks need not inject it into this session
        remember(state.session_id, [stored.memory.id])
    return StoreResult(id=stored.memory.id, created=stored.created, embedded=stored.embedded, redacted=stored.redacted)


@mcp.tool(
    annotations=EDITS,
    description="Get a session's state (context, files, current task); with update, merge fields into it.",
)
async def memory_context(
    ctx: Context, session_id: str | None = None, update: dict[str, Any] | None = None
) -> SessionState:
    hive = _state(ctx).hive
    wanted = session_id or _state(ctx).session_id  # by default the Claude Code session this server serves

    def run() -> Session:
        sid = wanted or _latest_session(hive)
        return hive.set_context(sid, update) if update else hive.get_context(sid)  # the facade redacts

    session = await _call(run)
    return SessionState(
        session_id=session.session_id,
        timestamp=session.updated_at,
        context=session.context,
        files=list(session.files),
        current_task=session.current_task,
    )


def _latest_session(hive: Hive) -> str:
    sessions = hive.list_sessions(limit=1)
    if not sessions:
        raise HivemindError("No session yet: pass a session_id.")
    return sessions[0].session_id


def ask_before_clearing(session_id: str, confirm: str | None, ctx: Context) -> Elicit[ConfirmClear] | None:
    """Ask the user through elicitation when the client can be asked and no token was given."""
    capabilities = ctx.client_capabilities
    if confirm is None and capabilities is not None and capabilities.elicitation is not None:
        return Elicit(f"Clear hivemind session {session_id!r}? This cannot be undone.", ConfirmClear)
    return None


@mcp.tool(
    annotations=REMOVES,
    description="Reset a session's context. Asks the user first; without elicitation, call again with the "
    "confirmation_token the first call returned as confirm.",
)
async def memory_clear(
    session_id: str,
    ctx: Context,
    answer: Annotated[ElicitationResult[ConfirmClear], Resolve(ask_before_clearing)],
    confirm: str | None = None,
) -> ClearResult:
    state = _state(ctx)
    now = time.time()
    for token, (_, expires) in list(state.confirmations.items()):
        if expires < now:
            del state.confirmations[token]
    if confirm is not None:
        expected = state.confirmations.get(confirm)
        if expected is None or expected[0] != session_id:
            raise ToolError("That confirmation token is unknown, expired or for another session; nothing was cleared.")
        del state.confirmations[confirm]
        await _call(lambda: state.hive.clear_session(session_id))
        forget_session(session_id)
        return ClearResult(cleared=True, message=f"Session {session_id} cleared.")

    await _call(lambda: state.hive.get_context(session_id))  # validates the id
    if isinstance(answer, AcceptedElicitation) and isinstance(answer.data, ConfirmClear):
        if answer.data.confirm:
            await _call(lambda: state.hive.clear_session(session_id))
            forget_session(session_id)
            return ClearResult(cleared=True, message=f"Session {session_id} cleared, as the user confirmed.")
        return ClearResult(cleared=False, message="The user said no; nothing was cleared.")
    if not isinstance(answer, AcceptedElicitation):
        return ClearResult(cleared=False, message="The user declined; nothing was cleared.")
    # No elicitation (the resolver returned None, which the SDK hands over as accepted with no data):
    # the two-step path, a token the model must send back once the user has said yes.

    token = secrets.token_urlsafe(12)
    state.confirmations[token] = (session_id, now + CONFIRMATION_TTL_S)
    return ClearResult(
        cleared=False,
        message=f"Nothing cleared yet. Confirm with the user, then call memory_clear again with confirm={token!r} "
        f"(valid for {CONFIRMATION_TTL_S / 60:.0f} minutes).",
        confirmation_token=token,
    )


@mcp.tool(
    annotations=READS,
    description="Look up a cached tool output for these exact inputs (cached for an hour by default).",
)
async def tool_cache_get(tool: str, inputs: str, ctx: Context) -> CacheResult:
    hive = _state(ctx).hive
    output = await _call(lambda: hive.get_tool_cache(tool, inputs))
    return CacheResult(hit=output is not None, output=output)


@mcp.tool(annotations=ADDS, description="Cache a tool's output for these inputs so a repeat call can skip the work.")
async def tool_cache_put(
    tool: str, inputs: str, output: str, ctx: Context, ttl: float = TOOL_CACHE_TTL_S
) -> CachePutResult:
    hive = _state(ctx).hive
    await _call(lambda: hive.set_tool_cache(tool, inputs, output, ttl_s=ttl))
    return CachePutResult(stored=True, ttl_seconds=ttl)


class ToolSuggestion(BaseModel):
    tool: str
    arguments: dict[str, Any]


@mcp.tool(
    annotations=READS,
    description="Ask the hive's local LLM which of the given tools fits a task, and with what arguments.",
)
async def suggest_tool(task: str, tools: list[str], ctx: Context) -> ToolSuggestion:
    hive = _state(ctx).hive
    answer = await _call(lambda: hive.suggest_tool(task, tools))
    return ToolSuggestion(tool=answer["tool"], arguments=answer["arguments"])


class MemoryRecord(BaseModel):
    id: str
    text: str
    sources: list[str]
    tags: list[str]
    session_id: str | None
    project: str | None
    age_seconds: float
    origin_node: str
    deleted: bool
    occurred_at: float | None = None
    """The time it describes (unix seconds), when known."""


class ForgetResult(BaseModel):
    id: str
    forgotten: bool = Field(description="true once the memory is deleted here and queued for every node")


@mcp.tool(annotations=READS, description="Get one memory by its id (or a unique prefix of at least 4 characters).")
async def memory_get(memory_id: str, ctx: Context) -> MemoryRecord:
    hive = _state(ctx).hive
    memory = await _call(lambda: hive.get_memory(memory_id))
    return MemoryRecord(
        id=memory.id,
        text=memory.text,
        sources=list(memory.sources),
        tags=list(memory.tags),
        session_id=memory.session_id,
        project=memory.project,
        age_seconds=round(memory.age_seconds(), 1),
        origin_node=memory.origin_node,
        deleted=memory.deleted,
        occurred_at=memory.occurred_at,
    )


@mcp.tool(
    annotations=REMOVES,
    description="Forget a memory that is wrong or outdated (by id from memory_recall): it leaves every node's "
    "search; ask the user first.",
)
async def memory_forget(memory_id: str, ctx: Context) -> ForgetResult:
    hive = _state(ctx).hive
    memory = await _call(lambda: hive.delete_memory(memory_id))
    return ForgetResult(id=memory.id, forgotten=True)


class UpdateResult(BaseModel):
    id: str = Field(description="the memory that now holds the fact")
    replaced: str | None = Field(
        description="the memory it superseded (deleted everywhere); null when the text was the same"
    )
    redacted: bool


@mcp.tool(
    annotations=REPLACES,
    description="Correct or update a stored fact (by id from memory_recall): the new text replaces the old memory "
    "instead of standing beside it; the old one is deleted and named in the new one's sources.",
)
async def memory_update(memory_id: str, text: str, ctx: Context, tags: list[str] | None = None) -> UpdateResult:
    hive = _state(ctx).hive
    new, old = await _call(lambda: hive.update_memory(memory_id, text, tags or []))
    replaced = old.id if old.id != new.memory.id else None
    return UpdateResult(id=new.memory.id, replaced=replaced, redacted=new.redacted)


# -- resources --------------------------------------------------------------------------------------


@mcp.resource("hivemind://memories/recent", mime_type="application/json", description="The 20 newest memories.")
async def recent_memories() -> str:
    hive = _running[-1].hive
    memories = await _call(lambda: hive.recent_memories(20))
    return json.dumps([m.to_dict() for m in memories], ensure_ascii=False)


@mcp.resource(
    "hivemind://session/current", mime_type="application/json", description="The most recently active session."
)
async def current_session() -> str:
    hive = _running[-1].hive
    sessions = await _call(lambda: hive.list_sessions(limit=1))
    return json.dumps(sessions[0].to_dict() if sessions else None, ensure_ascii=False)


def run_stdio() -> None:
    mcp.run("stdio")


def serve_streams(stdin: Any, stdout: Any) -> None:
    """Serve over these line streams instead of the process's stdio (`claude/quickstart.py`'s, which replay
    the first message and hold back the answer to a handshake it already gave)."""
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server(anyio.wrap_file(stdin), anyio.wrap_file(stdout)) as (read, write):
            server = mcp._lowlevel_server  # what MCPServer.run_stdio_async runs, given our streams
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
