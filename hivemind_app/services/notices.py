"""Degraded-mode notices: a fallback (no embedder, no LLM) is logged once per process, not on every call."""

from __future__ import annotations

import logging

log = logging.getLogger("hivemind_app.hive")


class Notices:
    def __init__(self) -> None:
        self._logged = False

    def fallback(self, reason: str) -> None:
        """Log `reason` as a warning the first time a fallback happens; later ones stay quiet."""
        if not self._logged:
            log.warning("%s", reason)
            self._logged = True
