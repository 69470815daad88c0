"""A join code's shape and checksum, in a module light enough for the hook path: the redactor asks
`checksum_holds` at every run of code characters it finds, and importing `hivekey` (hashlib, hmac, secrets,
pathlib) there cost a Claude Code hook ~10 ms. `hivekey` builds and parses codes on top of this.

Invariant: a code is `hive-` and base32 (lower case, no padding) of the 32-byte key and the first 4 bytes of
SHA-256("hivemind join code\\0" + key); the last character's 2 spare bits are zero.
"""

from __future__ import annotations

from hivemind_app.lighthash import sha256_digest

KEY_BYTES = 32
CHECK_BYTES = 4
CODE_CHARS = ((KEY_BYTES + CHECK_BYTES) * 8 + 4) // 5  # base32 without padding: 58 characters
_AS_BASE32_DIGITS = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz234567", b"0123456789abcdefghijklmnopqrstuv")


def checksum(key: bytes) -> bytes:
    return sha256_digest(b"hivemind join code\0" + key)[:CHECK_BYTES]


def checksum_holds(code: bytes) -> bool:
    """Whether `code`, 58 lower-case code characters (no prefix, no dashes), is a join code: its last
    character's spare bits are zero and its checksum is the key's. In C but for a few calls (`int` reads
    base 32; `b32decode` loops in Python), so the redactor can ask it at every word. (Not a secret
    comparison: the checksum is derived from the code itself, so no constant-time compare is needed.)"""
    try:
        value = int(code.translate(_AS_BASE32_DIGITS), 32)
    except ValueError:
        return False
    spare = CODE_CHARS * 5 - (KEY_BYTES + CHECK_BYTES) * 8  # the last character's bits past the end
    if len(code) != CODE_CHARS or value & ((1 << spare) - 1):
        return False
    raw = (value >> spare).to_bytes(KEY_BYTES + CHECK_BYTES, "big")
    return raw[KEY_BYTES:] == checksum(raw[:KEY_BYTES])
