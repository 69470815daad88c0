"""Click commands for Claude Code: `mcp`, `hook EVENT`, `claude install-hooks`.

Imported by the main CLI at start-up, so this module must stay cheap: import `mcp` and the server
inside the command functions, never at module level.
"""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
