"""The narrow view of the hub that a front end may hold: liveness, nudges and heartbeats, nothing else.

`HubSync` satisfies it structurally; front ends get it from `Hive.hub_link` and never see Redis, the
replica or the outbox themselves.
"""

from __future__ import annotations

from typing import Any, Protocol


class HubLink(Protocol):
    def should_try(self) -> bool:
        """False while the hub is known to be down and its retry time has not come."""
        ...

    def wait_for_nudge(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` for another node's 'new writes' nudge; True when one came."""
        ...

    def drop_nudges(self) -> None:
        """Forget the nudge subscription (after a connection failure); the next wait subscribes again."""
        ...

    def heartbeat(self, info: dict[str, Any], beat_s: float) -> None:
        """Publish this node's heartbeat (roles, port, model, load) for `beat_s` times the TTL factor."""
        ...

    def outbox_depth(self) -> int:
        """Local writes not yet acknowledged by the hub."""
        ...
