"""The `hivemind-app` console script: the hook hot path first, everything else through the CLI.

`hivemind-app hook EVENT` for an event that prints nothing is answered by `claude.spool` before click,
pydantic or the store are imported (see that module); every other command, and every hook when
`HIVEMIND_HOOK_SPOOL=0`, goes to `hivemind_app.cli`. UserPromptSubmit, once spooled, prints the memories
relevant to the prompt (`claude.inject`, with the store's read-only keyword lookup `store.peek`, wired here
because front ends may not import the store). `hivemind-app mcp` answers the MCP handshake before the SDK is
imported (`claude.quickstart`).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "hook":
        from hivemind_app.claude.spool import SPOOLED_EVENTS, SYNC_ENV, spool_hook

        if args[1] in SPOOLED_EVENTS and os.environ.get(SYNC_ENV, "1") != "0":
            raw = sys.stdin.buffer.read()
            status = spool_hook(args[1], raw)
            if args[1] == "UserPromptSubmit":  # the one spooled event that answers: memories for the prompt
                from hivemind_app.claude.inject import answer_prompt
                from hivemind_app.store.peek import prompt_matches

                status = answer_prompt(raw, prompt_matches)
            sys.exit(status)
    if args == ["mcp"]:
        from hivemind_app.claude.quickstart import serve

        serve()
        return
    from hivemind_app.cli import main as cli_main

    cli_main()
