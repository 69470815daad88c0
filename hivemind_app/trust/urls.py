"""A URL made safe to show: the one function every status line, settings view and error message uses.

It cannot fail open. `urllib.parse` splits the authority at the first `/`, `?` or `#`, so a password
holding one of them unencoded (`redis://:pa/ss#1@nas:6379`) lands partly in the path and is printed; and
a URL that does not parse raises, taking the message that would have shown it with it. Here the userinfo
is everything between `://` and the last `@` before the host (a host never holds `@`), replaced whole;
credentials in the query (`?password=`, `token=`, ...) are replaced by `***`; what remains goes through
the secret redactor (a webhook's secret path, a token in the path); and a string that is not a URL at all
is hidden unless it plainly holds no credential.

Invariant: for any string, the result contains no password or query credential of the input.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:password|passwd|pass|pwd|secret|token|auth|access_token|api_key|apikey|key|sig|signature)=)"
    r"[^&;#]*"
)
HIDDEN = "***"


def redact_url(url: str) -> str:
    scheme = _SCHEME.match(url)
    if scheme is None:
        # not a URL: show it only when nothing in it could be a credential
        return url if re.fullmatch(r"[A-Za-z0-9.\-_:/]*", url) and "@" not in url else HIDDEN
    rest = url[scheme.end() :]
    at = _last_userinfo_end(rest)
    if at is not None:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, _ = userinfo.partition(":")
        rest = (f"{user}:{HIDDEN}@" if colon else f"{HIDDEN}@") + rest
    rest = _SECRET_PARAMS.sub(lambda m: m.group(1) + HIDDEN, rest)
    from hivemind_app.trust.redact import redact  # lazily: the rules compile on first use

    return scheme.group(0) + redact(rest)


def _last_userinfo_end(rest: str) -> int | None:
    """Where the userinfo (after `://`) ends, or None when there is none.

    The usual case: the authority (up to the first `/`, `?` or `#`) holds an `@`; the userinfo ends at its
    last one (a password may hold `@`). The case urllib gets wrong: the authority holds `user:` and an `@`
    comes later (a password with `/`, `?` or `#` in it); then the userinfo ends at the last `@` of all,
    hiding too much rather than too little. `host:6379` is a port, not a user.
    """
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority = rest[:cut]
    if "@" in authority:
        return authority.rfind("@")
    if ":" not in authority or "@" not in rest[cut:]:
        return None
    if re.fullmatch(r"[^:]+:\d*", authority):  # host:port, then an `@` in the path or query
        return None
    return rest.rfind("@")
