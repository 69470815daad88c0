"""The root group's class and the CLI's logging: every hivemind error becomes one line and an exit status.

`HivemindError` -> `error: ...` on stderr and its `exit_code`; Ctrl+C -> `interrupted`, 130; anything else
-> `internal error: ...`, 70 (`HIVEMIND_DEBUG=1` raises it instead, and turns on debug logging).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from hivemind_app.cli.common import stderr
from hivemind_app.display import one_line
from hivemind_app.errors import HivemindError


class OneLineFormatter(logging.Formatter):
    """`level: message`, one line, terminal-safe: a message may quote a key or value read from Redis or a file."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {one_line(record.getMessage())}"


def setup_logging() -> None:
    """hivemind_app's log records as `level: message` lines on stderr; warnings and up unless HIVEMIND_DEBUG."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    root = logging.getLogger("hivemind_app")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if os.environ.get("HIVEMIND_DEBUG") else logging.WARNING)
    root.propagate = False


class HivemindGroup(click.Group):
    """Turns hivemind errors into one line on stderr and a meaningful exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HivemindError as exc:
            stderr.print(f"error: {one_line(str(exc))}", markup=False)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            stderr.print("interrupted", markup=False)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("HIVEMIND_DEBUG"):
                raise
            stderr.print(
                f"internal error: {type(exc).__name__}: {exc} (set HIVEMIND_DEBUG=1 for the traceback)", markup=False
            )
            sys.exit(70)
