"""The hub connection's offline state (hub/channel.py): the backoff after a failure, on a real closed port."""

from __future__ import annotations

import time

import pytest

from tests.hub.conftest import NodeFactory, closed_port_url


def test_a_clock_stepped_back_an_hour_does_not_stretch_the_backoff_after_a_failure(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = make_node("n", url=closed_port_url())
    report = node.sync(force=True)  # the first failure: a backoff of about a second
    assert report is not None and not report.online
    hub = node.hub_link
    assert hub is not None and not hub.should_try()
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() - 3600)  # NTP steps the clock back an hour
    time.sleep(1.5)
    assert hub.should_try()  # an hour later with the wall clock's backoff


def test_a_backoff_longer_than_any_backoff_is_not_waited(make_node: NodeFactory) -> None:
    node = make_node("n", url=closed_port_url())
    node.sync(force=True)
    assert node.parts.hub is not None
    node.parts.hub.replica.set_state(retry_at=time.monotonic() + 86_400)  # kept from before a reboot, say
    assert node.parts.hub.should_try()
