from __future__ import annotations

import contextlib
from typing import Any

from textual.worker import WorkerCancelled


async def settle(pilot: Any) -> None:
    """Wait for every worker and the screen; a search made stale by a newer one ends cancelled, as designed."""
    for worker in list(pilot.app.workers):
        with contextlib.suppress(WorkerCancelled):
            await worker.wait()
    await pilot.pause()
