"""The hub's learning queue read by trainers through a consumer group.

Entries are acknowledged only after a round has used them. A trainer that dies mid-round leaves its entries
pending; the next trainer on the same node reads its own pending entries first, and a trainer on another
node claims them (XAUTOCLAIM) once they have been idle for `train.claim_idle_s`.
"""

from __future__ import annotations

import logging
from typing import Any

from hivemind_app.errors import HubError
from hivemind_app.hub.connection import as_text, explain
from hivemind_app.hub.sync import HubSync
from hivemind_app.records.learning import QueueBatch
from hivemind_app.trust.records import Undecryptable

log = logging.getLogger(__name__)

GROUP = "trainers"


class HubLearningQueue:
    name = "hub"

    def __init__(self, hub: HubSync, consumer: str, claim_idle_s: float) -> None:
        self.hub = hub
        self.consumer = consumer
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.key = hub.keys.learning_queue

    def _client(self) -> Any:
        from redis import exceptions

        client = self.hub.client()
        try:
            client.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        return client

    def _call(self, action: Any) -> Any:
        from redis import exceptions

        try:
            return action(self._client())
        except exceptions.RedisError as exc:
            reason = explain(exc, self.hub.url, self.hub.settings.redis.connect_timeout_s)
            raise HubError(f"Cannot use the learning queue: {reason}") from exc

    def take(self, limit: int) -> QueueBatch:
        """Up to `limit` entries: this consumer's own pending ones, then stale ones of dead trainers, then new."""

        def run(client: Any) -> list[tuple[Any, dict[Any, Any]]]:
            taken: dict[str, tuple[Any, dict[Any, Any]]] = {}

            def keep(messages: list[Any]) -> None:
                trimmed = [m[0] for m in messages if m and not m[1]]
                if trimmed:  # pending, but MAXLEN trimmed the entry away: nothing left to learn from
                    client.xack(self.key, GROUP, *trimmed)
                for message in messages:
                    if message and message[1]:
                        taken.setdefault(as_text(message[0]), message)

            own = client.xreadgroup(GROUP, self.consumer, {self.key: "0"}, count=limit)
            keep(own[0][1] if own else [])
            cursor: Any = "0-0"
            while len(taken) < limit:
                cursor, claimed, *_ = client.xautoclaim(
                    self.key, GROUP, self.consumer, self.claim_idle_ms, cursor, count=limit - len(taken)
                )
                keep(claimed)
                if as_text(cursor) == "0-0" or not claimed:
                    break
            if len(taken) < limit:
                fresh = client.xreadgroup(GROUP, self.consumer, {self.key: ">"}, count=limit - len(taken))
                keep(fresh[0][1] if fresh else [])
            return list(taken.values())

        messages = self._call(run)
        entries = [{as_text(k): as_text(v) for k, v in fields.items()} for _, fields in messages]
        ids = [as_text(mid) for mid, _ in messages]
        seal = self.hub.channel.seal
        if seal is not None:  # an entry no node of this hive sealed is never learned from (trust/records.py)
            forged = [mid for mid, entry in zip(ids, entries, strict=True) if not seal.learning_ok(entry)]
            if forged:
                log.warning("dropped %d learning entries not sealed with this hive's key", len(forged))
                self._call(lambda client: client.xack(self.key, GROUP, *forged))
                kept = [(mid, e) for mid, e in zip(ids, entries, strict=True) if mid not in set(forged)]
                ids, entries = [mid for mid, _ in kept], [e for _, e in kept]
        unreadable, opened = [], []
        for mid, entry in zip(ids, entries, strict=True):  # hive.encrypt: the content decrypted here
            try:
                opened.append((mid, seal.open_learning(entry) if seal is not None else entry))
            except Undecryptable:
                unreadable.append(mid)
            if seal is None and entry.get("enc") == "1":  # never its ciphertext learned from
                opened.pop()
                unreadable.append(mid)
        if unreadable:
            log.warning(
                "set aside %d encrypted learning entries this node cannot read (`hivemind-app hive join` here "
                "to read them)",
                len(unreadable),
            )
            self._call(lambda client: client.xack(self.key, GROUP, *unreadable))
        return QueueBatch([e for _, e in opened], [mid for mid, _ in opened])

    def ack(self, batch: QueueBatch) -> None:
        if batch.ids:
            self._call(lambda client: client.xack(self.key, GROUP, *batch.ids))

    def backlog(self) -> int:
        """Entries no trainer has finished: not yet delivered plus pending."""

        def run(client: Any) -> int:
            for raw in client.xinfo_groups(self.key):
                group = {as_text(k): v for k, v in raw.items()}
                if as_text(group["name"]) == GROUP:
                    return int(group.get("lag") or 0) + int(group.get("pending") or 0)
            return 0

        return int(self._call(run))

    def pending(self) -> int:
        return int(self._call(lambda client: client.xpending(self.key, GROUP)["pending"]))
