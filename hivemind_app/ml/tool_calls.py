"""The tool-call format shared by inference (`LocalLLM.suggest_tool`) and training (`ml/examples.py`).

The trainer must teach the model exactly the prompt and answer that inference uses, or a better adapter
would look no better when served. Both sides build them here. A grammar bounds the answer (a known tool,
at most three short arguments), so a small model can neither produce invalid JSON nor ramble; arguments
that the grammar cannot express are left out of training targets for the same reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

TOOL_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
ARGUMENT_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}")
MAX_ARGUMENTS = 3
MAX_STRING_CHARS = 64
MAX_INTEGER = 999_999_999
_STRING_FORBIDDEN = re.compile(r'["\\\x00-\x1f]')


def system_prompt(tools: Sequence[str]) -> str:
    return f"Pick the tool for the task and its arguments. Tools: {', '.join(tools)}. Answer in JSON."


def messages_for(task: str, tools: Sequence[str]) -> list[dict[str, str]]:
    """The chat the model sees before it answers."""
    return [{"role": "system", "content": system_prompt(tools)}, {"role": "user", "content": task}]


def answer_text(tool: str, arguments: Mapping[str, Any]) -> str:
    """The answer as the grammar spells it (json.dumps's default separators fit the grammar's spaces)."""
    return json.dumps({"tool": tool, "arguments": dict(arguments)}, ensure_ascii=False)


def expressible_arguments(arguments: object) -> dict[str, Any]:
    """The arguments the grammar can express: up to three short strings, small integers or booleans.

    Anything else (long text, nested objects, floats, negative numbers) is dropped rather than clipped:
    a clipped path would teach the model a wrong answer.
    """
    if not isinstance(arguments, Mapping):
        return {}
    kept: dict[str, Any] = {}
    for key, value in arguments.items():
        if len(kept) == MAX_ARGUMENTS:
            break
        if not isinstance(key, str) or not ARGUMENT_KEY.fullmatch(key):
            continue
        if (
            isinstance(value, bool)
            or (isinstance(value, int) and 0 <= value <= MAX_INTEGER)
            or (isinstance(value, str) and len(value) <= MAX_STRING_CHARS and not _STRING_FORBIDDEN.search(value))
        ):
            kept[key] = value
    return kept


def parse_tool_input(tool_input: str) -> dict[str, Any]:
    """A learning-queue entry's tool_input (JSON text, or plain text) as expressible arguments."""
    try:
        parsed = json.loads(tool_input) if tool_input.strip() else {}
    except (json.JSONDecodeError, RecursionError):
        parsed = {"input": tool_input}
    if isinstance(parsed, str):
        parsed = {"input": parsed}
    return expressible_arguments(parsed)


def tool_grammar(tools: Sequence[str]) -> str:
    names = " | ".join(json.dumps(json.dumps(t)) for t in tools)
    more = MAX_ARGUMENTS - 1
    return "\n".join(
        [
            'root ::= "{" ws "\\"tool\\":" ws tool "," ws "\\"arguments\\":" ws args ws "}"',
            f"tool ::= {names}",
            f'args ::= "{{" ws ( pair ( "," ws pair ){{0,{more}}} )? ws "}}"',
            'pair ::= key ws ":" ws value',
            'key ::= "\\"" [a-zA-Z_] [a-zA-Z0-9_]{0,15} "\\""',
            f'value ::= "\\"" [^"\\\\\\x00-\\x1f]{{0,{MAX_STRING_CHARS}}} "\\"" | [0-9]{{1,9}} | "true" | "false"',
            "ws ::= [ ]?",
        ]
    )
