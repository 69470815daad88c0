"""`hivemind-app mcp` answers the handshake before the SDK is imported (claude/quickstart.py), and only ever
with the answer the SDK itself gives."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from hivemind_app.claude.quickstart import handshake_key, remember
from hivemind_app.claude.server import INSTRUCTIONS
from tests.support.console import console_script

EXE = console_script()
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def start(tmp_path: Path, *messages: dict[str, Any], importtime: bool = False) -> list[str]:
    """Send MESSAGES to a fresh server, close stdin, return every line it wrote (stderr merged when importtime)."""
    env = dict(os.environ)
    if importtime:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    proc = subprocess.Popen([EXE, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if importtime else subprocess.DEVNULL, env=env, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    lines = []
    for message in messages:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        if "id" in message:  # wait for its answer before the next one, as a client does
            while True:
                line = proc.stdout.readline()
                assert line, f"no answer to {message}; got {lines[-5:]}"
                lines.append(line)
                if line.startswith("{") and json.loads(line).get("id") == message["id"]:
                    break
    proc.stdin.close()
    lines += proc.stdout.readlines()
    proc.wait(timeout=60)
    return lines


def answers(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "mcp-handshake.json"  # in the data dir (isolated_env's)


def plant(tmp_path: Path, answer: dict[str, Any]) -> None:
    """A cached answer to INITIALIZE, under the key this installation's server will look for."""
    cache_file(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    cache_file(tmp_path).write_text(json.dumps({handshake_key(INITIALIZE): answer}))


def test_a_second_start_answers_initialize_before_importing_the_sdk_with_the_sdks_own_answer(tmp_path: Path) -> None:
    cold = answers(start(tmp_path, INITIALIZE, INITIALIZED, TOOLS_LIST))  # the SDK answers; the answer is kept
    assert cache_file(tmp_path).exists()

    lines = start(tmp_path, INITIALIZE, INITIALIZED, TOOLS_LIST, importtime=True)

    answer_at = next(i for i, line in enumerate(lines) if line.startswith('{"jsonrpc"'))
    sdk_at = next(i for i, line in enumerate(lines) if re.search(r"\|\s+mcp$", line.rstrip()))
    assert answer_at < sdk_at, "the handshake was answered only after the SDK was imported"
    assert not any("hivemind_app.hive" in line for line in lines[:answer_at])
    warm = answers(lines)
    assert [a["id"] for a in cold] == [1, 2] and [a["id"] for a in warm] == [1, 2]  # one answer per request
    assert warm[0] == cold[0] and cold[0]["result"]["serverInfo"]["name"] == "hivemind"
    assert any(tool["name"] == "memory_store" for tool in warm[1]["result"]["tools"])


def ours(**extra: Any) -> dict[str, Any]:
    """A well-formed kept result: our server's name, the version INITIALIZE asks for."""
    return {"protocolVersion": "2025-11-25", "serverInfo": {"name": "hivemind", "version": "0"}, **extra}


def test_a_stale_cached_answer_is_corrected_by_the_next_start(tmp_path: Path) -> None:
    plant(tmp_path, {"result": ours(instructions="stale")})

    stale = answers(start(tmp_path, INITIALIZE, INITIALIZED, TOOLS_LIST))
    fixed = answers(start(tmp_path, INITIALIZE))

    assert stale[0] == {"jsonrpc": "2.0", "id": 1, "result": ours(instructions="stale")}
    assert [a["id"] for a in stale] == [1, 2]
    assert fixed[0]["result"]["instructions"] == INSTRUCTIONS


@pytest.mark.parametrize("cache", ["{not json", "[]"])
def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path: Path, cache: str) -> None:
    cache_file(tmp_path).parent.mkdir(parents=True)
    cache_file(tmp_path).write_text(cache)

    (answer,) = answers(start(tmp_path, INITIALIZE))

    assert answer["result"]["serverInfo"]["name"] == "hivemind"
    assert len(json.loads(cache_file(tmp_path).read_text())) >= 1


@pytest.mark.parametrize("entry", [
    {"jsonrpc": "1.0", "id": 99, "result": ours(instructions="planted")},  # would override the client's id
    {"result": ours(instructions="planted"), "error": {"code": 1, "message": "planted"}},
    {"result": {**ours(instructions="planted"), "serverInfo": {"name": "someone-else"}}},
    {"result": ours(instructions="planted", protocolVersion="2024-11-05")},  # not the version asked for
    {"result": "planted"},
], ids=["id-and-jsonrpc", "error", "other-server", "other-version", "not-an-object"])
def test_a_cached_entry_of_the_wrong_shape_is_never_sent_the_sdk_answers_instead(
        tmp_path: Path, entry: dict[str, Any]) -> None:
    plant(tmp_path, entry)

    (answer,) = answers(start(tmp_path, INITIALIZE))

    assert answer["id"] == 1 and answer["jsonrpc"] == "2.0" and "error" not in answer
    assert answer["result"]["instructions"] == INSTRUCTIONS and "planted" not in json.dumps(answer)


def test_a_kept_discover_answer_is_given_when_it_supports_the_version_asked_for(tmp_path: Path) -> None:
    discover = {"jsonrpc": "2.0", "id": 7, "method": "server/discover",
                "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                     "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                                     "io.modelcontextprotocol/clientCapabilities": {}}}}
    kept = {"supportedVersions": ["2026-07-28"], "instructions": "kept",
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "hivemind", "version": ""}}}
    cache_file(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    cache_file(tmp_path).write_text(json.dumps({handshake_key(discover): {"result": kept}}))

    (answer,) = answers(start(tmp_path, discover))

    assert answer == {"jsonrpc": "2.0", "id": 7, "result": kept}


def test_the_cache_is_private_and_keeps_only_the_current_installations_entries(tmp_path: Path) -> None:
    cache_file(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    cache_file(tmp_path).write_text(json.dumps({"versions": "an older install",
                                                "old-key": {"result": ours(instructions="old")}}))

    start(tmp_path, INITIALIZE)
    start(tmp_path, {**INITIALIZE, "method": "server/discover"})

    kept = json.loads(cache_file(tmp_path).read_text())
    assert oct(cache_file(tmp_path).stat().st_mode & 0o777) == "0o600"
    assert "old-key" not in kept and handshake_key(INITIALIZE) in kept
    assert not [p for p in cache_file(tmp_path).parent.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_writers_never_leave_a_corrupt_cache(tmp_path: Path) -> None:
    cache_file(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    answer = {"jsonrpc": "2.0", "id": 1, "result": ours(instructions="x" * 20_000)}

    def write(n: int) -> None:
        for i in range(20):
            remember({**INITIALIZE, "params": {"protocolVersion": f"v{n}-{i}"}}, answer)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    kept = json.loads(cache_file(tmp_path).read_text())  # whole: some writer's complete file
    assert kept["versions"] and all(v == {"result": answer["result"]} for k, v in kept.items() if k != "versions")


def test_a_first_message_that_is_not_a_handshake_goes_to_the_sdk_unanswered_by_us(tmp_path: Path) -> None:
    plant(tmp_path, {"result": ours(instructions="planted")})
    lines = start(tmp_path, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, INITIALIZE)
    ids = [a.get("id") for a in answers(lines)]
    assert ids == [5, 1], lines  # one answer each: the SDK's for tools/list, then initialize


def test_garbage_on_stdin_does_not_crash_the_server(tmp_path: Path) -> None:
    env = dict(os.environ)
    done = subprocess.run([EXE, "mcp"], input="this is not json\n" + json.dumps(INITIALIZE) + "\n",
                          capture_output=True, text=True, env=env, timeout=60)
    assert any(a.get("id") == 1 and "result" in a for a in answers(done.stdout.splitlines())), done.stdout + done.stderr


def test_an_error_answer_is_never_kept_so_the_sdk_gives_it_every_time(tmp_path: Path) -> None:
    refused = {**INITIALIZE, "method": "server/discover",
               "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "1999-01-01",
                                    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                                    "io.modelcontextprotocol/clientCapabilities": {}}}}
    key = handshake_key(refused)
    cache_file(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    kept = {"protocolVersion": "1999-01-01", "serverInfo": {"name": "hivemind"}, "kept": "from before"}
    cache_file(tmp_path).write_text(json.dumps({key: {"result": kept}}))

    (first,) = answers(start(tmp_path, refused))  # the kept result is given once (stale), then dropped
    (second,) = answers(start(tmp_path, refused))

    assert first["result"] == kept
    assert second["error"]["message"] == "Unsupported protocol version"
    assert key not in json.loads(cache_file(tmp_path).read_text())
