"""Signed requests and the handshake: any change to what was signed, a replay, a stale time or another key is
refused; a proof is bound to both nonces, both node ids and its role."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hivemind_app.trust.hivekey import HiveKey
from hivemind_app.trust.peerauth import (
    Challenges,
    HandshakeLimiter,
    RequestRefused,
    RequestVerifier,
    new_nonce,
    proof,
    reply_is_signed,
    sign_reply,
    sign_request,
)

KEY = HiveKey(bytes(range(32)))
BODY = b'{"texts": ["the staging port is 5433"]}'


def test_a_signed_request_is_taken_once() -> None:
    verifier = RequestVerifier(KEY, "desk")
    headers = sign_request(KEY, "laptop", "desk", "POST", "/embed", BODY)
    assert verifier.check("POST", "/embed", BODY, headers) == "laptop"
    with pytest.raises(RequestRefused, match="replay"):
        verifier.check("POST", "/embed", BODY, headers)


@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    path=st.sampled_from(["/embed", "/complete", "/health", "/embed/"]),
    body=st.binary(max_size=64),
    node=st.sampled_from(["laptop", "laptop ", "desk"]),
)
def test_a_request_differing_in_anything_signed_is_refused(method: str, path: str, body: bytes, node: str) -> None:
    headers = sign_request(KEY, "laptop", "desk", "POST", "/embed", BODY)
    headers["x-hive-node"] = node
    changed = (method, path, body, node) != ("POST", "/embed", BODY, "laptop")
    verifier = RequestVerifier(KEY, "desk")
    if changed:
        with pytest.raises(RequestRefused):
            verifier.check(method, path, body, headers)
    else:
        assert verifier.check(method, path, body, headers) == "laptop"


def test_another_key_a_stale_time_or_missing_headers_are_refused_with_the_reason() -> None:
    verifier = RequestVerifier(KEY, "desk")
    with pytest.raises(RequestRefused, match="does not hold"):
        verifier.check("GET", "/health", b"", sign_request(HiveKey.generate(), "x", "desk", "GET", "/health", b""))
    old = sign_request(KEY, "x", "desk", "GET", "/health", b"")
    with pytest.raises(RequestRefused, match="from this node's clock"):
        verifier.check("GET", "/health", b"", old, now=time.time() + 120)
    with pytest.raises(RequestRefused, match="Not signed"):
        verifier.check("GET", "/health", b"", {})
    nan = {**old, "x-hive-time": "nan"}
    with pytest.raises(RequestRefused):
        verifier.check("GET", "/health", b"", nan)


def test_a_reply_is_bound_to_its_request_status_and_body() -> None:
    signed = {"x-hive-reply": sign_reply(KEY, "ab" * 16, 200, b"{}")}
    assert reply_is_signed(KEY, "ab" * 16, 200, b"{}", signed)
    assert not reply_is_signed(KEY, "cd" * 16, 200, b"{}", signed)
    assert not reply_is_signed(KEY, "ab" * 16, 500, b"{}", signed)
    assert not reply_is_signed(KEY, "ab" * 16, 200, b"[]", signed)
    assert not reply_is_signed(KEY, "ab" * 16, 200, b"{}", {})


def test_the_handshake_proves_both_sides_and_each_challenge_is_good_once() -> None:
    desk = Challenges(KEY, "desk")
    answer = desk.answer("laptop", "01" * 16)
    assert KEY.verify("peer-proof", answer["proof"], "answerer", "laptop", "01" * 16, "desk", answer["nonce"])
    mine = proof(KEY, "caller", "laptop", "01" * 16, "desk", answer["nonce"])
    assert not desk.confirm("other", answer["nonce"], mine)  # bound to the caller that asked
    answer = desk.answer("laptop", "01" * 16)
    assert not desk.confirm("laptop", answer["nonce"], answer["proof"])  # the answerer's proof is not a caller's
    answer = desk.answer("laptop", "01" * 16)
    mine = proof(KEY, "caller", "laptop", "01" * 16, "desk", answer["nonce"])
    assert desk.confirm("laptop", answer["nonce"], mine) and "laptop" in desk.proven
    assert not desk.confirm("laptop", answer["nonce"], mine)  # used up
    stranger = proof(HiveKey.generate(), "caller", "laptop", "01" * 16, "desk", answer["nonce"])
    assert not desk.confirm("laptop", desk.answer("laptop", "01" * 16)["nonce"], stranger)


def test_a_request_or_handshake_under_the_receivers_own_id_is_refused() -> None:
    verifier = RequestVerifier(KEY, "desk")
    with pytest.raises(RequestRefused, match="own id"):
        verifier.check("GET", "/health", b"", sign_request(KEY, "desk", "desk", "GET", "/health", b""))
    desk = Challenges(KEY, "desk")
    with pytest.raises(RequestRefused, match="own id"):
        desk.answer("desk", "01" * 16)
    assert not desk.confirm("desk", "01" * 16, proof(KEY, "caller", "desk", "01" * 16, "desk", "01" * 16))


def test_a_request_signed_for_one_node_is_refused_by_another_even_with_its_target_header_changed() -> None:
    headers = sign_request(KEY, "laptop", "desk", "POST", "/embed", BODY)
    den = RequestVerifier(KEY, "den")
    with pytest.raises(RequestRefused, match="signed for another node"):
        den.check("POST", "/embed", BODY, headers)
    with pytest.raises(RequestRefused, match="Wrong signature"):
        den.check("POST", "/embed", BODY, {**headers, "x-hive-to": "den"})
    without = {k: v for k, v in headers.items() if k != "x-hive-to"}
    with pytest.raises(RequestRefused, match="Wrong signature"):
        den.check("POST", "/embed", BODY, without)
    assert RequestVerifier(KEY, "desk").check("POST", "/embed", BODY, headers) == "laptop"


def test_an_authentic_request_off_the_clock_is_refused_as_clock_skew_and_a_forged_one_as_a_forgery() -> None:
    verifier = RequestVerifier(KEY, "desk")
    skewed = sign_request(KEY, "laptop", "desk", "GET", "/health", b"", now=time.time() - 300)
    with pytest.raises(RequestRefused, match="clocks differ") as caught:
        verifier.check("GET", "/health", b"", skewed)
    assert caught.value.reason == "clock-skew" and caught.value.authentic
    assert caught.value.skew_s is not None and 299 < caught.value.skew_s < 310
    assert caught.value.to_dict()["reason"] == "clock-skew"
    # the same time signed with another key is a forgery first: never an authentic refusal to sign
    forged = sign_request(HiveKey.generate(), "laptop", "desk", "GET", "/health", b"", now=time.time() - 300)
    with pytest.raises(RequestRefused) as refused:
        verifier.check("GET", "/health", b"", forged)
    assert refused.value.reason == "bad-signature" and not refused.value.authentic and refused.value.skew_s is None
    ahead = RequestVerifier(KEY, "desk", clock=lambda: time.time() + 90)  # the receiver's clock ahead
    with pytest.raises(RequestRefused) as behind:
        ahead.check("GET", "/health", b"", sign_request(KEY, "laptop", "desk", "GET", "/health", b""))
    assert behind.value.reason == "clock-skew" and behind.value.skew_s is not None and behind.value.skew_s > 85


def test_the_handshake_limiter_admits_a_burst_per_address_then_says_when_to_come_back() -> None:
    now = [1000.0]
    limiter = HandshakeLimiter(burst=3, per_s=2.0, max_addresses=4, clock=lambda: now[0])
    assert [limiter.admit("192.168.1.66") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.admit("192.168.1.66") == pytest.approx(0.5)
    assert limiter.admit("::ffff:192.168.1.66") > 0  # the same host seen through a dual-stack socket
    assert limiter.admit("192.168.1.50") == 0.0  # another address is not held up
    now[0] += 0.5
    assert limiter.admit("192.168.1.66") == 0.0  # refilled at 2 a second
    for n in range(100):  # the table of addresses stays bounded
        limiter.admit(f"10.0.0.{n}")
    assert len(limiter._buckets) == 4


def test_a_host_flooding_from_a_link_local_or_unique_local_address_does_not_hold_up_a_peer_beside_it() -> None:
    limiter = HandshakeLimiter(burst=3, per_s=2.0, clock=lambda: 1000.0)
    for flooder, peer in (("fe80::dead", "fe80::1"), ("fd12:3456:789a:1::dead", "fd12:3456:789a:1::1")):
        assert [limiter.admit(flooder) for _ in range(50)][-1] > 0
        assert limiter.admit(peer) == 0.0  # the same /64 (the whole LAN), another host
    # the scope id names the interface it came in on, not another host
    assert limiter.admit("fe80::dead%eth0") > 0 and limiter.admit("fe80::dead%2") > 0


def test_a_global_ipv6_host_rotating_through_its_64_meets_a_looser_bucket_for_the_whole_64() -> None:
    limiter = HandshakeLimiter(burst=3, per_s=2.0, clock=lambda: 1000.0, network_factor=4)
    assert [limiter.admit("2a01:4f8:1:2::dead") for _ in range(4)][-1] > 0  # one address: its own bucket
    assert limiter.admit("2a01:4f8:1:2::1") == 0.0  # a neighbour in the same /64 is not held up
    admitted = sum(limiter.admit(f"2a01:4f8:1:2::{n:x}") == 0.0 for n in range(100, 200))
    assert admitted == 12 - 4  # the /64's burst is 4 x 3, four of which were taken above
    assert limiter.admit("2a01:4f8:1:3::1") == 0.0  # another /64 is not held up


def test_a_link_local_flood_does_not_displace_a_real_peers_pending_handshake() -> None:
    challenges = Challenges(KEY, "desk")
    caller_nonce = new_nonce()
    nonce = challenges.answer("laptop", caller_nonce, "fe80::1%eth0")["nonce"]
    for _ in range(50):
        challenges.answer("flood", new_nonce(), "fe80::dead%eth0")
    assert challenges.confirm("laptop", nonce, proof(KEY, "caller", "laptop", caller_nonce, "desk", nonce))


def _real_handshake(challenges: Challenges, host: str) -> tuple[str, str]:
    caller_nonce = new_nonce()
    return caller_nonce, challenges.answer("laptop", caller_nonce, host)["nonce"]


def _confirms(challenges: Challenges, caller_nonce: str, nonce: str) -> bool:
    return challenges.confirm("laptop", nonce, proof(KEY, "caller", "laptop", caller_nonce, "desk", nonce))


def test_a_handshake_flood_neither_grows_the_pending_pool_nor_evicts_a_real_callers_handshake() -> None:
    challenges = Challenges(KEY, "desk", limit=8, per_address=3)
    first = _real_handshake(challenges, "192.168.1.50")
    for _ in range(500):  # one address: it displaces only its own oldest
        challenges.answer("flood", new_nonce(), "192.168.1.66")
    assert challenges.pending == 4  # three of the flood's, and the real one
    assert _confirms(challenges, *first)
    second = _real_handshake(challenges, "192.168.1.50")
    for n in range(500):  # many addresses: the pool stays full, each new one displacing the biggest holder's
        challenges.answer("flood", new_nonce(), f"10.0.{n // 250}.{n % 250}")
    assert challenges.pending == 8 and challenges.displaced > 400
    assert not _confirms(challenges, *second)  # 500 handshakes within its round trip: that one was displaced
    third = _real_handshake(challenges, "192.168.1.50")
    for n in range(6):  # fewer than the pool holds within a round trip: the real one stays
        challenges.answer("flood", new_nonce(), f"10.1.0.{n}")
    assert _confirms(challenges, *third)


def test_many_addresses_flooding_at_the_limit_never_lock_a_real_peer_out() -> None:
    now = [1000.0]
    challenges = Challenges(KEY, "desk", clock=lambda: now[0])
    flooders = [f"192.168.1.{n}" for n in range(10, 210)]  # 200 addresses, each as fast as it may
    for _ in range(40):  # 40 rounds, half a second apart: each address keeps its pending entries topped up
        for host in flooders:
            challenges.answer("flood", new_nonce(), host)
        now[0] += 0.5
        real = _real_handshake(challenges, "192.168.1.5")
        assert _confirms(challenges, *real)
    assert challenges.pending <= challenges.limit


def test_pending_handshakes_expire_after_their_ttl_on_the_monotonic_clock() -> None:
    now = [1000.0]
    challenges = Challenges(KEY, "desk", ttl_s=10.0, clock=lambda: now[0])
    late = _real_handshake(challenges, "192.168.1.5")
    now[0] += 11.0
    assert not _confirms(challenges, *late)
    challenges.answer("flood", new_nonce(), "192.168.1.66")
    now[0] += 11.0
    challenges.answer("flood", new_nonce(), "192.168.1.67")
    assert challenges.pending == 1  # the expired one went
    assert Challenges(KEY, "desk").clock is time.monotonic


def test_64_addresses_filling_the_pool_do_not_lock_a_new_peer_out() -> None:
    challenges = Challenges(KEY, "desk")  # the node's own settings
    for n in range(64):
        for _ in range(16):
            challenges.answer("flood", new_nonce(), f"192.168.1.{n + 10}")
    assert _confirms(challenges, *_real_handshake(challenges, "192.168.1.5"))
