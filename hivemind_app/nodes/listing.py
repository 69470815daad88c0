"""`hivemind-app nodes`: ask the local node for its peer table, or browse mDNS briefly when none runs."""

from __future__ import annotations

import time
from typing import Any

from hivemind_app import __version__
from hivemind_app.config import Settings
from hivemind_app.ml.remote import HiveCredentials, local_node_health
from hivemind_app.nodes.discovery import Advertisement, Discovery
from hivemind_app.nodes.peers import PeerTable
from hivemind_app.trust.hivekey import load_key


def list_peers(settings: Settings, wait_s: float) -> tuple[list[dict[str, Any]], str]:
    """The peers as JSON objects (`PeerStatus.to_dict`), and where they came from.

    The local node's answer is JSON already (its `/health`), so both sources meet as the same JSON shape.
    """
    node = settings.node
    health = local_node_health(node.local_url, node.hive, timeout_s=1.0)
    peers = health.get("peers") if health is not None else None
    if isinstance(peers, list):
        return peers, f"from the local node on port {node.port}"
    # No local node: browse for a moment without advertising a service of our own.
    me = "cli-" + str(int(time.time()))
    key = load_key(settings.hive_key_path)
    table = PeerTable(node.heartbeat_s, HiveCredentials(key, me) if key else None)
    browser = Discovery(
        Advertisement(me, node.name, node.hive, 0, (), __version__, "127.0.0.1"),
        interfaces=settings.discovery.interfaces or None,
        on_change=lambda kind, peer: table.upsert(peer),
        advertise=False,
    )
    browser.start()
    time.sleep(wait_s)
    browser.stop()
    table.poll()
    return [peer.to_dict() for peer in table.statuses()], f"mDNS browse for {wait_s:g}s, no local node"
