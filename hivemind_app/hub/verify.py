"""Anti-entropy: compare every memory's version in the mirror with the hub's, and repair what differs.

Sync is never silently wrong: a record the feed missed (or a push that never landed) shows up here as a
version that differs, and is pushed or pulled again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text
from hivemind_app.hub.decode import BadRecord, parse_version
from hivemind_app.hub.pull import PULL_BATCH, Puller
from hivemind_app.hub.push import Pusher
from hivemind_app.store.kinds import RecordKind

log = logging.getLogger(__name__)

_SCAN_BATCH = 1000


def remote_versions(channel: HubChannel, puller: Puller) -> dict[str, int]:
    """Every memory id in the hub and its version (a record whose version is refused is quarantined instead)."""
    client = channel.client()
    keys = [as_text(k) for k in client.scan_iter(match=channel.keys.embedding_pattern, count=_SCAN_BATCH)]
    remote: dict[str, int] = {}
    bad: list[str] = []
    for start in range(0, len(keys), _SCAN_BATCH):
        pipe = client.pipeline(transaction=False)
        chunk = keys[start : start + _SCAN_BATCH]
        for key in chunk:
            pipe.hget(key, "version")
        for key, version in zip(chunk, pipe.execute(), strict=True):
            try:
                remote[channel.keys.embedding_id(key)] = parse_version(version)
            except BadRecord:
                bad.append(key)
    if bad:  # read whole, applied (refused) the usual way: the quarantine gets the record and the reason
        puller.apply_memories([channel.keys.embedding_id(key) for key in bad])
    return remote


def _digest(versions: dict[str, int]) -> str:
    return hashlib.sha256(json.dumps(sorted(versions.items())).encode()).hexdigest()[:16]


def verify(channel: HubChannel, pusher: Pusher, puller: Puller, repair: bool = True) -> dict[str, int]:
    """Compare the mirror with the hub; with `repair`, push what the hub lacks and pull what the mirror lacks."""
    local = channel.replica.memory_versions()
    remote = remote_versions(channel, puller)
    push = [i for i, v in local.items() if i not in remote or v > remote[i]]
    pull = [i for i, v in remote.items() if i not in local or v > local[i]]
    result = {
        "local": len(local),
        "remote": len(remote),
        "to_push": len(push),
        "to_pull": len(pull),
        "in_sync": int(_digest(local) == _digest(remote)),
    }
    if repair and (push or pull):
        with channel.db.write() as conn:
            for memory_id in push:
                channel.db.enqueue(conn, RecordKind.MEMORY, memory_id)
        pusher.push()
        for start in range(0, len(pull), PULL_BATCH):
            puller.apply_memories(pull[start : start + PULL_BATCH])
        log.warning("anti-entropy repaired drift: pushed %d, pulled %d memories", len(push), len(pull))
    channel.replica.set_state(last_verify=time.time(), last_verify_result=json.dumps(result))
    return result
