"""MACs on what a node writes to the hub, so Redis holds records but cannot author them.

A node with the hive key seals every memory it pushes (live or deleted): `mac`, an HMAC-SHA256 under the
key over the memory's fields as Redis stores them, and `vmac` over its id, model and vector. A node with the
key takes from the hub only a memory whose `mac` verifies (`hub/decode.py` raises `BadRecord`, and the
record is quarantined with the reason): one planted with redis-py, changed in place, or sealed with another
hive's key is never applied, shown or injected. A vector whose `vmac` does not verify is dropped, never the
memory: the node embeds the text itself (a same-stamp repair may keep the hub's vector without its `vmac`).
Sessions (`session_pairs`; a cleared session's marker is sealed by `cleared_pairs`, over its id, stamp
and "cleared") and learning-queue entries (`learning_mac`: a trainer drops one that does not verify) are
sealed the same way. Adapters are signed (`adapter_mac`) and an infer node loads only one that verifies.

The MAC covers each field's bytes exactly as redis-py sends them (`wire`), so the pushing and the reading
node compute it over the same bytes. A node without the key neither seals nor checks: it works as before,
but refuses (quarantines) a memory marked `enc`, which it cannot read (`hub/decode.py`).
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from hivemind_app.trust.hivekey import HiveKey

MEMORY_SEALED = (
    "id",
    "version",
    "node",
    "text",
    "deleted",
    "tags",
    "sources",
    "source",
    "session_id",
    "timestamp",
    "updated_at",
    "origin",
    "born",
    "label_stamps",
    "project",
    "enc",
    "occurred_at",
)
"""The fields of a memory's hash its `mac` covers (all but the vector's, which `vmac` covers)."""

SEALED_WHEN_SET = ("occurred_at",)
"""Fields added after memories were first sealed: the MAC covers each only when the record has it, so a record
sealed before it (by an older node) still verifies, and one given it or stripped of it in Redis does not (the
parts are length-prefixed, so a MAC over one more part is another MAC)."""

ENCRYPTED = ("text", "tags", "sources", "source", "session_id", "origin", "model", "vector", "label_stamps", "project",
             "occurred_at")  # fmt: skip  (the time a memory describes is content; the push script never reads it)
"""The fields of a memory's hash `hive.encrypt` encrypts: its content. Id, stamp, `deleted`, times and `dim`
stay readable, since the push script orders and prunes by them (the id is the SHA-256 of the text)."""


class Undecryptable(ValueError):
    """A field that does not decrypt with this hive's key."""


def wire(value: object) -> bytes:
    """A field value as redis-py encodes it (bytes as they are, str as UTF-8, numbers as their repr)."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode("ascii")
    raise TypeError(f"not a Redis field value: {type(value).__name__}")


class RecordSeal:
    """Seals and checks hub records with the hive key."""

    def __init__(self, key: HiveKey, encrypt: bool = False) -> None:
        self.key = key
        self.encrypt = encrypt
        # AES-SIV: deterministic, so a retried push of an unchanged record is byte-for-byte the same write
        # (the push script compares fields); each field is bound to its memory and its name
        self._siv = AESSIV(key.subkey("encrypt 1") + key.subkey("encrypt 2"))

    def encrypt_memory(self, memory_id: str, fields: Mapping[str, object]) -> dict[str, object]:
        """`fields` with its content encrypted (an empty field stays empty) and `enc` set, when `hive.encrypt`
        is on; as they are otherwise."""
        if not self.encrypt:
            return dict(fields)
        sealed: dict[str, object] = {**fields, "enc": "1"}
        for name in ENCRYPTED:
            plain = wire(fields.get(name))
            if plain:
                sealed[name] = self._siv.encrypt(plain, [b"memory", memory_id.encode(), name.encode()])
        return sealed

    def open_memory(self, memory_id: str, fields: Mapping[str, bytes]) -> dict[str, bytes]:
        """A memory's hash as read, its content decrypted when it was encrypted (`enc`); `Undecryptable` when
        a field does not decrypt with this key."""
        opened = dict(fields)
        if fields.get("enc") != b"1":
            return opened
        for name in ENCRYPTED:
            value = fields.get(name)
            if value:
                try:
                    opened[name] = self._siv.decrypt(value, [b"memory", memory_id.encode(), name.encode()])
                except InvalidTag:
                    raise Undecryptable(f"its {name!r} does not decrypt with this hive's key") from None
        return opened

    @staticmethod
    def _memory_parts(fields: Mapping[str, object]) -> list[bytes]:
        """What a memory's `mac` covers: `MEMORY_SEALED`, each of `SEALED_WHEN_SET` only when it is set."""
        return [
            wire(fields.get(name))
            for name in MEMORY_SEALED
            if name not in SEALED_WHEN_SET or wire(fields.get(name))
        ]

    def _memory_mac(self, fields: Mapping[str, object]) -> str:
        return self.key.mac("memory", *self._memory_parts(fields))

    def _vector_mac(self, fields: Mapping[str, object]) -> str:
        return self.key.mac("vector", wire(fields.get("id")), wire(fields.get("model")), wire(fields.get("vector")))

    def memory_pairs(self, fields: Mapping[str, object]) -> list[str]:
        """The field/value pairs a push adds to a memory's hash: `mac`, and `vmac` when it carries a vector."""
        pairs = ["mac", self._memory_mac(fields)]
        if fields.get("enc"):
            pairs += ["enc", str(fields["enc"])]
        if wire(fields.get("vector")):
            pairs += ["vmac", self._vector_mac(fields)]
        return pairs

    def memory_problem(self, fields: Mapping[str, bytes]) -> str | None:
        """Why a memory's hash read from the hub is not this hive's (None when its `mac` verifies)."""
        given = fields.get("mac")
        if not given:
            return "it carries no MAC: it was not written by a node holding this hive's key"
        if not self.key.verify("memory", given.decode("ascii", "replace"), *self._memory_parts(fields)):
            return "its MAC does not verify: it was changed in Redis, or written with another hive's key"
        return None

    def vector_ok(self, fields: Mapping[str, bytes]) -> bool:
        """Whether the memory's vector is the one a node of this hive pushed with it."""
        given = (fields.get("vmac") or b"").decode("ascii", "replace")
        sealed = [wire(fields.get(name)) for name in ("id", "model", "vector")]
        return bool(given) and self.key.verify("vector", given, *sealed)

    def session_pairs(self, session_id: str, version: str, node: str, state: str) -> list[str]:
        """The `mac` pair a session push adds: over its id, stamp and state JSON, as the hash holds them."""
        return ["mac", self.key.mac("session", session_id, version, node, state)]

    def cleared_pairs(self, session_id: str, version: str, node: str) -> list[str]:
        """The `mac` pair of a cleared session's marker: over its id, stamp and "cleared" (it has no state)."""
        return ["mac", self.key.mac("session cleared", session_id, version, node, "cleared")]

    def session_problem(self, session_id: str, fields: Mapping[str, bytes]) -> str | None:
        """Why a session's hash is not this hive's (None when its `mac` verifies). A cleared session's marker
        is checked as one (`cleared_pairs`): a forged marker would wipe the session on every node."""
        given = (fields.get("mac") or b"").decode("ascii", "replace")
        if not given:
            return "it carries no MAC: it was not written by a node holding this hive's key"
        if fields.get("cleared") == b"1":
            stamp = [wire(fields.get(name)) for name in ("version", "node")]
            if not self.key.verify("session cleared", given, session_id, *stamp, "cleared"):
                return "its MAC does not verify as a cleared marker: it was changed in Redis, or forged"
            return None
        sealed = [wire(fields.get(name)) for name in ("version", "node", "state")]
        if not self.key.verify("session", given, session_id, *sealed):
            return "its MAC does not verify: it was changed in Redis, or written with another hive's key"
        return None

    def learning_mac(self, entry: Mapping[str, str]) -> str:
        """The MAC of a learning-queue entry: every field but `mac`, by name."""
        parts = [part for name in sorted(entry) if name != "mac" for part in (name, entry[name])]
        return self.key.mac("learning", *parts)

    def learning_ok(self, entry: Mapping[str, str]) -> bool:
        return self.key.verify(
            "learning",
            entry.get("mac"),
            *[part for name in sorted(entry) if name != "mac" for part in (name, entry[name])],
        )

    def adapter_mac(self, version: int, base_model: str, sha256: str) -> str:
        return self.key.mac("adapter", str(version), base_model, sha256)

    def adapter_ok(self, version: int, base_model: str, sha256: str, given: object) -> bool:
        return self.key.verify("adapter", given, str(version), base_model, sha256)
