"""When this process talks to the hub: push after every write, pull before a read (at most once a second).

Invariant: being offline is never an error here. A write lands in SQLite (with its outbox row) whatever the
hub does, and whether or not one is configured (a process run without `redis.url` leaves its writes queued
for the first one that has it); `HubSync` counts and reports the failure, and the next pass retries.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from hivemind_app.errors import ConfigError
from hivemind_app.hub.sync import HubSync, SyncReport

# A read pulls from the hub at most this often per process (a running node pulls continuously).
READ_SYNC_INTERVAL_S = 1.0


class SyncService:
    def __init__(self, hub: HubSync | None, sync_on_read: bool) -> None:
        self.hub = hub
        # Hooks turn this off: a hook must answer in well under a second, and pulling is the node's job.
        self.sync_on_read = sync_on_read
        self._last_pull = 0.0
        self._lock = threading.RLock()

    def require_hub(self) -> HubSync:
        if self.hub is None:
            raise ConfigError("No hub configured: set redis.url (hivemind-app config set redis.url redis://...).")
        return self.hub

    def sync(self, force: bool = False) -> SyncReport | None:
        """One push-and-pull pass with the hub now (None when no hub is configured)."""
        if self.hub is None:
            return None
        with self._lock:
            self._last_pull = time.monotonic()
            return self.hub.sync_once(force=force)

    def after_write(self) -> None:
        if self.hub is not None:
            with self._lock:
                self.hub.sync_once(pull=False)

    def before_read(self) -> None:
        if self.hub is not None and self.sync_on_read and time.monotonic() - self._last_pull > READ_SYNC_INTERVAL_S:
            self.sync()

    def reachable(self) -> bool:
        """A hub is configured and not inside its offline back-off."""
        return self.hub is not None and self.hub.should_try()

    def verify(self, repair: bool = True) -> dict[str, int]:
        """Anti-entropy: compare every memory here with Redis and repair the drift found."""
        return self.require_hub().verify(repair=repair)

    def hub_nodes(self) -> list[dict[str, Any]]:
        """Nodes with a live heartbeat in Redis ([] with no hub or while it is unreachable)."""
        if self.hub is None or not self.hub.should_try():
            return []
        try:
            return self.hub.live_nodes()
        except Exception:  # unreachable right now: the next sync reports it
            return []

    def close(self) -> None:
        if self.hub is not None:
            self.hub.close()
