"""Finding the hive's other nodes with zeroconf (mDNS), and telling them about this one.

Each node advertises `_hivemind._tcp.local.` with TXT records naming its id, hive, roles, version and API
port: no secret ever goes into a TXT record. Only peers of the same hive enter the peer table. Which
interfaces mDNS uses is configurable; tests and benchmarks always pass `["127.0.0.1"]`.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from hivemind_app.records.nodes import Peer

if TYPE_CHECKING:  # zeroconf itself is imported when discovery starts
    from zeroconf import ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

log = logging.getLogger(__name__)

SERVICE_TYPE = "_hivemind._tcp.local."


@dataclass(frozen=True)
class Advertisement:
    node_id: str
    name: str
    hive: str
    port: int
    roles: tuple[str, ...]
    version: str
    address: str

    def txt(self) -> dict[str, str]:
        return {
            "id": self.node_id,
            "name": self.name,
            "hive": self.hive,
            "roles": ",".join(self.roles),
            "version": self.version,
            "port": str(self.port),
        }


def _decode(properties: dict[bytes, bytes | None]) -> dict[str, str]:
    return {k.decode("utf-8", "replace"): (v or b"").decode("utf-8", "replace") for k, v in properties.items()}


class Discovery:
    """Advertise this node and keep a table of same-hive peers, updated on add, update and remove."""

    def __init__(
        self,
        me: Advertisement,
        interfaces: Sequence[str] | None = None,
        on_change: Callable[[str, Peer], None] | None = None,
        advertise: bool = True,
    ) -> None:
        self.me = me
        self.advertise = advertise
        self.interfaces = list(interfaces) if interfaces else None
        self.on_change = on_change
        self._peers: dict[str, Peer] = {}
        self._names: dict[str, str] = {}  # mDNS service name -> node id
        self._lock = threading.Lock()
        self._zc: Zeroconf | None = None
        self._browser: ServiceBrowser | None = None
        self._info: ServiceInfo | None = None

    @property
    def service_name(self) -> str:
        return f"{self.me.name}-{self.me.node_id}.{SERVICE_TYPE}"

    def start(self) -> None:
        from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, Zeroconf

        if self.interfaces:
            zc = Zeroconf(interfaces=self.interfaces, ip_version=IPVersion.V4Only)
        else:
            zc = Zeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
        self._zc = zc
        if self.advertise:
            self._register(zc)
        self._browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[self._on_service_state_change])

    def _register(self, zc: Zeroconf) -> None:
        from zeroconf import ServiceInfo

        self._info = ServiceInfo(
            SERVICE_TYPE,
            self.service_name,
            addresses=[socket.inet_aton(self.me.address)],
            port=self.me.port,
            properties=self.me.txt(),
            server=f"{self.me.name}-{self.me.node_id}.local.",
        )
        zc.register_service(self._info, allow_name_change=True)

    def stop(self) -> None:
        if self._zc is None:
            return
        try:
            if self._browser is not None:
                self._browser.cancel()
            if self._info is not None:
                self._zc.unregister_service(self._info)
        finally:
            self._zc.close()
            self._zc = None

    def peers(self) -> list[Peer]:
        with self._lock:
            return sorted(self._peers.values(), key=lambda p: p.name)

    def add_static(self, peer: Peer) -> None:
        with self._lock:
            self._peers[peer.node_id] = replace(peer, source="static")

    # zeroconf calls this from its own thread, with keyword arguments.
    def _on_service_state_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            with self._lock:
                node_id = self._names.pop(name, None)
                peer = self._peers.pop(node_id, None) if node_id else None
            if peer is not None and self.on_change:
                self.on_change("removed", peer)
            return
        info = zeroconf.get_service_info(service_type, name, timeout=2000)
        if info is None:
            return
        txt = _decode(info.properties)
        if txt.get("hive") != self.me.hive or txt.get("id") == self.me.node_id:
            return
        addresses = info.parsed_addresses()
        if not addresses:
            return
        try:
            port = int(txt.get("port") or info.port or "no port")
        except ValueError:
            log.warning("ignoring peer %s: its TXT port %r is not a number", name, txt.get("port"))
            return
        peer = Peer(
            node_id=txt["id"],
            name=txt.get("name", name),
            hive=txt["hive"],
            address=addresses[0],
            port=port,
            roles=tuple(r for r in txt.get("roles", "").split(",") if r),
            version=txt.get("version", "?"),
        )
        with self._lock:
            self._names[name] = peer.node_id
            kind = "updated" if peer.node_id in self._peers else "added"
            self._peers[peer.node_id] = peer
        if self.on_change:
            self.on_change(kind, peer)
