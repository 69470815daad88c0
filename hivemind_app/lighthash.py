"""SHA-256 without importing hashlib, which loads OpenSSL: milliseconds on every Claude Code hook. The hook
path (the injected-ids file name, the join-code checksum the redactor checks) uses this; everything else may
use hashlib. Same digests as hashlib.sha256."""

from __future__ import annotations


def sha256_digest(data: bytes) -> bytes:
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]  # Python 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]  # 3.12 and later
        except ImportError:
            from hashlib import sha256  # type: ignore[assignment,unused-ignore]
    return bytes(sha256(data).digest())
