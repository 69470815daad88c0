"""What the hooks add to a Claude Code session: a few relevant memories, within a budget, each once.

- Every item is one line, `- [id12] text`, cut to fit: the model asks `memory_get` for the rest. The whole
  block stays within `inject.budget_chars` (SessionStart's and each prompt's).
- Nothing is injected twice in one session: the ids already given are kept in `<data dir>/injected/`, one
  0600 file per session (named by a hash of its id), read and extended by SessionStart and every prompt.
- A prompt gets memories only when they clear `inject.prompt_min_relevance` (`store/peek.py` scores them);
  an unrelated prompt gets nothing at all, not even a header.
- Only this project's memories, global ones and those of no project are candidates (`projects.py`).
- The prompt is redacted before it is used as a query, and never written here (the spool keeps it, redacted).

The prompt path runs on Claude Code's hot path, before the store or pydantic are imported: this module uses
the stdlib, the redactor and `projects` only; the lookup itself is handed in (`entry.py` wires
`store.peek.prompt_matches`, which front ends may not import).
"""

from __future__ import annotations

import json
import os
import sys

from hivemind_app.claude.payloads import redact_clipped, session_id_of
from hivemind_app.claude.spool import data_path, settings_file
from hivemind_app.lighthash import sha256_digest
from hivemind_app.projects import current_project
from hivemind_app.records.labels import GLOBAL_TAG

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `pathlib` cost the prompt's hook milliseconds to import: annotations only
    from collections.abc import Callable, Sequence
    from typing import Any, Protocol

    class Found(Protocol):
        """A memory the lookup found (`store.peek.Match`)."""

        @property
        def id(self) -> str: ...
        @property
        def text(self) -> str: ...
        @property
        def relevance(self) -> float: ...

    Lookup = Callable[[str, str, tuple[str, ...], set[str], int, str], Sequence[Found]]

DEFAULT_BUDGET = 1500
DEFAULT_MIN_RELEVANCE = 0.3
PROMPT_LIMIT = 4000  # a pasted log is not a question: its first part says what it is about
PROMPT_ITEMS = 3
ITEM_CHARS = 300
SEEN_LIMIT = 2000
SEEN_KEEP_S = 14 * 86400.0  # a session resumed after two weeks may be given its memories again


# -- settings without pydantic ------------------------------------------------------------------------


def _setting(config: dict[str, Any], section: str, name: str, default: Any) -> Any:
    env = os.environ.get(f"HIVEMIND_{section.upper()}__{name.upper()}")
    if env is not None:
        return env
    value = config.get(section, {}).get(name) if isinstance(config.get(section), dict) else None
    return default if value is None else value


def fast_settings() -> tuple[int, float, str]:
    """(inject.budget_chars, inject.prompt_min_relevance, the store file) as `Settings` resolves them, without
    importing pydantic (tests/claude/test_inject.py checks that the two agree); defaults where a value is bad."""
    config = settings_file()
    try:
        budget = max(0, int(_setting(config, "inject", "budget_chars", DEFAULT_BUDGET)))
    except (TypeError, ValueError):
        budget = DEFAULT_BUDGET
    try:
        threshold = float(_setting(config, "inject", "prompt_min_relevance", DEFAULT_MIN_RELEVANCE))
    except (TypeError, ValueError):
        threshold = DEFAULT_MIN_RELEVANCE
    filename = str(_setting(config, "store", "filename", "hive.db"))
    return budget, threshold, os.path.join(data_path(), filename)


# -- what a session has been given ----------------------------------------------------------------------


def _seen_file(session_id: str) -> str:
    return os.path.join(data_path(), "injected", f"{sha256_digest(session_id.encode()).hex()[:32]}.json")


def seen(session_id: str) -> set[str]:
    """The memory ids already injected into this session."""
    try:
        with open(_seen_file(session_id), encoding="utf-8") as handle:
            ids = json.load(handle)
    except (OSError, ValueError):
        return set()
    return {i for i in ids if isinstance(i, str)} if isinstance(ids, list) else set()


def remember(session_id: str, ids: Sequence[str]) -> None:
    """Add `ids` to what this session has been given (best effort: a failure only risks a repeat)."""
    if not ids:
        return
    from hivemind_app.locks import flock_within

    path = _seen_file(session_id)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        # read-modify-write under the session's lock: SessionStart, the prompt hook and the MCP server may each
        # add ids at the same moment, and the last writer must not drop the others' (a repeat injection)
        lock = os.open(path.removesuffix(".json") + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            flock_within(lock, 1.0)  # taken, or after a second go on without it (a repeat, never a hang)
            known = [i for i in seen(session_id) if i not in ids]
            tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump([*known, *ids][-SEEN_LIMIT:], out)
            os.replace(tmp, path)
        finally:
            os.close(lock)
    except OSError:
        pass


def prune_seen(keep_s: float = SEEN_KEEP_S) -> None:
    """Forget what sessions untouched for `keep_s` were given (one small file each would pile up)."""
    import contextlib
    import time
    from pathlib import Path

    cutoff = time.time() - keep_s
    folder = Path(data_path()) / "injected"
    with contextlib.suppress(OSError):
        for path in [*folder.glob("*.json"), *folder.glob("*.lock")]:
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()


def forget_session(session_id: str) -> None:
    """A cleared session starts afresh: what it was given may be given again."""
    try:  # noqa: SIM105 (contextlib is no import of the prompt's hot path)
        os.unlink(_seen_file(session_id))
    except OSError:
        pass


# -- the block ------------------------------------------------------------------------------------------


def render(
    header: str, items: Sequence[tuple[str, str]], budget: int, first_chars: int = ITEM_CHARS
) -> tuple[str, list[str]]:
    """The block (header and one line per item) within `budget` characters, and the ids it holds; the first
    item may take `first_chars` (a session digest), every other one ITEM_CHARS."""
    lines = [header]
    used = len(header)
    ids: list[str] = []
    for n, (memory_id, text) in enumerate(items):
        flat = " ".join(text.split())
        limit = first_chars if n == 0 else ITEM_CHARS
        line = f"- [{memory_id[:12]}] {flat[:limit]}{'...' if len(flat) > limit else ''}"
        room = budget - used - 1
        if room < 40:  # less than an id and a few words: stop here
            break
        if len(line) > room:
            line = line[: room - 3] + "..."
        lines.append(line)
        used += len(line) + 1
        ids.append(memory_id)
    return ("\n".join(lines), ids) if ids else ("", [])


def hook_output(event: str, context: str) -> str:
    return json.dumps({"hookSpecificOutput": {"hookEventName": event, "additionalContext": context}})


def scope_of(project: str | None) -> tuple[str, ...]:
    return (project,) if project else ()


# -- UserPromptSubmit -------------------------------------------------------------------------------------


def prompt_context(payload: dict[str, Any], lookup: Lookup) -> str | None:
    """The hook's stdout for a prompt: memories relevant to it not given yet, or None."""
    session_id = session_id_of(payload)
    prompt = payload.get("prompt")
    if session_id is None or not isinstance(prompt, str) or not prompt.strip():
        return None
    budget, threshold, db_path = fast_settings()
    if budget <= 0:
        return None
    cwd = payload.get("cwd")
    project = current_project(cwd if isinstance(cwd, str) else None)
    query = redact_clipped(prompt, PROMPT_LIMIT)  # redacted, then cut: never half a secret
    given = seen(session_id)
    found = lookup(db_path, query, scope_of(project), given, PROMPT_ITEMS * 3, GLOBAL_TAG)
    relevant = [(m.id, m.text) for m in found if m.relevance >= threshold][:PROMPT_ITEMS]
    block, ids = render("Memories from hivemind that may bear on this (memory_get ID for details):", relevant, budget)
    if not ids:
        return None
    remember(session_id, ids)
    return hook_output("UserPromptSubmit", block)


def answer_prompt(raw: bytes, lookup: Lookup) -> int:
    """Print the prompt's memories, if any (the event itself is spooled first); never fails Claude Code."""
    try:
        payload = json.loads(raw.decode("utf-8"))
        output = prompt_context(payload, lookup) if isinstance(payload, dict) else None
    except Exception as exc:  # injecting is a favour: without it the prompt goes on as it is
        sys.stderr.write(f"hivemind: WARNING: no memories for this prompt: {type(exc).__name__}: {exc}\n")
        return 0
    if output:
        sys.stdout.write(output + "\n")
    return 0
