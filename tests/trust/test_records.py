"""A memory's MAC (trust/records.py) over fields added after memories were first sealed: a record an older
node sealed still verifies; the field added, changed or stripped in Redis does not."""

from __future__ import annotations

from hivemind_app.trust.hivekey import HiveKey
from hivemind_app.trust.records import RecordSeal, wire

# The fields a memory's MAC covered before `occurred_at` existed, in order: what an older node seals.
BEFORE_OCCURRED_AT = ("id", "version", "node", "text", "deleted", "tags", "sources", "source", "session_id",
                      "timestamp", "updated_at", "origin", "born", "label_stamps", "project", "enc")  # fmt: skip


def record() -> dict[str, bytes]:
    plain = {"id": "ab" * 32, "version": "123", "node": "n1", "text": "the May retro", "deleted": "0",
             "tags": "[]", "sources": "[]", "source": "", "session_id": "", "timestamp": "1.5", "updated_at": "1.5",
             "origin": "laptop", "born": "", "label_stamps": "", "project": ""}  # fmt: skip
    return {name: value.encode() for name, value in plain.items()}


def test_a_memory_an_older_node_sealed_still_verifies_and_giving_it_an_occurred_at_in_redis_does_not() -> None:
    key = HiveKey.generate()
    seal = RecordSeal(key)
    fields = record()
    old_mac = key.mac("memory", *(wire(fields.get(name)) for name in BEFORE_OCCURRED_AT))
    sealed = {**fields, "mac": old_mac.encode()}
    assert seal.memory_problem(sealed) is None
    assert seal.memory_problem({**sealed, "occurred_at": b"1747180800.0"}) is not None


def test_a_sealed_occurred_at_cannot_be_changed_or_stripped() -> None:
    seal = RecordSeal(HiveKey.generate())
    fields = {**record(), "occurred_at": b"1747180800.0"}
    mac = dict(zip(*[iter(seal.memory_pairs(fields))] * 2, strict=True))["mac"]
    sealed = {**fields, "mac": mac.encode()}
    assert seal.memory_problem(sealed) is None
    assert seal.memory_problem({**sealed, "occurred_at": b"1733500000.0"}) is not None
    assert seal.memory_problem({k: v for k, v in sealed.items() if k != "occurred_at"}) is not None
    assert seal.memory_problem({**sealed, "occurred_at": b""}) is not None
