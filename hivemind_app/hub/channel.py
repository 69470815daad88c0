"""The connection to the hub that every part of sync shares, and this node's offline state.

Offline: a failed connection is reported once, not once per call; the next attempt waits a capped,
jittered, growing backoff that is kept in SQLite (`sync_state`), so short-lived CLI processes respect it too.
The backoff runs on `time.monotonic` (one clock for every process of a boot), never the wall clock: a clock
stepped back does not stretch the wait, and a wait longer than the longest backoff (a reboot reset the
monotonic clock) is not waited at all.
The change announcements other nodes publish on `channel:events` ("nudges") arrive here as well.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from typing import Any

from hivemind_app.config import Settings
from hivemind_app.errors import ConfigError
from hivemind_app.hub.connection import as_text, connect, describe_endpoint, explain
from hivemind_app.hub.decode import BadRecord, hub_json
from hivemind_app.hub.keys import Keys
from hivemind_app.hub.scripts import PUSH_LEARNING, PUSH_MEMORY, PUSH_SESSION
from hivemind_app.store.database import Database
from hivemind_app.store.kinds import RecordKind
from hivemind_app.store.replica import Replica
from hivemind_app.trust.hivekey import load_key
from hivemind_app.trust.records import RecordSeal

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
_MAX_JITTER = 1.2
_SCRIPTS = {RecordKind.MEMORY: PUSH_MEMORY, RecordKind.SESSION: PUSH_SESSION, RecordKind.LEARNING: PUSH_LEARNING}


class HubChannel:
    """A lazily opened redis-py client for the hub at `url`, its registered push scripts, and the offline state."""

    def __init__(self, settings: Settings, db: Database, url: str) -> None:
        self.settings = settings
        self.db = db
        self.replica = Replica(db)
        self.keys = Keys(settings.redis.prefix)
        self.url = url
        self.endpoint = describe_endpoint(url)
        self._client: Any = None
        self._pubsub: Any = None
        self._scripts: dict[RecordKind, Any] = {}
        key = load_key(settings.hive_key_path)
        if settings.hive.encrypt and key is None:
            raise ConfigError(
                "hive.encrypt is on but this node has no hive key: run `hivemind-app hive join` (it asks for the "
                "join code), or set hive.encrypt to false"
            )
        self.seal = RecordSeal(key, settings.hive.encrypt) if key else None
        """Seals what this node pushes and checks what it reads (trust/records.py); None without a hive key."""

    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.settings.redis, self.url)
            self._scripts = {kind: self._client.register_script(lua) for kind, lua in _SCRIPTS.items()}
        return self._client

    @property
    def connected(self) -> bool:
        """Whether a client was opened (a status read never opens one)."""
        return self._client is not None

    def script(self, kind: RecordKind) -> Any:
        """The push script for records of `kind` (the client is opened first if need be)."""
        self.client()
        return self._scripts[kind]

    def retarget(self, url: str) -> None:
        """Talk to the hub at another URL from now on (a test's partition, a moved NAS)."""
        self.close()
        self.url = url
        self.endpoint = describe_endpoint(url)
        self.replica.set_state(retry_at=0)

    def close(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- offline state ------------------------------------------------------------------------------

    def went_offline(self, exc: Exception) -> str:
        """Record a failed attempt (once as a warning) and when to try again; returns the reason, in one line."""
        import redis

        reason = explain(exc, self.url, self.settings.redis.connect_timeout_s)
        state = self.replica.state()
        failures = int(state.get("consecutive_failures", "0")) + 1
        backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** min(failures, 8)) * random.uniform(0.8, _MAX_JITTER)
        if state.get("online", "1") == "1":
            log.warning("%s Working offline: writes are kept locally and pushed when it is back.", reason)
        self.replica.set_state(
            online=0,
            offline_since=state.get("offline_since") if state.get("online") == "0" else time.time(),
            retry_at=time.monotonic() + backoff,
            consecutive_failures=failures,
            last_error=reason,
        )
        self.replica.bump("failed_syncs")
        if isinstance(exc, redis.AuthenticationError):
            self.close()
        return reason

    def came_online(self) -> None:
        state = self.replica.state()
        if state.get("online") == "0":
            log.warning("Redis at %s is back; catching up.", self.endpoint)
        if state.get("online") != "1" or state.get("consecutive_failures", "0") != "0":
            self.replica.set_state(online=1, consecutive_failures=0, retry_at=0, last_error="")

    def should_try(self) -> bool:
        """Whether the backoff after the last failure is over (`retry_at` is on the monotonic clock)."""
        remaining = float(self.replica.state().get("retry_at", "0")) - time.monotonic()
        return remaining <= 0 or remaining > MAX_BACKOFF_S * _MAX_JITTER

    # -- nudges -------------------------------------------------------------------------------------

    def announce_changes(self) -> None:
        """Tell the other nodes this one pushed writes (they pull at once instead of at their next pass)."""
        self.client().publish(self.keys.events, json.dumps({"kind": "changes", "node": self.db.node_id}))

    def wait_for_nudge(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` for another node's change announcement on channel:events."""
        if self._pubsub is None:
            self._pubsub = self.client().pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(self.keys.events)
        message = self._pubsub.get_message(timeout=timeout_s)
        if not message:
            return False
        try:
            event = hub_json(as_text(message["data"]))
        except (BadRecord, TypeError):
            return False
        return not isinstance(event, dict) or bool(event.get("node") != self.db.node_id)

    def drop_nudges(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                self._pubsub.close()
            self._pubsub = None
