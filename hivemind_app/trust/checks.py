"""The checks a context rule's match must pass before it counts as a secret (`redact.py` runs the rules):
is an assignment's name secret-ish by its words, is its value a literal rather than a placeholder or code,
is a token random enough (Shannon entropy, with detect-secrets' limits)."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator

from hivemind_app.trust.rules import ASSIGNMENT_STEMS, ASSIGNMENT_VALUE_CODE, ASSIGNMENT_VALUE_ENV
from hivemind_app.trust.upstream import BASE64_ENTROPY_LIMIT, HEX_ENTROPY_LIMIT, KEYWORD_DENYLIST

Span = tuple[int, int]


def shannon_entropy(value: str) -> float:
    """Bits per character of `value`'s own character distribution."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def looks_random(value: str) -> bool:
    """A machine-made secret rather than a word, a path or an id: long, mixed and of high entropy.

    detect-secrets' limits (4.5 bits for base64, 3.0 for hex) hold for long strings; a string of n
    characters cannot exceed log2(n) bits, so shorter ones are held to 80% of that instead.
    """
    n = len(value)
    if n < 16:
        return False
    classes = any(c.islower() for c in value) + any(c.isupper() for c in value) + any(c.isdigit() for c in value)
    if classes < 2:
        return False
    ceiling = 0.8 * math.log2(n)
    limit = HEX_ENTROPY_LIMIT if _compiled_late(_HEX).fullmatch(value) else BASE64_ENTROPY_LIMIT
    return shannon_entropy(value) >= min(limit, ceiling)


_HEX = r"[0-9a-fA-F]+"
_PLACEHOLDER = (
    r"(?is)\$\{?[A-Za-z_][A-Za-z0-9_]{0,127}\}?"  # $VAR, ${VAR}
    r"|\$\{[^}\n]{0,256}\}|\$\(.{0,256}\)|\$\{\{.{0,256}\}\}|\{\{.{0,256}\}\}"  # ${VAR:-x}, $(cmd), {{ t }}
    r"|\{[A-Za-z_][\w.]{0,63}\}|<[^<>\n]{1,64}>"  # {name} (format strings), <your-token>
    r"|%\(?[A-Za-z_][A-Za-z0-9_]{0,63}\)?[sd]?|%[A-Za-z_][A-Za-z0-9_]{0,63}%"  # %(password)s, %PASSWORD%
    r"|[*xX•.…_#-]{1,64}"  # ****, xxxx, ..., ___
    r"|none|null|nil|true|false|yes|no|on|off|undefined|str|bytes|int|bool|any|optional|string|object|dict"
    r"|list|float|secretstr|secretbytes|password|passwd|pass|pwd|secret|token|apikey|api_key|redacted|hidden"
    r"|masked|empty|required|optional|env|environ|getenv|\[REDACTED.{0,64}"
    r"|test|testing|dummy|example|fake|sample|foo|bar|baz|placeholder|todo|tbd|your[\w-]{0,40}|my[_-][\w-]{0,40}"
)
_IDENT = r"[A-Za-z_]+"
_DOTTED = r"[A-Za-z_]+(?:\.[A-Za-z_]+)+"
_CALL = r"[A-Za-z_][\w.]{0,128}[(\[]"
_CLASS_NAME = r"[A-Z][a-z]+(?:[A-Z][a-z]+)*"
_PATH = r"(?:~|\.{1,2})?/[\w.@+-]*(?:/[\w.@+-]*)+|[A-Za-z]:\\[\w.\\ -]*"
_PORT_PATH = r"\d{1,5}(?:/|$)"
_CAMEL = r"[A-Z]+(?![a-z])|[A-Z]?[a-z\u00c0-\uffff]+|[0-9]+"

# the last word(s) of a name that make any literal value a secret
_STRONG = {
    "password",
    "passwd",
    "passwort",
    "passphrase",
    "pass",
    "pwd",
    "pw",
    "secret",
    "secrets",
    "token",
    "credential",
    "credentials",
    "contrasena",
    "contraseña",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "authkey",
    "clientkey",
    "authtoken",
    "accesstoken",
    "refreshtoken",
    "sessiontoken",
    "bearertoken",
    "apitoken",
    "passwords",
}
# joined names without separators (dbpassword, clientsecret, authtoken)
_STRONG_ENDINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "secretkey",
    "privatekey",
    "accesskey",
    "contrasena",
    "contraseña",
    "passwort",
)
# the word before "key" that makes a key secret (detect-secrets' denylist plus common ones)
_SECRET_KEY_PREFIXES = {d.split("_")[0] for d in KEYWORD_DENYLIST if d.endswith("_key")} | {
    "api",
    "access",
    "secret",
    "encryption",
    "enc",
    "decryption",
    "signing",
    "sign",
    "master",
    "session",
    "app",
    "crypt",
    "crypto",
    "aes",
    "hmac",
    "jwt",
    "shared",
    "storage",
    "subscription",
    "license",
    "licence",
    "admin",
    "root",
    "deploy",
    "ingest",
    "server",
    "webhook",
    "consumer",
    "cipher",
    "wrapping",
    "x",
}
# names whose values are secret only when they look random
_BORDERLINE = {"key", "auth", "salt", "sig", "signature", "cookie", "hmac"}
_SUFFIXES = {"b64", "base64", "hex", "value", "raw", "base", "str", "enc", "encrypted", "plain", "plaintext", "val"}
# "<x>_token" / "<x>_pass" that are not credentials (tokenizers, multi-pass algorithms)
_NOT_SECRET_BEFORE = {
    "token": {"max", "min", "num", "n", "count", "total", "limit", "input", "output", "eos", "bos", "pad", "unk"}
    | {"sep", "cls", "mask", "special", "start", "end", "stop", "first", "last", "word", "sub", "byte", "prompt"},
    "pass": {"first", "second", "third", "last", "one", "two", "multi", "single", "each", "final", "skip", "by"}
    | {"fast", "slow", "max", "min", "num", "n", "no", "sur", "com", "over", "under", "boarding", "bus", "day"},
}
_PASSWORD_FAMILY = {"password", "passwd", "passwort", "passphrase", "pass", "pwd", "pw", "passwords"}


@functools.cache
def _compiled_late(pattern: str) -> re.Pattern[str]:
    """Every pattern here, compiled the first time it is needed: the hook path imports this module on every
    call, and most hooks need none of them."""
    return re.compile(pattern)


def _words(name: str) -> list[str]:
    """The lower-case words of a name: DB_PASSWORD_2 -> db, password; apiKeyB64 -> api, key, b64."""
    words: list[str] = []
    for part in re.split(r"[_.\-]+", name):
        for word in _compiled_late(_CAMEL).findall(part):
            word = word.lower()
            if not word.isdigit():
                words.append(word)
            elif words and words[-1] + word in _SUFFIXES:
                words[-1] += word
    return words


@functools.lru_cache(maxsize=4096)
def _strength(name: str) -> tuple[str, str] | None:
    """("strong" | "weak", the name's last word) when `name` names a secret, else None."""
    words = _words(name)
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    if not words:
        return None
    tail, before = words[-1], (words[-2] if len(words) > 1 else "")
    if before in _NOT_SECRET_BEFORE.get(tail, ()):
        return None
    if tail in _STRONG:
        return "strong", tail
    if tail == "key" and before in _SECRET_KEY_PREFIXES:
        return "strong", tail
    if tail in _BORDERLINE:
        return "weak", tail
    joined = "".join(words)
    if len(words) == 1 and joined.endswith(_STRONG_ENDINGS):
        return "strong", tail
    return None


def _line_ends(text: str, pos: int) -> bool:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos >= len(text) or text[pos] in "\r\n,}]#;"


def _line_starts(text: str, pos: int) -> bool:
    """Only blanks, `-` (a YAML list) or `{`/`,` (an object) stand between the line's start and `pos`."""
    i = pos
    while i > 0 and text[i - 1] not in "\r\n":
        i -= 1
        if text[i] not in " \t-{,\"'":
            return False
    return True


def _is_call(value: str) -> bool:
    """`getenv(`, `os.environ[`, `Secret(`: code; a name of mixed case and digits before `(` is not."""
    call = _compiled_late(_CALL).match(value)
    if call is None:
        return False
    head = call.group()
    return not (any(c.isupper() for c in head) and any(c.islower() for c in head) and any(c.isdigit() for c in head))


def _is_placeholder(value: str) -> bool:
    return _compiled_late(_PLACEHOLDER).fullmatch(value) is not None


_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
_NAME_LEAD = "0123456789.-"  # a name starts with a letter or an underscore
_VALUE_ENV = ASSIGNMENT_VALUE_ENV
_VALUE_CODE = ASSIGNMENT_VALUE_CODE
_STEMS = tuple(ASSIGNMENT_STEMS)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # string.ascii_letters (no import on the hook path)
_CODE_CHARACTERS = frozenset(_LETTERS + "234567")
_CODE_SEPARATOR_BYTES = b"- \t\r\n\v\f?"
_CODE_WORD = r"[A-Za-z2-7]+"
# a code's last character holds its last 3 bits and 2 zero bits: base32 values divisible by 4
_LAST_CODE_CHARS = frozenset(b"aeimquy4")
_CODE_DIGITS = b"234567"
"""A code made by `HiveKey.generate` holds at least one of these (it draws again until its code does), so a
window without one is no code, and prose (rarely any of 2-7 in 58 letters) skips the checksum. A code made
before that rule lacks one with probability (26/32)^58, ~6e-6: such a code pasted with whitespace inside
would be missed here (its dashed and bare forms are still found by the other `hive-key` rules)."""
_GLUED = frozenset(_LETTERS + "0123456789")
"""What after a code's last character makes it part of a longer word. Not `-` or `_`: `CODE-` or `CODE_old`
is still the code (a longer run of code characters and dashes holds no code where its checksum fails)."""
_RUN_MORE = r"[-\sA-Za-z2-7]{1,1048576}+"
"""The rest of a run of the `spaced-join-code` rule past its own bound (the same characters)."""


def spaced_join_code_spans(runs: re.Pattern[str], text: str) -> Iterator[Span]:
    """Join codes pasted with whitespace inside (a terminal's wrap, an indented copy, spaces for dashes), with
    or without `hive-`: in each run of code characters, dashes and whitespace (`runs`), the 58 code
    characters from each word's start are a code when their checksum holds. Most tries end at one set lookup
    (a code's last character is one of eight); the rest cost a set of 58 characters, then one SHA-256."""
    from hivemind_app.trust.joincode import CODE_CHARS, checksum_holds  # late: the hook path imports this module

    more = _compiled_late(_RUN_MORE)
    for run in runs.finditer(text):
        base, end = run.span()
        while end < len(text) and (rest := more.match(text, end)) is not None:
            end = rest.end()  # a run longer than the rule's bound (1 MiB): the remainder too, not skipped
        body = text[base:end]
        if len(set(body)) < 12:
            continue  # a code alone has ~27 different characters: a run of `a a a ...` holds none
        words = [(w.start(), w.end()) for w in _compiled_late(_CODE_WORD).finditer(body)]
        # bytes (fast to slice and translate), one per character: other whitespace `\s` took becomes `?`, dropped
        chars = body.encode("ascii", "replace").translate(None, _CODE_SEPARATOR_BYTES).lower()
        glued = base > 0 and text[base - 1].isalnum()  # the run's first word continues the word in front
        rank, taken = 0, 0  # code characters before the current word; the end of the last code found
        for n, (start, end) in enumerate(words):
            first, rank = rank, rank + end - start
            if first < taken or (n == 0 and start == 0 and glued):
                continue
            skip = 4 if chars[first : first + 4] == b"hive" else 0
            for offset in (skip, 0) if skip else (0,):
                last = first + offset + CODE_CHARS - 1
                if last >= len(chars) or chars[last] not in _LAST_CODE_CHARS:
                    continue
                candidate = chars[first + offset : last + 1]
                if len(candidate.translate(None, _CODE_DIGITS)) == len(candidate):
                    continue  # no digit 2-7: prose (see `_CODE_DIGITS`), the checksum not asked
                if len(set(candidate)) < 12 or not checksum_holds(candidate):
                    continue
                stop = _after_code_character(body, start, last - first)
                if base + stop < len(text) and text[base + stop] in _GLUED:
                    continue  # the 58th character is not the code's last: a longer run
                yield base + start, base + stop
                taken = last + 1
                break


def _after_code_character(body: str, i: int, count: int) -> int:
    """The index in `body` just after the `count`-th code character from `i` (counting from 0)."""
    for j in range(i, len(body)):
        if body[j] in _CODE_CHARACTERS:
            if count == 0:
                return j + 1
            count -= 1
    return len(body)


def assignment_spans(separator: re.Pattern[str], text: str) -> Iterator[Span]:
    """NAME=value: each separator whose name (read backwards) is secret-ish, and the value after it.

    A value once read is not searched again for separators, so a long value costs one scan.
    """
    consumed = 0
    for sep in separator.finditer(text):
        at = sep.start()
        if at < consumed:
            continue
        # the name: blanks, then an optional closing quote (maybe escaped), then the name itself
        i = at
        while i > 0 and at - i < 8 and text[i - 1] in " \t":
            i -= 1
        quoted_name = i > 0 and text[i - 1] in "\"'"
        if quoted_name:
            i -= 1
            if i > 0 and text[i - 1] == "\\":
                i -= 1
        if not text[max(0, i - 12) : i].lower().endswith(_STEMS):
            continue
        window = text[max(0, i - 64) : i]
        name = window[len(window.rstrip(_NAME_CHARS)) :].lstrip(_NAME_LEAD)
        strength = _strength(name) if name else None
        if strength is None:
            continue
        value = _compiled_late(_VALUE_ENV if name.isupper() else _VALUE_CODE).match(text, sep.end())
        if value is None:
            continue
        consumed = value.end()
        span = check_assignment(text, name, i - len(name), quoted_name, sep.group(), strength, value)
        if span is not None:
            yield span


def check_assignment(
    text: str, name: str, name_at: int, quoted_name: bool, sep: str, strength: tuple[str, str], match: re.Match[str]
) -> Span | None:
    """The span of an assignment's value when it is a literal secret, else None."""
    value = match.group("value")
    start, end = match.span("value")
    quoted = True
    if value.startswith('\\"'):
        inner, start = value[2:], start + 2
        if inner.endswith('\\"'):
            inner, end = inner[:-2], end - 2
    elif value[0] in "\"'`":
        inner, start = value[1:], start + 1
        if inner and inner[-1] == value[0]:
            inner, end = inner[:-1], end - 1
    else:
        inner, quoted = value, False
        while inner and inner[-1] in ",;)]}":  # NAME=value, in a list or a call
            inner, end = inner[:-1], end - 1
    if len(inner) < 3 or _is_placeholder(inner):
        return None
    level, tail = strength
    if not quoted:
        if text[end : end + 1] in ("(", "["):  # a call or an index: code
            return None
        if _compiled_late(_DOTTED).fullmatch(inner) or _is_call(inner):  # self.password, os.environ.get(...)
            return None
        if _compiled_late(_IDENT).fullmatch(inner):
            if sep == ":" and (quoted_name or _compiled_late(_CLASS_NAME).fullmatch(inner)):
                return None  # {"token": token} in code; password: SecretStr annotations
            if sep != ":" and not name.isupper():
                return None  # password=password, token = access_token: a variable
            if sep == ":" and not _line_starts(text, name_at - quoted_name):
                return None  # "... refused the password: invalid": prose
        if sep == ":" and not _line_ends(text, end) and not looks_random(inner):
            return None  # prose: "password: the one you chose"
    if _compiled_late(_PATH).fullmatch(inner) and shannon_entropy(inner) < 4.0:
        return None  # PWD=/home/me, SECRET_FILE: /run/secrets/db
    if inner.isdigit() and len(inner) < 8 and tail not in _PASSWORD_FAMILY:
        return None
    if level == "weak" and not looks_random(inner):
        return None
    return start, end


def _check_plain(match: re.Match[str], span: Span) -> Span | None:
    return span


def _text(match: re.Match[str], span: Span) -> str:
    return match.string[span[0] : span[1]]


def _check_mixed(match: re.Match[str], span: Span) -> Span | None:
    secret = _text(match, span)
    has_digit = any(c.isdigit() for c in secret)
    if (has_digit and any(c.isalpha() for c in secret)) or shannon_entropy(secret) >= 4.0:
        return span
    return None


def _check_random(match: re.Match[str], span: Span) -> Span | None:
    return span if looks_random(_text(match, span)) else None


def _check_random_path(match: re.Match[str], span: Span) -> Span | None:
    return span if any(looks_random(part) for part in _text(match, span).split("/")) else None


def _check_userinfo(match: re.Match[str], span: Span) -> Span | None:
    secret = _text(match, span)
    if _compiled_late(_PORT_PATH).match(secret) or _is_placeholder(secret):
        return None  # http://localhost:5173/@vite: a port and a path, not a password
    return span


def _check_cli(match: re.Match[str], span: Span) -> Span | None:
    secret = _text(match, span)
    if secret.startswith("-") or secret.startswith("$") or _is_placeholder(secret):
        return None
    if secret.isdigit() and match.group(0).startswith(("-u", "-U", "--user")):
        return None  # docker run -u 1000:1000: a uid and a gid
    return span


def _check_xml(match: re.Match[str], span: Span) -> Span | None:
    return None if _is_placeholder(_text(match, span).strip()) else span


def _check_pem(match: re.Match[str], span: Span) -> Span | None:
    """Take the BEGIN line's leading dashes (and the space of `---- BEGIN SSH2 ...`) into the secret."""
    text, start = match.string, span[0]
    if start > 0 and text[start - 1] == " ":
        start -= 1
    dashes = 0
    while start > 0 and dashes < 5 and text[start - 1] == "-":
        start, dashes = start - 1, dashes + 1
    return (start, span[1]) if dashes >= 4 else None


def _check_discord(match: re.Match[str], span: Span) -> Span | None:
    return span if match.string[span[0]] in "MNO" else None


def _check_join_code(match: re.Match[str], span: Span) -> Span | None:
    """A join code without its prefix: only one whose checksum holds (so a long word is left alone)."""
    from hivemind_app.errors import InvalidInputError
    from hivemind_app.trust.hivekey import parse_join_code  # late: the hook path imports this module

    try:
        parse_join_code(_text(match, span))
    except InvalidInputError:
        return None
    return span


CHECKS: dict[str, Callable[[re.Match[str], Span], Span | None]] = {
    "": _check_plain,
    "mixed": _check_mixed,
    "random": _check_random,
    "random_path": _check_random_path,
    "userinfo": _check_userinfo,
    "cli": _check_cli,
    "xml": _check_xml,
    "discord": _check_discord,
    "pem": _check_pem,
    "join-code": _check_join_code,
}
