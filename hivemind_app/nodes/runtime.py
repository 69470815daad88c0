"""The node runtime: one supervisor for the roles a node has, the HTTP API, discovery and heartbeats.

The same object runs headless under `hivemind-app node` and inside the TUI. Every node serves `/embed`:
a node with the embed role answers from its own model; one without forwards to the least-loaded peer that
has it, then falls back to its own CPU model. So the CLI and MCP server only ever ask their local node.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hivemind_app import __version__
from hivemind_app.config import NodeSettings, Settings
from hivemind_app.errors import AdapterError, HivemindError
from hivemind_app.hive import Hive, HubLink
from hivemind_app.ml.backends import local_embedder
from hivemind_app.ml.embedder import Embedder
from hivemind_app.ml.llm import LLMUnavailableError, LocalLLM
from hivemind_app.ml.remote import FailoverEmbedder, HiveCredentials, RemoteEmbedder
from hivemind_app.ml.trainer import RoundProgress
from hivemind_app.nodes.api import EmbedService, NodeContext, create_app
from hivemind_app.nodes.discovery import Advertisement, Discovery
from hivemind_app.nodes.follow import SettingsFollower, follow, in_dir
from hivemind_app.nodes.peers import PeerTable
from hivemind_app.nodes.supervisor import Supervisor
from hivemind_app.nodes.watcher import FolderWatcher
from hivemind_app.records.nodes import AdapterRefusal, NodeStatus, Peer
from hivemind_app.trust.hivekey import load_key

if TYPE_CHECKING:  # uvicorn itself is imported when the node starts
    import uvicorn

log = logging.getLogger(__name__)

BACKFILL_INTERVAL_S = 10.0
SUMMARY_INTERVAL_S = 30.0
ANTI_ENTROPY_INTERVAL_S = 600.0
TRAIN_CHECK_S = 60.0


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it, a response written as headers then body waits for
    # the client's delayed ACK (~40 ms) on every keep-alive request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


class NodeRuntime:
    def __init__(self, settings: Settings, roles: Sequence[str] | None = None) -> None:
        self.settings = settings
        self.roles = tuple(roles if roles is not None else settings.node.roles)
        # the hive key: without it the node works alone (serves loopback, uses no peer); an unusable key
        # file is an error here, never a node that quietly leaves its hive
        self.key = load_key(settings.hive_key_path)
        self.supervisor = Supervisor()
        self.llm = (
            LocalLLM(settings.infer.model_path, settings.infer.n_ctx, settings.infer.threads)
            if "infer" in self.roles
            else None
        )
        # With the infer role, summaries and rewrites use this node's own model, not HTTP to itself.
        self.hive = Hive(settings, embedder_factory=self._embedder_for, llm=self.llm)
        self.creds = HiveCredentials(self.key, self.hive.node_id) if self.key else None
        self.peers = PeerTable(settings.node.heartbeat_s, self.creds)
        self.local_models: dict[str, Embedder] = {}
        self.discovery: Discovery | None = None
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self.port = 0
        self.context: NodeContext | None = None
        self.started_at = time.time()
        self.training: RoundProgress | None = None
        self.last_round: dict[str, Any] | None = None
        self.adapter_refused: AdapterRefusal | None = None
        self.pointer_refused: str | None = None
        """Why the active-adapter pointer in Redis was last refused (logged once per reason)."""
        self.watcher = FolderWatcher(self.hive, lambda: self.supervisor.stopping, self.supervisor.wait)
        self.settings_follower = SettingsFollower(settings, lambda: self.supervisor.stopping, self.supervisor.wait)

    # -- embedding: own model for the embed role, peers first otherwise ------------------------------

    def _local_model(self, model: str) -> Embedder:
        if model not in self.local_models:
            self.local_models[model] = local_embedder(model, self.settings.embedding)
        return self.local_models[model]

    def _load_local_model(self, model: str) -> None:
        self._local_model(model).embed(["warm-up"])  # loads (and converts, the first time) before a request does

    def _embedder_for(self, model: str) -> Embedder:
        def candidates() -> list[Embedder]:
            if "embed" in self.roles:
                return [self._local_model(model)]
            creds = self.creds
            remote: list[Embedder] = (
                [
                    RemoteEmbedder(entry.peer.base_url, model, creds, timeout_s=30.0, peer_id=entry.proven_id)
                    for entry in self.peers.with_role("embed", model)
                ]
                if creds
                else []
            )
            return [*remote, self._local_model(model)]

        return FailoverEmbedder(model, candidates)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        import uvicorn

        node = self.settings.node
        model = self.hive.search_model
        self.context = NodeContext(
            node_id=self.hive.node_id,
            name=node.name,
            hive=node.hive,
            roles=self.roles,
            version=__version__,
            key=self.key,
            embed=EmbedService(self.hive.embedder_for(model)),
            llm=self.llm,
            max_text_bytes=self.settings.store.max_text_bytes,
            runtime_status=self.status,
        )
        sock = _listening_socket(node.bind, node.port)
        self.port = int(sock.getsockname()[1])
        # proxy_headers off: who is loopback is decided by the socket's peer, never by X-Forwarded-For
        # (uvicorn trusts it from 127.0.0.1 by default, and from anyone with FORWARDED_ALLOW_IPS=*)
        config = uvicorn.Config(
            create_app(self.context), log_level="warning", lifespan="on", access_log=False, proxy_headers=False
        )
        self._server = uvicorn.Server(config)
        self._server_thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="hivemind-api", daemon=True
        )
        self._server_thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)

        for spec in self.settings.discovery.static_peers:
            host, _, port = spec.rpartition(":")
            self.peers.upsert(
                Peer(f"static-{spec}", spec, node.hive, host, int(port), ("embed", "infer"), "?", source="static")
            )
        if self.settings.discovery.enabled:
            self.discovery = Discovery(
                Advertisement(
                    self.hive.node_id,
                    node.name,
                    node.hive,
                    self.port,
                    self.roles,
                    __version__,
                    self._advertised_address(),
                ),
                interfaces=self.settings.discovery.interfaces or None,
                on_change=self._peer_changed,
            )
            self.discovery.start()

        self.supervisor.spawn("heartbeat", self.peers.poll, node.heartbeat_s)
        self.supervisor.spawn("watch", self.watcher.run, 0.0)
        self.supervisor.spawn("settings-watch", self.settings_follower.run, 0.0)
        if self.hive.hub_configured:
            self.supervisor.spawn("sync", self._sync, self.settings.redis.sync_interval_s)
            self.supervisor.spawn("sync-nudges", self._sync_on_nudge, 0.0)
            self.supervisor.spawn("hub-heartbeat", self._hub_heartbeat, node.heartbeat_s)
            self.supervisor.spawn("anti-entropy", self._verify, ANTI_ENTROPY_INTERVAL_S)
        if "embed" in self.roles:
            self.supervisor.spawn("embed-model", lambda: self._load_local_model(model), 3600.0)
            self.supervisor.spawn("backfill", self._backfill, BACKFILL_INTERVAL_S)
        if self.llm is not None:
            self.supervisor.spawn("infer-model", self.llm.load, 3600.0)
            self.supervisor.spawn("summarise", self._summarise, SUMMARY_INTERVAL_S)
            if self.hive.hub_configured:  # the hub's announcement wakes it sooner (hub/adapters.py)
                self.supervisor.spawn("adapter-watch", self._watch_adapter, self.settings.infer.adapter_check_s)
            else:
                self.supervisor.spawn("adapter-watch", self._follow_adapters, 0.0)
        if "train" in self.roles:
            self.supervisor.spawn("train", self._train, TRAIN_CHECK_S)
        log.info("node %s serving on %s:%d with roles %s", node.name, node.bind, self.port, ",".join(self.roles))

    def _advertised_address(self) -> str:
        if not self.settings.node.binds_everywhere:
            return self.settings.node.bind
        interfaces = self.settings.discovery.interfaces
        return interfaces[0] if interfaces else socket.gethostbyname(socket.gethostname())

    def _peer_changed(self, kind: str, peer: Peer) -> None:
        if kind == "removed":
            self.peers.remove(peer.node_id)
        else:
            self.peers.upsert(peer)

    def _backfill(self) -> None:
        self.hive.backfill_embeddings(batch=64)

    def _sync(self) -> None:
        self.hive.sync()

    def _hub(self) -> HubLink:
        hub = self.hive.hub_link
        assert hub is not None, "the hub workers run only on a node with a hub"
        return hub

    def _verify(self) -> None:
        hub = self._hub()
        if self.supervisor.workers["anti-entropy"].runs == 0:
            return  # the first pass waits one interval: a node starting up has enough to do
        if hub.should_try():
            with contextlib.suppress(Exception):  # offline: the sync worker reports it
                self.hive.verify_sync()

    def _sync_on_nudge(self) -> None:
        hub = self._hub()
        if not hub.should_try():
            time.sleep(1.0)
            return
        try:
            nudged = hub.wait_for_nudge(timeout_s=1.0)
        except Exception:  # Redis went away: the sync worker notices and reports it; listen again later
            hub.drop_nudges()
            time.sleep(1.0)
            return
        if nudged:
            self.hive.sync()

    def _hub_heartbeat(self) -> None:
        hub = self._hub()
        if not hub.should_try():
            return
        node = self.settings.node
        with contextlib.suppress(Exception):  # offline: the sync worker reports it, once
            self._beat(hub, node)

    def _beat(self, hub: HubLink, node: NodeSettings) -> None:
        hub.heartbeat(
            {
                "name": node.name,
                "roles": list(self.roles),
                "port": self.port,
                "model": self.llm.model_name if self.llm else self.hive.search_model,
                "adapter": self.llm.adapter_label if self.llm else None,
                "load": self.context.embed.batcher.pending if self.context and self.context.embed else 0,
                "outbox": hub.outbox_depth(),
                "version": __version__,
            },
            node.heartbeat_s,
        )

    def _summarise(self) -> None:
        self.hive.summarise_closed_sessions()

    # -- the learning loop: train on schedule, serve the active adapter --------------------------------

    def _train(self) -> None:
        def progress(step: RoundProgress) -> None:
            self.training = step

        try:
            report = self.hive.train_if_due(progress=progress, should_stop=lambda: self.supervisor.stopping)
        except HivemindError:
            if self.supervisor.stopping:
                return  # stopped mid-round on purpose: its entries stay queued for the next round
            raise
        finally:
            self.training = None
        if report is not None:
            self.last_round = report
            log.info("training round: %s (%s)", report["verdict"], report["reason"])

    def _watch_adapter(self) -> None:
        """Serve the adapter named in models:active; refuse (and keep the current one) if it is unusable."""
        llm = self.llm
        assert llm is not None
        try:
            info = self.hive.active_adapter()
        except AdapterError as exc:  # a refused pointer (hub/adapters.py): keep serving what is loaded
            if str(exc) != self.pointer_refused:
                log.error("%s", exc)
                self.pointer_refused = str(exc)
            return
        except HivemindError:
            return  # hub offline: keep serving what is loaded
        self.pointer_refused = None
        wanted = info.version if info else None
        refused = self.adapter_refused.version if self.adapter_refused else None
        if wanted == llm.adapter_version or (wanted is not None and wanted == refused):
            return
        if info is None:
            llm.reload(None)
            log.info("no adapter is active: serving the base model")
            return
        if info.base_model != llm.model_name:
            self._refuse(info.version, f"it was trained for {info.base_model}, this node serves {llm.model_name}")
            return
        try:
            path = self.hive.fetch_adapter(info.version)
            llm.reload(str(path), info.version)
        except (AdapterError, LLMUnavailableError) as exc:
            self._refuse(info.version, str(exc))
            return
        self.adapter_refused = None
        log.info("serving adapter v%d", info.version)

    def _follow_adapters(self) -> None:
        """Without a hub: look now, then each time the adapters directory or the store changes (a publish
        writes the file, an `adapters activate` the store), with watchfiles instead of a timer."""
        self._watch_adapter()
        db = self.settings.db_path
        follow(
            [self.settings.data_dir],
            in_dir(self.settings.data_dir / "adapters", names=(db.name, f"{db.name}-wal")),
            self._watch_adapter,
            lambda: self.supervisor.stopping,
        )

    def _refuse(self, version: int, reason: str) -> None:
        current = self.llm.adapter_label if self.llm else None
        log.error("refused adapter v%d: %s; still serving %s", version, reason, current or "the base model")
        self.adapter_refused = AdapterRefusal(version, reason)

    def stop(self) -> None:
        """Stop taking requests, let requests in hand finish, then stop workers and discovery."""
        if self.discovery is not None:
            self.discovery.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._server_thread is not None:
            self._server_thread.join(15)
        self.supervisor.stop()
        self.hive.close()

    def status(self) -> NodeStatus:
        """This node now: identity, port, workers, peers, the round it trains, an adapter it refused."""
        node = self.settings.node
        return NodeStatus(
            node_id=self.hive.node_id,
            name=node.name,
            hive=node.hive,
            roles=self.roles,
            port=self.port,
            workers=tuple(w.snapshot() for w in self.supervisor.workers.values()),
            peers=self.peers.statuses(),
            training=self.training,
            adapter_refused=self.adapter_refused,
        )
