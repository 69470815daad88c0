"""The installed `hivemind-app mcp` console script, driven over stdio by the SDK's real client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.support.console import console_script

pytestmark = pytest.mark.anyio
EXE = console_script()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def server_params() -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k.startswith(("HIVEMIND_", "HF_", "TRANSFORMERS_", "PATH", "HOME"))}
    return StdioServerParameters(command=EXE, args=["mcp"], env=env)


async def test_every_tool_over_stdio_including_the_two_step_clear() -> None:
    async with Client(server_params(), read_timeout_seconds=120) as client:
        stored = await client.call_tool(
            "memory_store", {"text": "Remember: the staging DB is on port 5433", "tags": ["infra"]}
        )
        assert stored.structured_content["created"] is True
        recalled = await client.call_tool("memory_recall", {"query": "which port is staging on?"})
        assert recalled.structured_content["results"][0]["id"] == stored.structured_content["id"]

        ctx = await client.call_tool("memory_context", {"session_id": "s1", "update": {"current_task": "ports"}})
        assert ctx.structured_content["current_task"] == "ports"
        first = await client.call_tool("memory_clear", {"session_id": "s1"})
        assert first.structured_content["cleared"] is False
        second = await client.call_tool(
            "memory_clear", {"session_id": "s1", "confirm": first.structured_content["confirmation_token"]}
        )
        assert second.structured_content["cleared"] is True

        await client.call_tool("tool_cache_put", {"tool": "grep", "inputs": "TODO", "output": "3 matches"})
        cached = await client.call_tool("tool_cache_get", {"tool": "grep", "inputs": "TODO"})
        assert cached.structured_content == {"hit": True, "output": "3 matches"}

        bad = await client.call_tool("memory_recall", {"query": ""})
        assert bad.is_error
        still = await client.call_tool("memory_recall", {"query": "staging", "mode": "keyword"})
        assert not still.is_error and still.structured_content["results"]


def test_initialize_and_tools_list_answer_without_loading_torch(tmp_path: Path) -> None:
    proc = subprocess.Popen([EXE, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, object]) -> None:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"},
                },
            }
        )
        init = json.loads(proc.stdout.readline())
        assert init["result"]["serverInfo"]["name"] == "hivemind"
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = json.loads(proc.stdout.readline())
        assert len(tools["result"]["tools"]) == 10
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "libtorch" not in maps, "torch was loaded before the first vector search"
    finally:
        proc.kill()
        proc.wait()


def test_torch_is_not_in_sys_modules_after_initialize_tools_list_and_a_keyword_recall() -> None:
    code = """
import sys, json, anyio
from mcp import Client
from hivemind_app.claude.server import mcp

async def main():
    async with Client(mcp) as client:
        await client.list_tools()
        await client.list_resources()
        await client.call_tool("memory_recall", {"query": "staging port", "mode": "keyword"})
        await client.read_resource("hivemind://memories/recent")
    print(json.dumps([m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules]))

anyio.run(main)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
