"""What `Hive.status()` reports: typed all the way to the front end, JSON only at the edge (`to_dict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    id: str


@dataclass(frozen=True)
class StoreFile:
    path: str
    file_bytes: int
    wal_bytes: int
    schema_version: int


@dataclass(frozen=True)
class MemoryCounts:
    live: int
    deleted: int
    embedded: int
    pending_embeddings: int
    tags: int


@dataclass(frozen=True)
class EmbeddingState:
    model: str
    """The store's active vector space (the configured one while the store has none)."""
    dim: int | None
    configured_model: str
    mismatch: str | None
    """A sentence when the store's vectors come from another model than the configured one."""
    other_spaces: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RedisState:
    configured: bool
    url: str | None
    """The URL with its password masked; never the secret itself."""


# How many quarantined records a status carries (the count is always whole).
QUARANTINE_SHOWN = 50


@dataclass(frozen=True)
class QuarantinedRecord:
    """A record read from the hub that failed validation and was kept aside instead of applied."""

    key: str
    """The Redis key (with the hive's prefix); `STREAM#entry-id` for a change-feed entry."""
    reason: str
    raw: str
    """The fields as read, as JSON (bytes that are not UTF-8 as \\x escapes, a vector by its length)."""
    quarantined_at: float
    seen: int
    """How many times it was read and refused."""


@dataclass(frozen=True)
class SyncState:
    """The hub sync's counters and health; `configured=False` and nothing else without a hub."""

    configured: bool
    endpoint: str | None = None
    online: bool = False
    tried: bool = False
    """Whether a sync pass has run against the hub yet (reached it, or failed to): until one has, `online`
    says only that none failed."""
    outbox: int = 0
    feed_cursor: str | None = None
    last_push: float | None = None
    last_pull: float | None = None
    lag_s: float | None = None
    """How stale this mirror may be: seconds since it last read the change feed."""
    offline_since: float | None = None
    last_error: str | None = None
    failed_syncs: int = 0
    failed_applies: int = 0
    conflicts: int = 0
    learning_queue_len: int | None = None
    last_verify: dict[str, Any] | None = None
    quarantined: int = 0
    """Records read from the hub that failed validation and were kept aside (`sync --quarantined` lists them)."""
    quarantine: list[QuarantinedRecord] = field(default_factory=list)
    """The most recently quarantined of them (at most `QUARANTINE_SHOWN`), newest first."""
    hub_epoch: str | None = None
    """The hive epoch (a random id kept in Redis) this node last reconciled its whole history with."""
    last_reconcile: float | None = None
    """When it did (first contact, or the hub was new, flushed, restored, or trimmed past this node)."""
    last_reconcile_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) if self.configured else {"configured": False}


@dataclass(frozen=True)
class IndexState:
    """Where the approximate vector index of the active space stands (see store.ann)."""

    state: str
    """off | exact (store too small) | missing | building | ready | failed"""
    space_id: int | None = None
    model: str | None = None
    indexed: int = 0
    delta: int = 0
    progress: float | None = None
    detail: str = ""
    file: str | None = None
    build_seconds: float | None = None
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HiveStatus:
    node: NodeIdentity
    store: StoreFile
    memories: MemoryCounts
    sessions: int
    learning_queue: int
    embedding: EmbeddingState
    redis: RedisState
    sync: SyncState
    vector_index: IndexState | None
    config_path: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sync"] = self.sync.to_dict()
        return data
