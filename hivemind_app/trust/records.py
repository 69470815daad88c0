"""MACs on what a node writes to the hub, so Redis holds records but cannot author them.

A node with the hive key seals every memory it pushes (live or deleted): `mac`, an HMAC-SHA256 under the
key over the memory's fields as Redis stores them, and `vmac` over its id, model and vector. A node with the
key takes from the hub only a memory whose `mac` verifies (`hub/decode.py` raises `BadRecord`, and the
record is quarantined with the reason): one planted with redis-py, changed in place, or sealed with another
hive's key is never applied, shown or injected. A vector whose `vmac` does not verify is dropped, never the
memory: the node embeds the text itself (a same-stamp repair may keep the hub's vector without its `vmac`).
Sessions (`session_mac`, over the id, stamp, state, and `SESSION_ORDERED_BY`: the fields the push script
orders edits by; a cleared session's marker over the same with "cleared" for its state) and learning-queue
entries (`learning_mac`: a trainer drops one that does not verify) are sealed the same way; each side of a
session conflict record carries its edit's MAC and what it covers, and is checked as a session's hash is.
Adapters are signed (`adapter_mac`) and an infer node loads only one that verifies; the `models:active`
pointer is sealed with its stamp (`pointer_mac`), which only grows, so an older pointer put back is refused.

With `hive.encrypt`, the content of each record is encrypted (AES-SIV, deterministic, each field bound to its
record and its name) before it is sealed, so a MAC is over the ciphertext: memories as raw bytes, sessions and
learning entries as text (`ENC_TEXT_PREFIX` and base64: they travel inside JSON and are read back as text).
Ids, stamps and times stay readable; a record carries `enc` = '1' when its content is encrypted. A cached tool
output (a plain string, no room for a MAC) is encrypted as text too: under `hive.encrypt` only one that
decrypts is taken.

The MAC covers each field's bytes exactly as redis-py sends them (`wire`), so the pushing and the reading
node compute it over the same bytes. A node without the key neither seals nor checks: it works as before,
but refuses (quarantines) a memory marked `enc`, which it cannot read (`hub/decode.py`).
"""

from __future__ import annotations

import base64
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

ENCRYPTED = (
    "text",
    "tags",
    "sources",
    "source",
    "session_id",
    "origin",
    "model",
    "vector",
    "label_stamps",
    "project",
    "occurred_at",
)  # fmt: skip  (the time a memory describes is content; the push script never reads it)
"""The fields of a memory's hash `hive.encrypt` encrypts: its content. Id, stamp, `deleted`, times and `dim`
stay readable, since the push script orders and prunes by them (the id is the SHA-256 of the text)."""


SESSION_ORDERED_BY = ("base", "base_node", "epoch", "enc")
"""The fields of a session's hash the push script orders edits by (the base it follows, the hive epoch it was
written in), and its `enc` marker: covered by its `mac` with its stamp and state, so none of them can be
changed in Redis to make one edit win over another."""

SESSION_ENCRYPTED = ("state", "context", "files", "current_task")
"""The fields of a session's hash `hive.encrypt` encrypts: all of its content (the seed's layout keeps its
field names; `timestamp`, the stamp and the base stay readable, as a memory's times do)."""

LEARNING_ENCRYPTED = ("user_query", "tool_used", "tool_input", "result", "session_id")
"""The fields of a learning-queue entry `hive.encrypt` encrypts: all but its `success` flag, `timestamp`, and
the content-free `node` and `uid` it is bound to."""

POINTER_SEALED = ("version", "sha256", "base_model", "stamp")
"""The fields of the `models:active` pointer its `mac` covers: the adapter it names and its `stamp`, the
activating node's clock (a version), which only grows: a node refuses a pointer older than the newest it took,
so an older adapter signed long ago cannot be put back by whoever writes to Redis."""

ENC_TEXT_PREFIX = "enc1:"
"""How an encrypted text field starts (base64 of the AES-SIV ciphertext follows)."""


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
            wire(fields.get(name)) for name in MEMORY_SEALED if name not in SEALED_WHEN_SET or wire(fields.get(name))
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

    # -- sessions ---------------------------------------------------------------------------------

    def _text_cipher(self, plain: str, context: list[bytes]) -> str:
        """`plain` AES-SIV-encrypted under `context`, as ASCII text (a session's fields travel inside JSON: the
        conflict records the push script builds, and a stream entry is read back as text)."""
        return ENC_TEXT_PREFIX + base64.urlsafe_b64encode(self._siv.encrypt(plain.encode("utf-8"), context)).decode()

    def _text_plain(self, cipher: str, context: list[bytes], name: str) -> str:
        if not cipher.startswith(ENC_TEXT_PREFIX):
            raise Undecryptable(f"its {name!r} is not ciphertext although the record is marked encrypted")
        try:
            data = base64.urlsafe_b64decode(cipher[len(ENC_TEXT_PREFIX) :].encode("ascii"))
            return self._siv.decrypt(data, context).decode("utf-8")
        except (InvalidTag, ValueError):  # binascii.Error and UnicodeError are ValueErrors
            raise Undecryptable(f"its {name!r} does not decrypt with this hive's key") from None

    def encrypt_session_field(self, session_id: str, name: str, plain: str) -> str:
        """A session field as `hive.encrypt` stores it (as it is when encryption is off)."""
        if not self.encrypt:
            return plain
        return self._text_cipher(plain, [b"session", session_id.encode(), name.encode()])

    def open_session_field(self, session_id: str, name: str, stored: str) -> str:
        """A session field as read, decrypted (`Undecryptable` when it does not decrypt with this key)."""
        return self._text_plain(stored, [b"session", session_id.encode(), name.encode()], name)

    @staticmethod
    def _session_parts(fields: Mapping[str, object]) -> list[bytes]:
        cleared = wire(fields.get("cleared")) == b"1"
        content = b"cleared" if cleared else wire(fields.get("state"))
        return (
            [wire(fields.get(name)) for name in ("version", "node")]
            + [content]
            + [wire(fields.get(name)) for name in SESSION_ORDERED_BY]
        )

    def session_mac(self, session_id: str, fields: Mapping[str, object]) -> str:
        """The MAC of a session edit (or a cleared marker, `cleared` = '1'): over its id, stamp, state as the
        hash holds it (or "cleared"), and the fields the push script orders edits by (`SESSION_ORDERED_BY`)."""
        purpose = "session cleared" if wire(fields.get("cleared")) == b"1" else "session"
        return self.key.mac(purpose, session_id, *self._session_parts(fields))

    def session_problem(self, session_id: str, fields: Mapping[str, bytes]) -> str | None:
        """Why a session's hash (or one side of a conflict record, in the same fields) is not this hive's (None
        when its `mac` verifies). A cleared session's marker is checked as one: a forged marker would wipe the
        session on every node."""
        given = (fields.get("mac") or b"").decode("ascii", "replace")
        if not given:
            return "it carries no MAC: it was not written by a node holding this hive's key"
        cleared = fields.get("cleared") == b"1"
        purpose = "session cleared" if cleared else "session"
        if not self.key.verify(purpose, given, session_id, *self._session_parts(fields)):
            what = " as a cleared marker" if cleared else ""
            return f"its MAC does not verify{what}: it was changed in Redis, or written with another hive's key"
        return None

    def conflict_mac(self, session_id: str, winner_mac: str, loser_mac: str) -> str:
        """The MAC of a session conflict record as a whole: which sealed edit won over which. Each side's own
        MAC proves only that it was an edit of this session; this one binds the pair, so a record assembled
        in Redis from other sealed edits of the session (sides swapped, an older edit planted as the loser, so
        that "keep B" rolls the session back) does not verify. The pusher, which checked the hub's copy and
        sealed its own edit, knows both sides' MACs before the script decides, and sends one per outcome."""
        return self.key.mac("session conflict", session_id, winner_mac, loser_mac)

    def conflict_ok(self, session_id: str, winner_mac: str, loser_mac: str, given: object) -> bool:
        return self.key.verify("session conflict", given, session_id, winner_mac, loser_mac)

    # -- learning-queue entries -------------------------------------------------------------------

    def encrypt_learning(self, entry: Mapping[str, str]) -> dict[str, str]:
        """A learning-queue entry as pushed: its content encrypted (bound to its `uid` and field name) and
        `enc` set when `hive.encrypt` is on; as it is otherwise."""
        if not self.encrypt:
            return dict(entry)
        uid = entry.get("uid", "").encode()
        sealed = {**entry, "enc": "1"}
        for name in LEARNING_ENCRYPTED:
            if entry.get(name):
                sealed[name] = self._text_cipher(entry[name], [b"learning", uid, name.encode()])
        return sealed

    def open_learning(self, entry: Mapping[str, str]) -> dict[str, str]:
        """A learning-queue entry as read, decrypted when it was encrypted (`Undecryptable` otherwise)."""
        opened = dict(entry)
        if entry.get("enc") != "1":
            return opened
        opened.pop("enc")
        uid = entry.get("uid", "").encode()
        for name in LEARNING_ENCRYPTED:
            if entry.get(name):
                opened[name] = self._text_plain(entry[name], [b"learning", uid, name.encode()], name)
        return opened

    def learning_mac(self, entry: Mapping[str, str]) -> str:
        """The MAC of a learning-queue entry as pushed (encrypted or not): every field but `mac`, by name."""
        parts = [part for name in sorted(entry) if name != "mac" for part in (name, entry[name])]
        return self.key.mac("learning", *parts)

    def learning_ok(self, entry: Mapping[str, str]) -> bool:
        return self.key.verify(
            "learning",
            entry.get("mac"),
            *[part for name in sorted(entry) if name != "mac" for part in (name, entry[name])],
        )

    # -- the tool cache ---------------------------------------------------------------------------

    def encrypt_tool_output(self, tool: str, input_hash: str, output: str) -> str:
        """A cached tool output as pushed: encrypted, bound to its tool and input, when `hive.encrypt` is on."""
        if not self.encrypt:
            return output
        return self._text_cipher(output, [b"tool", tool.encode(), input_hash.encode()])

    def open_tool_output(self, tool: str, input_hash: str, stored: str) -> str | None:
        """A cached tool output as read: decrypted when it is encrypted; None (a miss) when it does not decrypt
        with this key, or when this hive encrypts and it is plaintext (AES-SIV is authenticated, so under
        `hive.encrypt` an output written into Redis without the key is never taken)."""
        if stored.startswith(ENC_TEXT_PREFIX):
            try:
                return self._text_plain(stored, [b"tool", tool.encode(), input_hash.encode()], "output")
            except Undecryptable:
                return None
        return None if self.encrypt else stored

    # -- adapters -----------------------------------------------------------------------------------

    def adapter_mac(self, version: int, base_model: str, sha256: str) -> str:
        return self.key.mac("adapter", str(version), base_model, sha256)

    def adapter_ok(self, version: int, base_model: str, sha256: str, given: object) -> bool:
        return self.key.verify("adapter", given, str(version), base_model, sha256)

    def pointer_mac(self, pointer: Mapping[str, object]) -> str:
        """The MAC of the `models:active` pointer: over the adapter it names (or none) and its `stamp`."""
        return self.key.mac("adapter pointer", *(wire(_pointer_part(pointer.get(name))) for name in POINTER_SEALED))

    def pointer_ok(self, pointer: Mapping[str, object]) -> bool:
        parts = (wire(_pointer_part(pointer.get(name))) for name in POINTER_SEALED)
        return self.key.verify("adapter pointer", pointer.get("mac"), *parts)


def _pointer_part(value: object) -> object:
    """A pointer field as the MAC takes it: a JSON null (no adapter active) as '', a number as its text."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    return value
