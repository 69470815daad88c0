"""The hive's Redis keys, spelled as the seed spells them, under a configurable prefix.

The only place key names are spelled, SCAN patterns included: a pattern is built from the key's own spelling
with the glob characters of the prefix escaped (`escape_glob`), so a prefix like `hive[1]*?` matches itself
and nothing else; and a key found by a scan is turned back into its id here (`embedding_id`, `session_id`).
"""

from __future__ import annotations

from dataclasses import dataclass

HEARTBEAT_TTL_BEATS = 3
_GLOB_SPECIAL = frozenset("*?[]\\")


def escape_glob(text: str) -> str:
    """`text` as a Redis glob-style pattern (SCAN MATCH, KEYS) that matches exactly `text`."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


@dataclass(frozen=True)
class Keys:
    prefix: str

    def _key(self, *parts: str) -> str:
        return ":".join([self.prefix, *parts]) if self.prefix else ":".join(parts)

    def session(self, session_id: str) -> str:
        """HASH timestamp, context, files, current_task (+ version, node); 7-day TTL renewed on write."""
        return self._key("session", session_id)

    @property
    def memory_embeddings(self) -> str:
        """ZSET scored by unix time, member "{embedding_hash}:{text_hash}"."""
        return self._key("memory", "embeddings")

    def embedding(self, text_hash: str) -> str:
        """HASH vector (float32 blob), text, timestamp, source, and what sync needs (version, tags, ...)."""
        return self._key("embedding", text_hash)

    @property
    def embedding_pattern(self) -> str:
        """SCAN MATCH pattern of every memory's hash (tombstones included)."""
        return escape_glob(self.embedding("")) + "*"

    def embedding_id(self, key: str) -> str:
        """The memory id of a key `embedding_pattern` matched."""
        return key[len(self.embedding("")) :]

    @property
    def session_pattern(self) -> str:
        """SCAN MATCH pattern of every session's hash."""
        return escape_glob(self.session("")) + "*"

    def session_id(self, key: str) -> str:
        """The session id of a key `session_pattern` matched."""
        return key[len(self.session("")) :]

    @property
    def memory_changes(self) -> str:
        """STREAM of memory and session writes with server-assigned ids: the gap-free change feed."""
        return self._key("memory", "changes")

    @property
    def hive_epoch(self) -> str:
        """STRING: a random id the first node to meet this Redis writes (SET NX). A FLUSHALL, a new Redis, or a
        restore that predates it changes it, so a node that finds another epoch than the one it last synced
        with reconciles its whole history (`hub/epoch.py`)."""
        return self._key("epoch")

    @property
    def node_cursors(self) -> str:
        """HASH node id -> JSON {cursor, at}: how far each node has read the change feed (the trim keeps it)."""
        return self._key("memory", "cursors")

    @property
    def learning_queue(self) -> str:
        """STREAM user_query, tool_used, result, success, timestamp (+ tool_input, session_id, node)."""
        return self._key("learning", "queue")

    def learning_pushed(self, uid: str) -> str:
        """Marker that makes a retried learning-queue push add nothing (24 h)."""
        return self._key("learning", "pushed", uid)

    def tool(self, tool_name: str, input_hash: str) -> str:
        """STRING cached output, 1-hour TTL."""
        return self._key("tool", tool_name, input_hash)

    @property
    def models_active(self) -> str:
        """HASH node name -> its LLM file (heartbeats), and `adapter:active` -> the pointer to the active adapter
        (JSON: version, sha256, base_model, stamp, and with the hive key mac; `hub/adapters.py`), or with the
        hive key and no adapter active `adapter:none` -> the sealed "none" pointer (version null)."""
        return self._key("models", "active")

    def models_adapter(self, version: int) -> str:
        """HASH of one published adapter: sha256, size, base_model, metrics, ... and data (or a shared path)."""
        return self._key("models", "adapter", str(version))

    @property
    def models_adapters(self) -> str:
        """ZSET of published adapter versions (score = version)."""
        return self._key("models", "adapters")

    @property
    def models_adapter_seq(self) -> str:
        """STRING counter that numbers adapters across the hive."""
        return self._key("models", "adapter", "seq")

    @property
    def training_rounds(self) -> str:
        """LIST of training-round reports (JSON), newest first, capped."""
        return self._key("training", "rounds")

    @property
    def events(self) -> str:
        """PUBSUB channel: nudges tailers, announces adapters."""
        return self._key("channel", "events")

    @property
    def nodes_active(self) -> str:
        return self._key("nodes", "active")

    def node_heartbeat(self, node_id: str) -> str:
        return self._key("node", node_id, "heartbeat")

    @property
    def session_conflicts(self) -> str:
        """HASH session id -> JSON {winner, loser}: sessions edited on both sides of a partition."""
        return self._key("sessions", "conflicts")

    @staticmethod
    def entry(key: str, member: str) -> str:
        """How one entry of a stream or one field of a hash is named where a whole key is not enough (the
        quarantine): `KEY#member`."""
        return f"{key}#{member}"
