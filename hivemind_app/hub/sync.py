"""Sync of the local mirror with the hub: push the outbox, pull the change feed, settle session conflicts.

`HubSync` is the one object the rest of the app holds. It puts together the parts, each in its own module:
the connection and offline state (`channel.py`), pushing the outbox (`push.py`), pulling the change feed
and bootstrapping (`pull.py`), anti-entropy (`verify.py`), and heartbeats, live nodes and the sync status
(`status.py`). A pass never raises for connectivity: the report says what happened, and the next attempt
waits a backoff kept in SQLite. Nor does it raise for what Redis holds: every record read from it is validated
(`decode.py`), and one that fails is quarantined in the mirror (`store/quarantine.py`) while the rest applies.
Before each pass it checks the hub still holds what this node last saw (`epoch.py`: the hive epoch, the feed's
trim point, the node's high-water mark) and reconciles its whole history by itself when it does not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from hivemind_app.config import Settings
from hivemind_app.errors import HubError
from hivemind_app.hub import epoch, maintenance
from hivemind_app.hub import status as hub_status
from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text
from hivemind_app.hub.pull import Puller
from hivemind_app.hub.push import Pusher
from hivemind_app.hub.verify import verify
from hivemind_app.store.database import Database
from hivemind_app.store.local_state import LocalState
from hivemind_app.store.memory_store import MemoryStore
from hivemind_app.trust.records import ENC_TEXT_PREFIX

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    online: bool
    pushed: int = 0
    pulled: int = 0
    conflicts: int = 0
    error: str | None = None
    reconciled: str | None = None
    """Why this pass reconciled the node's whole history with the hub (`hub/epoch.py`), if it did."""
    repaired: dict[str, int] = field(default_factory=dict)


class HubSync:
    def __init__(self, settings: Settings, db: Database, memories: MemoryStore) -> None:
        if settings.redis.url is None:
            raise HubError("No hub configured: set redis.url.")
        self.settings = settings
        self.db = db
        self.memories = memories
        self.channel = HubChannel(settings, db, settings.redis.url.get_secret_value())
        self.replica = self.channel.replica
        self.keys = self.channel.keys
        self.puller = Puller(self.channel, memories)
        self.pusher = Pusher(self.channel, memories, self.puller)

    # -- connection and offline state -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.channel.url

    @property
    def endpoint(self) -> str:
        return self.channel.endpoint

    def client(self) -> Any:
        return self.channel.client()

    def retarget(self, url: str) -> None:
        """Talk to the hub at another URL from now on (a test's partition, a moved NAS)."""
        self.channel.retarget(url)

    def close(self) -> None:
        self.channel.close()

    def should_try(self) -> bool:
        return self.channel.should_try()

    # -- one pass -------------------------------------------------------------------------------------

    def sync_once(self, push: bool = True, pull: bool = True, force: bool = False) -> SyncReport:
        """Push the outbox, pull the feed. Never raises for connectivity: the report says what happened."""
        import redis

        if not force and not self.should_try():
            return SyncReport(online=False, error=self.replica.state().get("last_error") or "waiting to retry")
        report = SyncReport(online=True)
        try:
            self.client().ping()
            hive_epoch = epoch.hub_epoch(self.channel)
            reconcile = epoch.why_reconcile(self.channel, hive_epoch)
            if reconcile is not None:
                report.reconciled = reconcile
                epoch.queue_history(self.channel, hive_epoch, reconcile)
                if pull:  # a push-only pass (after a write, in a hook) pushes the history but never bootstraps
                    self.puller.bootstrap()
            if push:
                report.pushed, report.conflicts = self.push()
            if pull:
                report.pulled = self.pull()
                if push and self.replica.outbox_depth():  # merges made while applying go out at once
                    pushed, conflicts = self.push()
                    report.pushed += pushed
                    report.conflicts += conflicts
            self.puller.mirror_conflicts()
            if reconcile is not None and pull:
                epoch.remember(self.channel, hive_epoch, reconcile)
            epoch.mark_high_water(self.channel)
            if pull:
                maintenance.report_cursor(self.channel)
                if maintenance.maintenance_due(self.channel):
                    maintenance.maintain(self.channel)
        except redis.RedisError as exc:
            report.online = False
            report.error = self.channel.went_offline(exc)
            return report
        self.channel.came_online()
        return report

    def push(self) -> tuple[int, int]:
        """Drain the outbox to the hub; returns (rows pushed, session conflicts found)."""
        return self.pusher.push()

    def pull(self) -> int:
        """Apply other nodes' writes from the change feed; returns how many memories changed here."""
        return self.puller.pull()

    def verify(self, repair: bool = True) -> dict[str, int]:
        """Anti-entropy: compare every memory's stamp and content here and in Redis; repair what differs."""
        return verify(self.channel, self.pusher, self.puller, repair=repair)

    # -- heartbeats and nudges ------------------------------------------------------------------------

    def heartbeat(self, info: dict[str, Any], beat_s: float) -> None:
        """Refresh this node in nodes:active, its expiring heartbeat key, and its model in models:active."""
        hub_status.heartbeat(self.channel, info, beat_s)

    def live_nodes(self) -> list[dict[str, Any]]:
        """Nodes whose heartbeat key has not expired; stale members of nodes:active are dropped."""
        return hub_status.live_nodes(self.channel)

    def outbox_depth(self) -> int:
        return self.replica.outbox_depth()

    def wait_for_nudge(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` for another node's change announcement on channel:events."""
        return self.channel.wait_for_nudge(timeout_s)

    def drop_nudges(self) -> None:
        self.channel.drop_nudges()

    # -- conflicts, reads, status ---------------------------------------------------------------------

    def resolve_conflict(self, session_id: str, keep: str) -> dict[str, Any]:
        """Keep A (the winner, already everywhere) or B (the loser: written again as the newest edit)."""
        conflicts = self.replica.conflicts()
        if session_id not in conflicts:
            raise HubError(f"Session {session_id!r} has no conflict to resolve.")
        record = conflicts[session_id]
        if keep == "B":
            LocalState(self.db).replace_session(session_id, record["loser"]["state"])
            self.sync_once(pull=False, force=True)
        self.client().hdel(self.keys.session_conflicts, session_id)
        self.puller.mirror_conflicts()
        return record

    def get_tool_output(self, tool: str, input_hash: str) -> str | None:
        value = self.client().get(self.keys.tool(tool, input_hash))
        if value is None:
            return None
        seal = self.channel.seal
        if seal is None:  # an output encrypted with a key this node lacks is a miss, never its ciphertext
            return None if as_text(value).startswith(ENC_TEXT_PREFIX) else as_text(value)
        return seal.open_tool_output(tool, input_hash, as_text(value))

    def status(self) -> dict[str, Any]:
        return hub_status.sync_status(self.channel)
