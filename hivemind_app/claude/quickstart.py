"""`hivemind-app mcp` answers the MCP handshake before the SDK is imported, then hands the connection to it.

Importing the MCP SDK costs ~0.5 s and the facade ~0.2 s more (1.0 to 1.7 s to `initialize` on 2 cores), and
Claude Code gives a server ~3 s to answer its first request before it falls back or gives up
(docs/claude-code-internals.md). So the console script reads the first message itself (stdlib only); when it
is a handshake (`initialize`, or the 2026-07-28 `server/discover` probe) whose answer is known, it writes that
answer at once, and only then imports the SDK and starts the real server on the same stdin/stdout.

How the answer is known, exactly: it is the result the SDK itself gave to the same handshake (same method,
same requested protocol version) the last time, under the same hivemind-app and SDK (the cache key), kept in
`<data dir>/mcp-handshake.json`. The first message is always replayed to the SDK, which answers it as
usual; when the fast path already answered, that second answer is not sent (the client sees one answer per
id) but compared with what was sent and stored: a cache that went stale is corrected by the next start, and
a first start (nothing cached) is simply answered by the SDK, as before.

What is trusted from the cache: only an entry {"result": {...}} whose `serverInfo.name` is ours and whose
`protocolVersion` is the one the client asked for (for `server/discover`: `_meta`'s serverInfo, and the asked
version among `supportedVersions`); the reply is always built here as
{"jsonrpc": "2.0", "id": <the request's id>, "result": ...}, so the file can never set the id or send an error.
The file is written 0600 by atomic replace and holds only the current installation's entries.

While the SDK serves, fd 0 reads /dev/null and fd 1 goes to stderr (as the SDK's own stdio transport does), so
a stray print cannot corrupt the protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

CACHE_NAME = "mcp-handshake.json"
HANDSHAKES = ("initialize", "server/discover")
PROTOCOL_META = "io.modelcontextprotocol/protocolVersion"
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"  # where server/discover's answer names the server
SERVER_NAME = "hivemind"  # the SDK server's name (server.py); an entry naming another server is not ours
_VERSIONS_FIELD = "versions"  # the versions string every entry in the file was kept under


def cache_path() -> Path:
    """In the data dir the settings name (resolved without pydantic), beside the store it serves."""
    from hivemind_app.claude.spool import data_dir

    return data_dir() / CACHE_NAME


def _versions() -> str:
    """What the SDK's answer depends on besides the request: this app's version and server code, and the
    installed SDK (its files' size and time: a reinstall changes them; importlib.metadata would cost ~0.1 s)."""
    import importlib.util

    from hivemind_app import __version__

    parts = [__version__]
    sdk = importlib.util.find_spec("mcp")  # a top-level package: found, not imported
    for path in (Path(__file__).with_name("server.py"), Path(sdk.origin) if sdk and sdk.origin else None):
        try:
            stat = path.stat() if path else None
        except OSError:
            stat = None
        parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}" if stat else "-")
    return ";".join(parts)


def requested_version(message: dict[str, Any]) -> str | None:
    """The protocol version a handshake request asks for (None when it names none)."""
    params = message.get("params")
    params = params if isinstance(params, dict) else {}
    meta = params.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    version = params.get("protocolVersion") or meta.get(PROTOCOL_META)
    return version if isinstance(version, str) else None


def handshake_key(message: Any, versions: str | None = None) -> str | None:
    """The cache key of a handshake request (None for anything else)."""
    if not isinstance(message, dict) or message.get("method") not in HANDSHAKES or "id" not in message:
        return None
    raw = json.dumps([message["method"], requested_version(message), versions or _versions()])
    return hashlib.sha256(raw.encode()).hexdigest()


def _load() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _entry_valid(entry: Any, version: str | None) -> bool:
    """An entry is exactly {"result": {...}} answering as our server, in the version the client asked for."""
    if not isinstance(entry, dict) or set(entry) != {"result"} or not isinstance(entry["result"], dict):
        return False
    result = entry["result"]
    meta = result.get("_meta")
    info = result.get("serverInfo") or (meta.get(SERVER_INFO_META) if isinstance(meta, dict) else None)
    if not isinstance(info, dict) or info.get("name") != SERVER_NAME:
        return False
    supported = result.get("supportedVersions")  # server/discover's answer lists versions instead of choosing one
    return version is None or result.get("protocolVersion") == version or (
        "protocolVersion" not in result and isinstance(supported, list) and version in supported)


def cached_answer(key: str, version: str | None) -> dict[str, Any] | None:
    """The kept result for KEY, or None when there is none or it is not a well-formed answer of ours."""
    entry: Any = _load().get(key)
    if not _entry_valid(entry, version):
        return None
    result: dict[str, Any] = entry["result"]
    return result


def reply(request_id: Any, result: dict[str, Any]) -> str:
    """The answer line: id always the client's, never anything from the cache."""
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}, separators=(",", ":")) + "\n"


def remember(message: dict[str, Any], answer: dict[str, Any]) -> None:
    """Keep the SDK's result for the next start; atomic (mkstemp + os.replace, mode 0600), best effort. Only a
    result is kept: an error (a refused version, a passing fault) is always the SDK's to give, and drops what was
    kept. Entries of other versions strings (an older install or server.py) are dropped, so the file holds at
    most one entry per handshake kind and version. Two servers writing at once: the last replace wins, whole."""
    versions = _versions()
    key = handshake_key(message, versions)
    if key is None:
        return
    data = _load()
    kept = data.get(_VERSIONS_FIELD) == versions
    data = {k: v for k, v in data.items() if kept and k != _VERSIONS_FIELD}
    result = answer.get("result")
    if isinstance(result, dict):
        data[key] = {"result": result}
    elif data.pop(key, None) is None and kept:
        return
    data[_VERSIONS_FIELD] = versions
    path = cache_path()
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(data))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class _Replay:
    """stdin for the SDK: the first line again, then the rest of the real stdin."""

    def __init__(self, first: str, rest: IO[str]) -> None:
        self._first: str | None = first
        self._rest = rest

    def readline(self) -> str:
        if self._first is not None:
            line, self._first = self._first, None
            return line
        return self._rest.readline()


class _Gate:
    """stdout for the SDK: drops its answer to the handshake the fast path already gave (and checks it)."""

    def __init__(self, out: IO[str], request: dict[str, Any] | None, answered: dict[str, Any] | None) -> None:
        self._out = out
        self._request = request
        self._id = request.get("id") if request else None
        self._answered = answered
        self._pending = request is not None
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            if self._pending:
                try:
                    message = json.loads(text)
                except ValueError:
                    message = None
                if isinstance(message, dict) and message.get("id") == self._id and "method" not in message:
                    self._pending = False
                    assert self._request is not None
                    if self._answered is None or self._answered != message.get("result"):
                        remember(self._request, message)  # first start, or the cache went stale: right next time
                    if self._answered is not None:
                        return len(text)  # the client has its answer already
            return self._out.write(text)

    def flush(self) -> None:
        self._out.flush()


def _claim_stdio() -> tuple[IO[str], IO[str]]:
    """The protocol's own stdin/stdout on private descriptors; fd 0 then reads /dev/null, fd 1 goes to stderr."""
    wire_in, wire_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    reader = open(wire_in, encoding="utf-8", errors="replace", newline="\n")  # noqa: SIM115 (lives as long as we do)
    writer = open(wire_out, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    return reader, writer


def serve() -> None:
    """`hivemind-app mcp`: answer the handshake from the cache if possible, then run the SDK server."""
    reader, writer = _claim_stdio()
    first = reader.readline()
    if not first:
        return  # the client went away before saying anything
    try:
        message = json.loads(first)
    except ValueError:
        message = None
    handshake = message if handshake_key(message) is not None else None
    answered = None
    if handshake is not None:
        answered = cached_answer(str(handshake_key(handshake)), requested_version(handshake))
        if answered is not None:
            writer.write(reply(handshake["id"], answered))
            writer.flush()
    _run_sdk(_Replay(first, reader), _Gate(writer, handshake, answered))


def _run_sdk(stdin: _Replay, stdout: _Gate) -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hivemind: %(levelname)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.WARNING)
    from hivemind_app.claude.server import serve_streams

    serve_streams(stdin, stdout)
