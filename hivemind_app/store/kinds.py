"""The vocabulary of sync, in one place: what kinds of record travel, what applying one did, and what the
hub's Lua scripts answered.

The store writes these kinds into the outbox (its SQL CHECK lists the same strings: a test compares them with
the live schema) and the hub writes them into the change feed; the store's applies return an `ApplyOutcome`
that the hub counts; the hub's scripts (`hub/scripts.py`) return the codes below, spelled into the Lua from
these enums. Here, not in hub/, because the store may not import the hub. The enums are `StrEnum`/`IntEnum`,
so what is stored in SQLite and Redis is the same plain string or number as before.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class RecordKind(StrEnum):
    """A kind of record a node pushes to the hub (the outbox's `kind`, the change feed's `kind`)."""

    MEMORY = "memory"
    SESSION = "session"
    LEARNING = "learning"
    TOOLCACHE = "toolcache"


class ApplyOutcome(StrEnum):
    """What applying a record pulled from the hub did to the local mirror."""

    OLDER = "older"  # ours is as new or newer: nothing changed
    APPLIED = "applied"  # theirs replaced ours (or was new here)
    MERGED = "merged"  # labels joined with ours changed: pushed again at the record's stamp where the hub lacks them
    DELETED = "deleted"  # a tombstone: the memory's text, tags, sources and vectors are gone
    PENDING = "pending"  # we hold an unpushed edit of this session: our push meets theirs in Redis
    CLEARED = "cleared"  # the session was cleared on the hub, so here too

    @property
    def changed(self) -> bool:
        """Whether the mirror's memories changed (what a pull counts as applied)."""
        return self in (ApplyOutcome.APPLIED, ApplyOutcome.MERGED, ApplyOutcome.DELETED)


class MemoryPush(IntEnum):
    """What the memory push script returned."""

    OLDER = 0  # Redis holds this version or a newer one: nothing written (a retried push)
    WRITTEN = 1


class SessionPush(IntEnum):
    """What the session push script returned (the first element of its reply)."""

    WRITTEN = 1
    WON_CONFLICT = 2  # written; the other side's edit is kept as the conflict's loser
    LOST_CONFLICT = 3  # Redis's newer edit wins; ours is kept as the loser (the reply's second element: its version)
    # On a hive with a key: the hub's copy is not the one the pusher checked (written or changed meanwhile).
    # Nothing is written; the edit stays queued and is pushed, its copy checked again, on the next pass.
    COPY_CHANGED = 4

    @property
    def conflict(self) -> bool:
        return self in (SessionPush.WON_CONFLICT, SessionPush.LOST_CONFLICT)


class LearningPush(IntEnum):
    """What the learning-queue push script returned."""

    DUPLICATE = 0  # this entry was pushed before (within a day): not added twice
    QUEUED = 1
