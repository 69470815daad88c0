"""Anti-entropy: compare every memory in the mirror with the hub's copy, by stamp and by content, and repair.

Sync is never silently wrong: a record the feed missed (or a push that never landed) shows up here as a stamp
that differs (`store/versions.py`: version, then the node that minted it), and the newer side is pushed or
pulled again. Two copies with one stamp must hold one content: each side's content digest (text, tags,
sources, session, deleted; not the vector, which each node may compute with its own model) is compared too,
and a copy that differs at an equal stamp takes the hub's record, the copy every node converges on (an
apply joins our tags and sources with the record's and, where the hub's copy lacks some, pushes the result
at that same stamp: `store/memory_rows.py`).

A hub record this node cannot read (quarantined, `hub/decode.py`) is never "in sync": it is counted as
`unreadable`; where this node holds the memory it is pushed, and the push script takes a copy at an equal
stamp whose content differs (`hub/scripts.py`), so a record damaged in place in Redis is repaired.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from hivemind_app.hub.channel import HubChannel
from hivemind_app.hub.connection import as_text
from hivemind_app.hub.decode import BadRecord, parse_memory
from hivemind_app.hub.pull import PULL_BATCH, Puller
from hivemind_app.hub.push import Pusher
from hivemind_app.store.kinds import RecordKind
from hivemind_app.store.versions import Stamp, content_digest
from hivemind_app.trust.records import MEMORY_SEALED

log = logging.getLogger(__name__)

_SCAN_BATCH = 1000
# What verify reads of each memory's hash: everything `parse_memory` checks but the vector, with the MACs,
# so that a keyed node counts a record it would quarantine (one pushed before the hive had a key, say) as
# `unreadable` and seals it again, never as in sync.
_FIELDS = (*MEMORY_SEALED, "mac", "vmac")


def remote_stamps(channel: HubChannel, puller: Puller) -> tuple[dict[str, tuple[Stamp, str]], list[str]]:
    """Every memory id in the hub with its stamp and content digest, and the ids of the records that fail
    validation (quarantined instead)."""
    client = channel.client()
    keys = [as_text(k) for k in client.scan_iter(match=channel.keys.embedding_pattern, count=_SCAN_BATCH)]
    remote: dict[str, tuple[Stamp, str]] = {}
    bad: list[str] = []
    for start in range(0, len(keys), _SCAN_BATCH):
        pipe = client.pipeline(transaction=False)
        chunk = keys[start : start + _SCAN_BATCH]
        for key in chunk:
            pipe.hmget(key, _FIELDS)
        for key, values in zip(chunk, pipe.execute(), strict=True):
            memory_id = channel.keys.embedding_id(key)
            raw: dict[str, Any] = {
                name: value for name, value in zip(_FIELDS, values, strict=True) if value is not None
            }
            try:  # checked against the seal, and compared decrypted where encrypted (trust/records.py)
                record = parse_memory(memory_id, raw, channel.seal)
            except BadRecord:
                bad.append(memory_id)
                continue
            digest = content_digest(
                deleted=record.deleted,
                text=record.text,
                tags=record.tags,
                sources=record.sources,
                session=record.session_id or "",
            )
            remote[memory_id] = ((record.version, record.node), digest)
    if bad:  # read whole, applied (refused) the usual way: the quarantine gets the record and the reason
        puller.apply_memories(bad)
    return remote, bad


def verify(channel: HubChannel, pusher: Pusher, puller: Puller, repair: bool = True) -> dict[str, int]:
    """Compare the mirror with the hub; with `repair`, push what the hub lacks or holds older, pull what the
    mirror lacks or holds older, and take the hub's copy where the two differ at one stamp (a hub record this
    node cannot read is pushed over where the mirror holds it, and reported as `unreadable` either way)."""
    local = channel.replica.memory_stamps()
    remote, unreadable = remote_stamps(channel, puller)
    push = [i for i, (stamp, _) in local.items() if i not in remote or stamp > remote[i][0]]
    pull = [i for i, (stamp, _) in remote.items() if i not in local or stamp > local[i][0]]
    differ = [
        i for i, (stamp, digest) in local.items() if i in remote and remote[i][0] == stamp and remote[i][1] != digest
    ]
    result = {
        "local": len(local),
        "remote": len(remote),
        "to_push": len(push),
        "to_pull": len(pull),
        "differ": len(differ),
        "unreadable": len(unreadable),
        "in_sync": int(not (push or pull or differ or unreadable)),
    }
    if repair and (push or pull or differ):
        with channel.db.write() as conn:
            for memory_id in push:
                channel.db.enqueue(conn, RecordKind.MEMORY, memory_id)
        pusher.push()
        # read again the unreadable records we just pushed over: each now applies, leaving the quarantine
        repaired = [memory_id for memory_id in unreadable if memory_id in local]
        for start in range(0, len(repaired), PULL_BATCH):
            puller.apply_memories(repaired[start : start + PULL_BATCH])
        for start in range(0, len(pull), PULL_BATCH):
            puller.apply_memories(pull[start : start + PULL_BATCH])
        for start in range(0, len(differ), PULL_BATCH):
            puller.apply_memories(differ[start : start + PULL_BATCH], force=True)
        if channel.replica.outbox_depth():  # a forced apply that joined our labels pushes the result
            pusher.push()
        log.warning(
            "anti-entropy repaired drift: pushed %d, pulled %d, took the hub's copy of %d that differed at one stamp",
            len(push),
            len(pull),
            len(differ),
        )
    channel.replica.set_state(last_verify=time.time(), last_verify_result=json.dumps(result))
    return result
