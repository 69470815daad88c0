"""`hivemind-app nodes`: ask the local node for its peer table, or browse mDNS briefly when none runs."""

from __future__ import annotations

import time
from typing import Any

import httpx

from hivemind_app import __version__
from hivemind_app.config import Settings
from hivemind_app.nodes.discovery import Advertisement, Discovery
from hivemind_app.nodes.peers import PeerTable


def list_peers(settings: Settings, wait_s: float) -> tuple[list[dict[str, Any]], str]:
    node = settings.node
    host = "127.0.0.1" if node.bind in ("0.0.0.0", "::", "") else node.bind
    try:
        health = httpx.get(f"http://{host}:{node.port}/health", timeout=1.0).json()
        if isinstance(health, dict) and health.get("hive") == node.hive and isinstance(health.get("peers"), list):
            return health["peers"], f"from the local node on port {node.port}"
    except (httpx.HTTPError, ValueError):
        pass
    # No local node: browse for a moment without advertising a service of our own.
    table = PeerTable(node.heartbeat_s, node.token.get_secret_value() if node.token else None)
    browser = Discovery(
        Advertisement("cli-" + str(int(time.time())), node.name, node.hive, 0, (), __version__, "127.0.0.1"),
        interfaces=settings.discovery.interfaces or None,
        on_change=lambda kind, peer: table.upsert(peer),
        advertise=False,
    )
    browser.start()
    time.sleep(wait_s)
    browser.stop()
    table.poll()
    return [entry.to_dict(node.heartbeat_s) for entry in table.all()], f"mDNS browse for {wait_s:g}s, no local node"
