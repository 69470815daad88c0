"""AUTH with an ACL user and TLS through rediss://, against real redis-servers on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.hub.conftest import NodeFactory
from tests.support.redis_server import free_port


def wait_ready(client: redis.Redis) -> None:
    for _ in range(100):
        try:
            client.ping()
            return
        except redis.RedisError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """redis-server speaking TLS only, with a CA and a server certificate made for this test."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")  # pragma: no cover - Debian and CI have it
    d = tmp_path / "tls"
    d.mkdir()

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=hivemind-test-ca",
    )
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "redis.key", "-out", "redis.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl(
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "redis.crt",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            "redis.crt",
            "--tls-key-file",
            "redis.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(d),
        ],
        cwd=d,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(d / "ca.crt"), socket_timeout=2))
        yield port, d / "ca.crt"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_hub_over_tls_syncs_when_the_ca_is_given_and_says_why_not_otherwise(
    make_node: NodeFactory, tls_redis: tuple[int, Path]
) -> None:
    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0"
    trusting = make_node("trusting", url=url)
    trusting.settings.redis.tls_ca_file = str(ca)
    trusting.store_memory("sent over TLS")
    report = trusting.sync(force=True)
    assert report is not None and report.online and trusting.status().sync.outbox == 0

    doubting = make_node("doubting", url=url)  # no CA: the self-made certificate cannot be verified
    report = doubting.sync(force=True)
    assert report is not None and not report.online
    assert "certificate verify failed" in (report.error or "").lower()


def test_an_acl_user_with_its_own_password_can_sync(make_node: NodeFactory, tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "acl.conf"  # ACL users can only be declared in a config file, not as arguments
    conf.write_text(
        f'port {port}\nbind 127.0.0.1\nsave ""\ndir {tmp_path}\nuser default off\nuser hive on >hive-pass ~* &* +@all\n'
    )
    proc = subprocess.Popen(["redis-server", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(redis.Redis(host="127.0.0.1", port=port, username="hive", password="hive-pass", socket_timeout=2))
        good = make_node("good", url=f"redis://hive:hive-pass@127.0.0.1:{port}/0")
        good.store_memory("pushed as the hive ACL user")
        assert good.sync(force=True).online  # type: ignore[union-attr]
        bad = make_node("bad", url=f"redis://hive:nope@127.0.0.1:{port}/0")
        report = bad.sync(force=True)
        assert report is not None and "refused the password" in (report.error or "") and "nope" not in report.error
    finally:
        proc.terminate()
        proc.wait(10)
