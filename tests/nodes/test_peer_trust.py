"""Peers prove they hold the hive key before they are used: a rogue advertised over real zeroconf on loopback
(the same hive name, no key), an HTTP server that logs every request it gets, receives no credential and no
text; a node with the right key is used; and each reason a peer stays unverified is shown."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hivemind_app import __version__
from hivemind_app.config import Settings
from hivemind_app.ml.remote import FailoverEmbedder, local_node_health
from hivemind_app.nodes.discovery import Advertisement, Discovery
from hivemind_app.nodes.runtime import NodeRuntime
from hivemind_app.trust.hivekey import HiveKey
from tests.support.hash_embedder import HashEmbedder
from tests.support.hive_key import hive_key_file

BEAT_S = 0.5
HIVE = "trust-hive"
MODEL = HashEmbedder.model_name
SECRET_TEXT = "the vault unseal procedure lives on the blue USB stick"


@dataclass
class Rogue:
    """A LAN host posing as a peer: answers like a node (an embed role, our model), and logs everything."""

    node_id: str = "rogue-0001"
    refusal: str | None = None
    """Refuse every request with this error text (HTTP 401)."""
    requests: list[dict[str, object]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        rogue = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                rogue.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = 200
                if rogue.refusal is not None:
                    status, answer = 401, {"error": rogue.refusal}
                elif self.path == "/hello":  # a made-up proof: without the key it cannot make the real one
                    data = json.loads(body)
                    answer = {"node_id": rogue.node_id, "nonce": "ab" * 16, "proof": "00" * 32, "echo": data}
                else:
                    answer = {"node_id": rogue.node_id, "hive": HIVE, "embed_model": MODEL, "embed_queue": 0}
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])


def settings_for(tmp_path: Path, name: str, key_dir: Path | None) -> Settings:
    return Settings(
        data_dir=tmp_path / name,
        node={"name": name, "hive": HIVE, "port": 0, "bind": "127.0.0.1", "heartbeat_s": BEAT_S},
        discovery={"interfaces": ["127.0.0.1"]},
        embedding={"model": MODEL},
        hive={"key_file": hive_key_file(key_dir) if key_dir else tmp_path / name / "no.key"},
    )


def runtime_for(settings: Settings, roles: list[str]) -> NodeRuntime:
    runtime = NodeRuntime(settings, roles=roles)
    runtime.local_models[MODEL] = HashEmbedder()  # the fast embedder stands in for the model (not the subject)
    return runtime


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture
def rogue() -> Iterator[Rogue]:
    impostor = Rogue()
    port = impostor.start()
    advert = Discovery(
        Advertisement(impostor.node_id, "rogue", HIVE, port, ("embed", "infer"), __version__, "127.0.0.1"),
        interfaces=["127.0.0.1"],
    )
    advert.start()
    try:
        yield impostor
    finally:
        advert.stop()
        assert impostor.server is not None
        impostor.server.shutdown()


def test_a_rogue_with_the_hive_name_gets_no_credential_and_no_text_and_a_keyed_peer_is_used(
    tmp_path: Path, rogue: Rogue
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    laptop = runtime_for(settings_for(tmp_path, "laptop", keys), roles=[])
    desk = runtime_for(settings_for(tmp_path, "desk", keys), roles=["embed"])
    stranger = runtime_for(settings_for(tmp_path, "stranger", None), roles=["embed"])  # same hive name, no key
    nodes = [laptop, desk, stranger]
    for node in nodes:
        node.start()
    try:
        peers = lambda: {s.peer.name: s for s in laptop.peers.statuses()}  # noqa: E731
        wait_until(lambda: {"rogue", "desk", "stranger"} <= set(peers()), 30, "discovery of every service")
        wait_until(lambda: bool(laptop.peers.with_role("embed", MODEL)), 20, "the keyed peer to be verified")
        wait_until(lambda: peers()["rogue"].why is not None and peers()["stranger"].why is not None, 10, "verdicts")

        shown = peers()
        assert shown["desk"].health == "alive" and shown["desk"].why is None
        assert shown["rogue"].health == "unverified"
        assert shown["rogue"].why == "could not prove it holds this hive's key (wrong proof)"
        assert shown["stranger"].health == "unverified"
        assert shown["stranger"].why == "it has no hive key (it refused the handshake)"
        assert [p.peer.name for p in laptop.peers.with_role("embed", MODEL)] == ["desk"]
        health = local_node_health(f"http://127.0.0.1:{laptop.port}", HIVE)  # what `nodes` reads
        assert health is not None and isinstance(health["peers"], list)
        listed = {p["name"]: p for p in health["peers"]}
        assert listed["rogue"]["health"] == "unverified" and "wrong proof" in listed["rogue"]["why"]

        wait_until(lambda: bool(laptop.peers.with_role("embed", MODEL)), 10, "the keyed peer to be alive")
        stored = laptop.hive.store_memory(SECRET_TEXT)
        assert stored.embedded
        used = laptop.hive.embedder_for(MODEL)
        assert isinstance(used, FailoverEmbedder) and str(desk.port) in (used.last_used or "")
        assert desk.context is not None and desk.context.embed is not None
        assert desk.context.embed.batcher.stats.texts >= 1

        # the rogue heard only the handshake's first step: our node id and a nonce
        assert rogue.requests, "the rogue was never asked to prove itself"
        assert {r["path"] for r in rogue.requests} == {"/hello"}
        for request in rogue.requests:
            headers = {k.lower() for k in request["headers"]}  # type: ignore[union-attr]
            assert "authorization" not in headers and not any(h.startswith("x-hive") for h in headers)
            assert SECRET_TEXT not in str(request) and "vault" not in str(request)
            assert set(json.loads(str(request["body"]))) == {"node_id", "nonce"}
    finally:
        for node in nodes:
            with contextlib.suppress(Exception):
                node.stop()


def test_the_handshake_takes_no_replayed_or_cross_role_proof(tmp_path: Path) -> None:
    import httpx

    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    node = runtime_for(settings_for(tmp_path, "desk", key_dir), roles=[])
    node.settings.discovery.enabled = False
    node.start()
    try:
        url = f"http://127.0.0.1:{node.port}"
        key = HiveKey(bytes(32))  # not the hive's key
        first = httpx.post(f"{url}/hello", json={"node_id": "me", "nonce": "ab" * 16}).json()
        # the answerer's own proof sent back as the caller's (a reflection) is not a caller's proof
        reflected = httpx.post(
            f"{url}/hello/confirm", json={"node_id": "me", "nonce": first["nonce"], "proof": first["proof"]}
        )
        assert reflected.status_code == 401
        # each nonce is good once: a second try with it finds nothing pending
        again = httpx.post(f"{url}/hello/confirm", json={"node_id": "me", "nonce": first["nonce"], "proof": "0"})
        assert again.status_code == 401
        assert not key.verify("peer-proof", first["proof"], "answerer", "me", "ab" * 16, "desk", first["nonce"])
        assert node.context is not None and node.context.challenges is not None
        assert node.context.challenges.proven == {}
        bad = httpx.post(f"{url}/hello", json={"node_id": "me", "nonce": "not hex"})
        assert bad.status_code == 422
    finally:
        node.stop()


def test_what_a_refusing_peer_says_is_shown_as_visible_escapes_and_it_is_asked_again_only_every_few_beats() -> None:
    from hivemind_app.ml.remote import HiveCredentials
    from hivemind_app.nodes.peers import PeerTable
    from hivemind_app.records.nodes import Peer

    rogue = Rogue(refusal="\x1b[2J\x1b]0;owned\x07 wipe\nthis")
    port = rogue.start()
    try:
        table = PeerTable(5.0, HiveCredentials(HiveKey.generate(), "me"))
        table.upsert(Peer(rogue.node_id, "rogue", HIVE, "127.0.0.1", port, ("embed",), "?"))
        table.poll()
        table.poll()
        (status,) = table.statuses()
        assert status.health == "unverified" and status.why is not None
        assert "\x1b" not in status.why and "\n" not in status.why and "\\x1b[2J" in status.why
        assert len(rogue.requests) == 1  # the second beat came before its turn to be asked again
    finally:
        assert rogue.server is not None
        rogue.server.shutdown()


@dataclass
class Relay:
    """A LAN host that forwards every request, headers and body, to `target` and hands back its answer."""

    target: str
    paths: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        import httpx

        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                relay.paths.append(self.path)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(self.command, relay.target + self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])


def test_a_relay_bouncing_a_nodes_own_handshake_and_requests_back_to_it_is_refused(tmp_path: Path) -> None:
    import httpx

    from hivemind_app.nodes.peers import PeerTable
    from hivemind_app.records.nodes import Peer
    from hivemind_app.trust.peerauth import sign_request

    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    node = runtime_for(settings_for(tmp_path, "desk", key_dir), roles=["embed"])
    node.settings.discovery.enabled = False
    node.start()
    relay = Relay(f"http://127.0.0.1:{node.port}")
    port = relay.start()
    try:
        assert node.creds is not None
        table = PeerTable(5.0, node.creds)  # the node's own credentials, a static peer that is the relay
        table.upsert(Peer("static-relay", "relay", HIVE, "127.0.0.1", port, ("embed",), "?", source="static"))
        table.poll()
        (status,) = table.statuses()
        assert status.health == "unverified" and status.why is not None and "this node itself" in status.why
        assert relay.paths == ["/hello"]
        # the node's own signed request, bounced back to it, is refused too
        body = json.dumps({"texts": [SECRET_TEXT]}).encode()
        signed = sign_request(node.creds.key, node.hive.node_id, node.hive.node_id, "POST", "/embed", body)
        bounced = httpx.post(f"http://127.0.0.1:{port}/embed", content=body, headers=signed)
        assert bounced.status_code == 401 and "own id" in bounced.json()["error"]
        answer = httpx.post(f"http://127.0.0.1:{port}/hello", json={"node_id": node.hive.node_id, "nonce": "ab" * 16})
        assert answer.status_code == 409 and "own id" in answer.json()["error"]
        assert node.context is not None and node.context.embed is not None
        assert node.context.embed.batcher.stats.texts == 0
    finally:
        node.stop()
        assert relay.server is not None
        relay.server.shutdown()


def test_a_node_listing_itself_in_static_peers_never_uses_itself(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    settings = settings_for(tmp_path, "laptop", key_dir)
    settings.node.port = free_port()
    settings.discovery.enabled = False
    settings.discovery.static_peers = [f"127.0.0.1:{settings.node.port}"]
    node = runtime_for(settings, roles=[])
    node.start()
    try:
        wait_until(lambda: any(s.why for s in node.peers.statuses()), 10, "the static peer's verdict")
        (status,) = node.peers.statuses()
        assert status.health == "unverified" and status.why is not None and "this node itself" in status.why
        assert node.peers.with_role("embed") == []
        assert node.context is not None and node.context.challenges is not None
        assert node.context.challenges.proven == {}
    finally:
        node.stop()


def test_a_static_peer_is_pinned_to_the_node_id_it_proved(tmp_path: Path) -> None:
    from hivemind_app.nodes.peers import PeerTable
    from hivemind_app.records.nodes import Peer

    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    desk, den, laptop = (runtime_for(settings_for(tmp_path, n, key_dir), roles=["embed"]) for n in ("desk", "den", "x"))
    for node in (desk, den):
        node.settings.discovery.enabled = False
        node.start()
    relay = Relay(f"http://127.0.0.1:{desk.port}")
    port = relay.start()
    try:
        assert laptop.creds is not None
        table = PeerTable(5.0, laptop.creds)
        table.upsert(Peer("static-desk", "desk", HIVE, "127.0.0.1", port, ("embed",), "?", source="static"))
        table.poll()
        (entry,) = table.all()
        assert entry.verified and entry.proven_id == desk.hive.node_id
        relay.target = f"http://127.0.0.1:{den.port}"  # another node of the hive now answers at that address
        table.poll()
        assert not entry.verified and entry.why is not None and "another node" in entry.why
        entry.retry_at = 0.0
        table.poll()
        assert not entry.verified and entry.why is not None and "answered the handshake as another node" in entry.why
    finally:
        for node in (desk, den):
            node.stop()
        laptop.hive.close()
        assert relay.server is not None
        relay.server.shutdown()


def test_a_signed_request_sniffed_on_the_lan_is_refused_by_another_node_of_the_hive(tmp_path: Path) -> None:
    import httpx

    from hivemind_app.trust.peerauth import sign_request

    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    desk, den = (runtime_for(settings_for(tmp_path, n, key_dir), roles=["embed"]) for n in ("desk", "den"))
    for node in (desk, den):
        node.settings.discovery.enabled = False
        node.start()
    try:
        assert desk.key is not None
        body = json.dumps({"texts": [SECRET_TEXT]}).encode()
        signed = sign_request(desk.key, "laptop", desk.hive.node_id, "POST", "/embed", body)
        headers = {"content-type": "application/json", **signed}
        replayed = httpx.post(f"http://127.0.0.1:{den.port}/embed", content=body, headers=headers)
        assert replayed.status_code == 401 and "signed for another node" in replayed.json()["error"]
        renamed = {**headers, "x-hive-to": den.hive.node_id}
        replayed = httpx.post(f"http://127.0.0.1:{den.port}/embed", content=body, headers=renamed)
        assert replayed.status_code == 401 and "Wrong signature" in replayed.json()["error"]
        assert httpx.post(f"http://127.0.0.1:{desk.port}/embed", content=body, headers=headers).status_code == 200
        assert den.context is not None and den.context.embed is not None
        assert den.context.embed.batcher.stats.texts == 0
    finally:
        for node in (desk, den):
            node.stop()


def test_a_hello_flood_from_loopback_stays_bounded_and_a_real_peer_still_proves_itself_afterwards(
    tmp_path: Path,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from hivemind_app.nodes.peers import prove_peer
    from hivemind_app.records.nodes import Peer

    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    desk = runtime_for(settings_for(tmp_path, "desk", key_dir), roles=[])
    desk.settings.discovery.enabled = False
    laptop = runtime_for(settings_for(tmp_path, "laptop", key_dir), roles=[])  # the real peer: same key
    desk.start()
    try:
        assert desk.context is not None and desk.context.challenges is not None and laptop.creds is not None
        url = f"http://127.0.0.1:{desk.port}/hello"

        def flood(n: int) -> httpx.Response:
            return httpx.post(url, json={"node_id": f"flood-{n}", "nonce": "ab" * 16}, timeout=10)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(flood, range(400)))
        refused = [a for a in answers if a.status_code == 429]
        assert len(refused) > 300 and all(int(a.headers["retry-after"]) >= 1 for a in refused)
        challenges = desk.context.challenges
        assert challenges.pending <= challenges.per_address  # not 400: one address holds a few at most
        time.sleep(max(int(a.headers["retry-after"]) for a in refused))
        peer = Peer(desk.hive.node_id, "desk", HIVE, "127.0.0.1", desk.port, (), __version__, source="static")
        assert prove_peer(laptop.creds, peer, timeout_s=5) == desk.hive.node_id
        assert laptop.creds.node_id in challenges.proven
    finally:
        desk.stop()


def test_64_addresses_flooding_hello_do_not_lock_a_real_peer_out_of_a_real_node(tmp_path: Path) -> None:
    """Each flooding address (127.0.0.10-73: loopback has them all) sends 16 `/hello` at once, within the
    limiter's burst: 1,024 pending handshakes filled the old pool, and every new peer got 429 for 30 s."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from hivemind_app.nodes.peers import prove_peer
    from hivemind_app.records.nodes import Peer

    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    desk = runtime_for(settings_for(tmp_path, "desk", key_dir), roles=[])
    desk.settings.discovery.enabled = False
    laptop = runtime_for(settings_for(tmp_path, "laptop", key_dir), roles=[])
    desk.start()
    try:
        assert laptop.creds is not None
        url = f"http://127.0.0.1:{desk.port}/hello"

        def flood(host: int) -> list[int]:
            transport = httpx.HTTPTransport(local_address=f"127.0.0.{host}")
            with httpx.Client(transport=transport, timeout=10) as client:
                body = {"node_id": f"flood-{host}", "nonce": "ab" * 16}
                return [client.post(url, json=body).status_code for _ in range(16)]

        with ThreadPoolExecutor(8) as pool:
            answered = [status for statuses in pool.map(flood, range(10, 74)) for status in statuses]
        assert answered.count(200) == 1024  # all within the limiter's burst: only the pending pool bounds them
        peer = Peer(desk.hive.node_id, "desk", HIVE, "127.0.0.1", desk.port, (), __version__, source="static")
        assert prove_peer(laptop.creds, peer, timeout_s=5) == desk.hive.node_id  # at once, no Retry-After
    finally:
        desk.stop()


def test_a_peer_whose_clock_differs_says_so_in_a_signed_refusal_and_is_shown_with_the_fix(tmp_path: Path) -> None:
    from hivemind_app.ml.remote import ClockSkew, call_peer
    from hivemind_app.nodes.peers import PeerTable
    from hivemind_app.records.nodes import Peer
    from hivemind_app.trust.peerauth import RequestVerifier

    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    desk = runtime_for(settings_for(tmp_path, "desk", key_dir), roles=[])
    desk.settings.discovery.enabled = False
    laptop = runtime_for(settings_for(tmp_path, "laptop", key_dir), roles=[])
    desk.start()
    try:
        assert desk.context is not None and desk.context.key is not None and laptop.creds is not None
        # the desk's clock runs 5 minutes ahead of the laptop's
        desk.context.verifier = RequestVerifier(desk.context.key, desk.hive.node_id, clock=lambda: time.time() + 300)
        base = f"http://127.0.0.1:{desk.port}"
        with pytest.raises(ClockSkew, match=r"clocks differ by 30\d s \(its clock is ahead of this one's") as caught:
            call_peer(laptop.creds, base, "GET", "/health", None, 5, desk.hive.node_id)
        assert "NTP" in str(caught.value)
        table = PeerTable(BEAT_S, laptop.creds)
        table.upsert(Peer(desk.hive.node_id, "desk", HIVE, "127.0.0.1", desk.port, (), __version__, source="static"))
        table.poll()  # the handshake passes (it has no clock in it); the signed heartbeat is refused for the time
        (status,) = table.statuses()
        assert status.health == "unverified" and status.why is not None
        assert "clock and this node's differ by 30" in status.why and "NTP" in status.why
        assert "signature" not in status.why  # not mistaken for a peer without the key
    finally:
        desk.stop()
