"""The hive key: 32 random bytes every machine of one hive holds, and nothing else does.

Invariants:
- The key is made once (`hive init`), shown once as a join code, and stored only in a 0600 file in the
  config directory (`hive.key`). It is never logged, printed again, sent over the network or written to
  Redis: what leaves the machine are MACs made with keys derived from it (`HiveKey.mac`), and its
  fingerprint (a hash that cannot be turned back into the key).
- A join code is the key plus a 4-byte checksum, in base32 groups: a mistyped or truncated code is refused
  with what is wrong, never stored as another key.
- Each use derives its own sub-key (`HiveKey.mac(purpose, ...)`): a MAC made for one purpose (a peer's
  proof, a request, a record) is never valid for another.
- A key file readable by other users, or one that does not parse, is an error that says how to fix it; it is
  never silently ignored (a node would then quietly work without its hive).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from hivemind_app.errors import ConfigError, InvalidInputError

KEY_BYTES = 32
CHECK_BYTES = 4
GROUP = 5
CODE_PREFIX = "hive-"
CODE_CHARS = ((KEY_BYTES + CHECK_BYTES) * 8 + 4) // 5  # base32 without padding: 58 characters
KEY_FILE_NAME = "hive.key"
_ALPHABET = set("abcdefghijklmnopqrstuvwxyz234567")


class HiveKey:
    """The hive's shared secret. Its `repr` and `str` show the fingerprint only."""

    __slots__ = ("_key", "_subkeys")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a hive key is {KEY_BYTES} bytes, not {len(key)}")
        self._key = bytes(key)
        self._subkeys: dict[str, bytes] = {}

    @classmethod
    def generate(cls) -> HiveKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    def __repr__(self) -> str:
        return f"HiveKey(fingerprint={self.fingerprint})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HiveKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @property
    def fingerprint(self) -> str:
        """Sixteen hex digits in four groups: enough to compare two machines by eye, useless to an attacker."""
        digest = hashlib.sha256(b"hivemind fingerprint\0" + self._key).hexdigest()[:16]
        return "-".join(digest[i : i + 4] for i in range(0, 16, 4))

    def join_code(self) -> str:
        """`hive-` and the key with its checksum in base32, in groups of five."""
        raw = base64.b32encode(self._key + _checksum(self._key)).decode("ascii").rstrip("=").lower()
        return CODE_PREFIX + "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))

    def subkey(self, purpose: str) -> bytes:
        """A key for one purpose only (HMAC-SHA256 of the purpose under the hive key), derived once."""
        found = self._subkeys.get(purpose)
        if found is None:
            label = b"hivemind subkey\0" + purpose.encode("utf-8")
            found = self._subkeys[purpose] = hmac.new(self._key, label, hashlib.sha256).digest()
        return found

    def mac(self, purpose: str, *parts: bytes | str) -> str:
        """HMAC-SHA256 (hex) over `parts` under the sub-key of `purpose`. Each part is length-prefixed, so
        no two different lists of parts give the same input (`"ab","c"` is not `"a","bc"`)."""
        digest = hmac.new(self.subkey(purpose), digestmod=hashlib.sha256)
        for part in parts:
            data = part.encode("utf-8") if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.hexdigest()

    def verify(self, purpose: str, given: object, *parts: bytes | str) -> bool:
        """Whether `given` is the MAC of `parts` for `purpose` (constant time; anything not a string is not)."""
        if not isinstance(given, str):
            return False
        return hmac.compare_digest(given.encode("ascii", "replace"), self.mac(purpose, *parts).encode("ascii"))


def _checksum(key: bytes) -> bytes:
    return hashlib.sha256(b"hivemind join code\0" + key).digest()[:CHECK_BYTES]


def parse_join_code(code: str) -> HiveKey:
    """The key a join code holds; `InvalidInputError` naming what is wrong with a code that is not one."""
    text = "".join(code.split()).lower()
    text = text.removeprefix(CODE_PREFIX).replace("-", "")
    if not text:
        raise InvalidInputError("The join code is empty: paste the code `hivemind-app hive init` printed.")
    wrong = sorted({c for c in text if c not in _ALPHABET})
    if wrong:
        shown = ", ".join(repr(c) for c in wrong[:5])
        raise InvalidInputError(
            f"The join code contains {shown}, which a join code never does (it is letters a-z and digits 2-7): "
            "check for a mistyped 0/o, 1/l or 8/b."
        )
    if len(text) != CODE_CHARS:
        raise InvalidInputError(
            f"The join code has {len(text)} characters where it should have {CODE_CHARS} (after `hive-`, "
            "without the dashes): part of it is missing or doubled; copy the whole code again."
        )
    try:
        raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError) as exc:  # the last character carries bits a code never sets
        raise InvalidInputError("The join code does not decode: its last group is mistyped.") from exc
    key, check = raw[:KEY_BYTES], raw[KEY_BYTES:]
    if not hmac.compare_digest(check, _checksum(key)):
        raise InvalidInputError(
            "The join code's checksum does not match: a character is mistyped. Copy the code again from the "
            "machine where `hivemind-app hive init` ran."
        )
    return HiveKey(key)


@dataclass(frozen=True)
class KeyState:
    """What `hive status`, `status` and `doctor` say about this node's key."""

    path: Path
    key: HiveKey | None
    problem: str | None = None
    """Why the file there cannot be used (None when there is none, or it is fine)."""

    @property
    def fingerprint(self) -> str | None:
        return self.key.fingerprint if self.key else None

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "fingerprint": self.fingerprint, "problem": self.problem}


ALONE = (
    "this node works alone: it does not use peers' embed or infer roles and serves only loopback callers, "
    "and it cannot sign or check hub records"
)


def load_key(path: Path) -> HiveKey | None:
    """The key in `path` (None when there is no file); `ConfigError` when the file is unsafe or damaged."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"The hive key file {path} cannot be read ({exc.strerror}).") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"The hive key file {path} is not a regular file; remove it and run `hive join` again.")
    if info.st_mode & 0o077:
        raise ConfigError(
            f"The hive key file {path} can be read by other users (mode {oct(info.st_mode & 0o777)}): "
            f"run `chmod 600 {path}`, and if others may have read it, make a new key (`hive leave`, `hive init`)."
        )
    try:
        text = path.read_text(encoding="ascii")
        return parse_join_code(text)
    except (UnicodeDecodeError, InvalidInputError) as exc:
        raise ConfigError(
            f"The hive key file {path} is damaged; run `hivemind-app hive leave`, then `hive join CODE` again."
        ) from exc


def key_state(path: Path) -> KeyState:
    """The key at `path` for display: never raises, a problem is described instead."""
    try:
        return KeyState(path, load_key(path))
    except ConfigError as exc:
        return KeyState(path, None, str(exc))


def save_key(path: Path, key: HiveKey) -> None:
    """Write the key (as its join code) to `path`, created 0600 from the start and replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key.join_code() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_key(path: Path) -> bool:
    """Delete the key file; whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
