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
- A key file readable by other users, owned by another user, reached through a symbolic link, or one that
  does not parse, is an error that says how to fix it; it is never silently ignored (a node would then
  quietly work without its hive) nor read (`load_key` opens it with `O_NOFOLLOW` and checks what it opened).
- A key file is never overwritten: `save_key` creates it exclusively, so of two `hive init` at once one
  wins and the other is told a key exists.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from hivemind_app.errors import ConfigError, InvalidInputError
from hivemind_app.trust.joincode import CODE_CHARS, KEY_BYTES
from hivemind_app.trust.joincode import checksum as _checksum

GROUP = 5
CODE_PREFIX = "hive-"
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
        """A fresh random key whose join code holds a digit 2-7 (one in ~170,000 does not, and is drawn
        again: the redactor's search for codes pasted with whitespace skips windows without one; ~1e-5 bits
        of the key's 256 are given up for it)."""
        while True:
            key = cls(secrets.token_bytes(KEY_BYTES))
            if any(digit in key.join_code().removeprefix(CODE_PREFIX) for digit in "234567"):
                return key

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


def _code_text(code: str) -> str:
    """A pasted code as `parse_join_code` reads it: whitespace (anywhere: a wrapped or indented paste), case,
    the `hive-` prefix and the dashes do not matter."""
    text = "".join(code.split()).lower().removeprefix(CODE_PREFIX).replace("-", "")
    if len(text) == CODE_CHARS + 4 and text.startswith("hive"):  # `hive ur6ap ...`: the prefix's dash a space
        text = text[4:]
    return text


def code_is_partial(code: str) -> bool:
    """Whether `code` is the start of a join code, short of its last characters (a paste cut at a line end)."""
    text = _code_text(code)
    return 0 < len(text) < CODE_CHARS and all(c in _ALPHABET for c in text)


def parse_join_code(code: str) -> HiveKey:
    """The key a join code holds; `InvalidInputError` naming what is wrong with a code that is not one."""
    text = _code_text(code)
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


MAX_KEY_FILE_BYTES = 4096
"""A key file holds one join code and a newline; anything longer is not one (and is not read whole)."""


def load_key(path: Path) -> HiveKey | None:
    """The key in `path` (None when there is no file); `ConfigError` when the file is unsafe or damaged.

    The file is opened without following a symbolic link at `path` (`O_NOFOLLOW`: whoever can plant a link
    there would choose the key this node trusts, or make it read another file) and without blocking (a FIFO
    planted there is refused, never waited on); what was opened is then checked (`fstat` of the open file, so
    it cannot be swapped between the check and the read): a regular file, owned by this user, that no other
    user can read or write."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path.is_symlink():  # ELOOP (EMLINK on some BSDs): the last component is a link
            try:
                target = os.readlink(path)
            except OSError:  # removed or replaced since, or unreadable: still no key read through it
                target = "a target that cannot be read"
            raise ConfigError(
                f"The hive key file {path} is a symbolic link (to {target}); a key file is never read "
                f"through one, since whoever can plant the link chooses what this node trusts. Remove it (`rm "
                f"{path}`) and run `hivemind-app hive join` again, or set hive.key_file to the real file."
            ) from exc
        raise ConfigError(f"The hive key file {path} cannot be read ({exc.strerror}).") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"The hive key file {path} is not a regular file; remove it and run `hivemind-app hive join` again."
            )
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():  # POSIX (Windows has no owner uid)
            me = _user_name(os.geteuid())
            raise ConfigError(
                f"The hive key file {path} belongs to another user ({_user_name(info.st_uid)}, not {me}), who "
                f"could have planted it or can replace it. If it is yours, run `chown {me} {path}`; otherwise "
                "remove it and run `hivemind-app hive join` again."
            )
        if info.st_mode & 0o077:
            how = "read" if info.st_mode & 0o044 else "changed"
            raise ConfigError(
                f"The hive key file {path} can be {how} by other users (mode {oct(info.st_mode & 0o777)}): run "
                f"`chmod 600 {path}`, and if others may have read it, make a new key (`hive leave`, `hive init`)."
            )
        data = os.read(fd, MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        if len(data) > MAX_KEY_FILE_BYTES:
            raise InvalidInputError("too long")
        return parse_join_code(data.decode("ascii"))
    except (UnicodeDecodeError, InvalidInputError) as exc:
        raise ConfigError(
            f"The hive key file {path} is damaged; run `hivemind-app hive leave`, then `hivemind-app hive join` "
            "again (it asks for the join code)."
        ) from exc


def _user_name(uid: int) -> str:
    try:
        import pwd  # POSIX only, as the key file's checks are

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def key_state(path: Path) -> KeyState:
    """The key at `path` for display: never raises, a problem is described instead."""
    try:
        return KeyState(path, load_key(path))
    except ConfigError as exc:
        return KeyState(path, None, str(exc))


def save_key(path: Path, key: HiveKey) -> None:
    """Write the key (as its join code) to `path`, which must not exist yet: `ConfigError` when it does.

    The file is written whole under a temporary name (created 0600 from the start) and then linked to `path`,
    which, like `O_EXCL`, fails when anything is there already (a file, or a link someone planted): two `hive
    init` (or `join`) at once cannot both believe they made the key, and a reader never sees half a file. On
    a file system without hard links `path` is claimed with `O_EXCL` (empty) and the whole file renamed over
    it, so `path` is never half a key there either. Temporaries a killed `init` or `join` left behind (they
    hold the key) are removed first (`remove_stale_temporaries`)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_stale_temporaries(path)
    text = (key.join_code() + "\n").encode("ascii")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_new(tmp, text)
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            raise _key_exists(path) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):
                raise
            _claim(path)  # empty: fails when anything is there, as the link would
            try:
                os.replace(tmp, path)  # ours, now whole in one step
            except OSError:
                path.unlink(missing_ok=True)  # our empty claim: not left to read as a damaged key
                raise
    finally:
        tmp.unlink(missing_ok=True)


STALE_TEMPORARY_S = 60.0
"""How old a key file's temporary must be before another `init`/`join` removes it: a live one exists for
microseconds (written, linked, removed), so only one a killed run left behind is that old."""


def remove_stale_temporaries(path: Path, now: float | None = None) -> list[Path]:
    """Remove the temporaries `save_key` writes next to `path` (`.NAME.<8 hex>.tmp`, each holding the key)
    that a run killed between writing and removing them left behind: regular files of this user, older than
    `STALE_TEMPORARY_S` (a concurrent run's own is left alone). Which ones were removed; never raises."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{8}}\.tmp")
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if pattern.fullmatch(name) is None:
            continue
        candidate = path.parent / name
        try:
            info = candidate.lstat()
            mine = not hasattr(os, "geteuid") or info.st_uid == os.geteuid()
            if stat.S_ISREG(info.st_mode) and mine and now - info.st_mtime > STALE_TEMPORARY_S:
                candidate.unlink()
                removed.append(candidate)
        except OSError:
            continue
    return removed


def _write_new(path: Path, data: bytes) -> None:
    """Create `path` (0600, failing if anything is there, a link included) holding `data`, synced to disk."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise _key_exists(path) from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _claim(path: Path) -> None:
    """Create `path` empty (0600, failing if anything is there, a link included): nothing is written in it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        os.close(os.open(path, flags, 0o600))
    except FileExistsError:
        raise _key_exists(path) from None


def _key_exists(path: Path) -> ConfigError:
    return ConfigError(
        f"A hive key file already exists at {path} (another `hive init` or `hive join` made it just now, or "
        "something was put there): nothing was overwritten. `hivemind-app hive status` shows its fingerprint; "
        "run `hivemind-app hive leave` first to replace it."
    )


def remove_key(path: Path) -> bool:
    """Delete the key file; whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
