"""A URL made safe to show: the one function every status line, settings view and error message uses.

It cannot fail open. `urllib.parse` splits the authority at the first `/`, `?` or `#`, so a password
holding one of them unencoded (`redis://:pa/ss#1@nas:6379`) lands partly in the path and is printed; and
a URL that does not parse raises, taking the message that would have shown it with it. Here the userinfo
is everything between `://` and the last `@` (a host never holds `@`), replaced whole;
credentials in the query (`?password=`, `token=`, ...) are replaced by `***`; what remains goes through
the secret redactor (a webhook's secret path, a token in the path); and a string that is not a URL at all
is hidden unless it plainly holds no credential.

Invariant: for any string, the result contains no password or query credential of the input.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_SECRET_PARAMS = re.compile(
    r"(?i)([?&;#](?:password|passwd|pass|pwd|secret|token|auth|access_token|api_key|apikey|key|sig|signature)=)"
    r"([^&;#]*)"
)
HIDDEN = "***"


def redact_url(url: str) -> str:
    scheme = _SCHEME.match(url)
    if scheme is None:
        # not a URL: show it only when nothing in it could be a credential
        return url if re.fullmatch(r"[A-Za-z0-9.\-_:/]*", url) and "@" not in url else HIDDEN
    rest = url[scheme.end() :]
    # the values of credential parameters, read before the userinfo is cut (a value may hold `@`)
    values = [m.group(2) for m in _SECRET_PARAMS.finditer(rest) if m.group(2)]
    at = _last_userinfo_end(rest)
    if at is not None:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, _ = userinfo.partition(":")
        rest = (f"{user}:{HIDDEN}@" if colon else f"{HIDDEN}@") + rest
    rest = _SECRET_PARAMS.sub(lambda m: m.group(1) + HIDDEN, rest)
    for value in values:  # what is left of a value the userinfo cut split (`password=ab@cdef` -> `cdef`)
        for piece in value.split("@"):
            if len(piece) >= 2 and piece in rest:
                rest = rest.replace(piece, HIDDEN)
    from hivemind_app.trust.redact import redact  # lazily: the rules compile on first use

    return scheme.group(0) + redact(rest)


def _last_userinfo_end(rest: str) -> int | None:
    """Where the userinfo (after `://`) ends: the last `@`, or None when there is none.

    Hosts never hold `@`, but a password may hold `@`, `/`, `?`, `#` and digits in any order, so no rule
    that looks for where the authority ends can tell `user:1234/ab@host` from `host:1234/path@x`. Taking
    the last `@` hides too much for a URL with `@` in its path or query (`https://***@scope/pkg`), never
    too little.
    """
    at = rest.rfind("@")
    return None if at < 0 else at
