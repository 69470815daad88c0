"""A memory record as the hub sent it, once validated (`hub/decode.py` builds it; `MemoryRows.apply` takes it).

Nothing read from Redis reaches the store as a loose dict: every field here has its type, the version is an
integer within `version_ceiling`, the tags and sources are strings, and a live memory has text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hivemind_app.store.versions import Stamp


@dataclass(frozen=True)
class RemoteMemory:
    id: str
    version: int
    text: str
    """'' for a tombstone."""
    deleted: bool
    timestamp: float
    updated_at: float
    origin: str
    node: str = ""
    """The node that minted `version` (with it, the record's stamp; '' in records from before stamps)."""
    born: tuple[int, str] = (0, "")
    """The stamp of the delete this life of the memory came after ((0, ''): its first life)."""
    session_id: str | None = None
    project: str | None = None
    """The project it comes from (None in records from before projects, and for a memory of none)."""
    occurred_at: float | None = None
    """The time it describes (None in records from before the field, and when it is not known)."""
    tags: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    model: str = ""
    """The model of `vector` ('' when it has none)."""
    vector: bytes = b""
    """float32, little endian; b'' when the record carries none."""
    tag_added: Mapping[str, Stamp] = field(default_factory=dict)
    """The stamp of the newest store that added each tag (a tag missing here: the record's own stamp)."""
    source_added: Mapping[str, Stamp] = field(default_factory=dict)
    """The same for each source."""

    def tag_stamps(self) -> dict[str, Stamp]:
        """Each tag with the stamp of the newest store that added it."""
        return {tag: self.tag_added.get(tag, (self.version, self.node)) for tag in self.tags}

    def source_stamps(self) -> dict[str, Stamp]:
        """Each source, in order, with the stamp of the newest store that added it."""
        return {source: self.source_added.get(source, (self.version, self.node)) for source in self.sources}


@dataclass(frozen=True)
class RemoteSession:
    """A session hash as the hub holds it, once validated: its version and state (None: cleared there)."""

    version: int
    state: dict[str, Any] | None
    node: str = ""
    """The node that minted `version` ('' in records from before stamps)."""
