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
    RequestRefused,
    RequestVerifier,
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
