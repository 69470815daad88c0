"""The hive's adapter registry in Redis: versioned, immutable adapters, the active one, and round history.

A small adapter's bytes live in its hash (`models:adapter:{v}`, field `data`); a big one is copied to
`train.shared_dir` and the hash names the file. Either way the hash carries the sha256 that every infer
node checks before it loads the file. On a node with the hive key the hash also carries `mac`, the adapter's
version, base model and sha256 signed with it (trust/records.py), and a keyed node fetches only an adapter
whose `mac` verifies: whoever can write to Redis cannot publish one. Activation writes `adapter:active` in
`models:active` (the pointer: the adapter's version, sha256 and base model), or deletes it for none (a keyed
node writes its sealed "none" pointer to `adapter:none` instead, which a node of an older release never
reads), and announces the change on `channel:events`.

The pointer carries a `stamp`, the activating node's clock (a version) past the pointer it replaces and past
every pointer that node took, so it only grows across the hive; on a node with the hive key it carries `mac`
over both (trust/records.py). A keyed node takes only a pointer whose `mac` verifies and whose stamp is not
older than the newest it took (kept in SQLite, `POINTER_FLOOR`): whoever writes to Redis can neither point the
hive at an adapter nor put back an older pointer (an older adapter, signed in its day, or none), and a pointer
deleted from Redis after this node took one is refused too; the node keeps serving what it serves, with why.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hivemind_app.errors import AdapterError, HubError
from hivemind_app.hub.connection import as_text, explain
from hivemind_app.hub.decode import BadRecord, hub_json
from hivemind_app.hub.sync import HubSync
from hivemind_app.records.learning import AdapterInfo
from hivemind_app.store.adapter_files import sha256_file, verified_copy

ACTIVE_FIELD = "adapter:active"
# With the hive key, "no adapter active" is a sealed pointer too, but it is kept in a field of its own and
# `adapter:active` is deleted: a node of the release before sealed pointers reads `adapter:active` as
# int(pointer["version"]) and would crash on a pointer whose version is null (a rolling upgrade).
NONE_FIELD = "adapter:none"
POINTER_FLOOR = "adapter_pointer_stamp"
"""The `sync_state` key of the newest pointer stamp this node took."""
ROUNDS_KEPT = 500
_META = ("sha256", "size", "base_model", "metrics", "created_at", "node", "path")
MAX_SHARED_ADAPTER_BYTES = 1 << 30
"""The largest adapter file read from `train.shared_dir` (a LoRA adapter is megabytes; the `path` in Redis is
not signed, so a file named there is read only when it is a regular file this size or smaller)."""


class HubAdapterRegistry:
    def __init__(self, hub: HubSync, cache_dir: Path, shared_dir: str | None, max_inline_mb: float) -> None:
        self.hub = hub
        self.keys = hub.keys
        self.cache_dir = cache_dir
        self.shared_dir = Path(shared_dir).expanduser() if shared_dir else None
        self.max_inline_bytes = int(max_inline_mb * 1024 * 1024)

    def _call(self, action: Callable[[Any], Any]) -> Any:
        from redis import exceptions

        try:
            return action(self.hub.client())
        except exceptions.RedisError as exc:
            reason = explain(exc, self.hub.url, self.hub.settings.redis.connect_timeout_s)
            raise HubError(f"Cannot reach the adapter registry: {reason}") from exc

    def _info(self, version: int, fields: list[Any], active: int | None) -> AdapterInfo | None:
        if fields[0] is None:
            return None
        meta = dict(zip(_META, (None if f is None else as_text(f) for f in fields), strict=True))
        return AdapterInfo(
            version=version,
            sha256=str(meta["sha256"]),
            size=int(meta["size"] or 0),
            base_model=str(meta["base_model"]),
            metrics=_metrics(meta["metrics"]),
            created_at=float(meta["created_at"] or 0),
            node=str(meta["node"]),
            active=version == active,
        )

    def publish(self, path: Path, base_model: str, metrics: dict[str, Any], node: str) -> AdapterInfo:
        size = path.stat().st_size
        digest = sha256_file(path)
        if size > self.max_inline_bytes and self.shared_dir is None:
            raise AdapterError(
                f"The adapter is {size / 2**20:.1f} MiB, over train.max_redis_adapter_mb "
                f"({self.max_inline_bytes / 2**20:.0f}); set train.shared_dir to a directory every node can read."
            )
        version = int(self._call(lambda client: client.incr(self.keys.models_adapter_seq)))
        now = time.time()
        fields: dict[str, Any] = {
            "sha256": digest,
            "size": size,
            "base_model": base_model,
            "metrics": json.dumps(metrics),
            "created_at": now,
            "node": node,
        }
        seal = self.hub.channel.seal
        if seal is not None:
            fields["mac"] = seal.adapter_mac(version, base_model, digest)
        if size <= self.max_inline_bytes:
            fields["data"] = path.read_bytes()
        else:
            assert self.shared_dir is not None
            self.shared_dir.mkdir(parents=True, exist_ok=True)
            target = self.shared_dir / f"adapter-v{version}-{digest[:12]}.gguf"
            shutil.copyfile(path, target.with_suffix(".part"))
            target.with_suffix(".part").replace(target)
            fields["path"] = str(target)

        def write(client: Any) -> None:
            pipe = client.pipeline(transaction=True)
            pipe.hset(self.keys.models_adapter(version), mapping=fields)
            pipe.zadd(self.keys.models_adapters, {str(version): version})
            pipe.execute()

        self._call(write)
        return AdapterInfo(version, digest, size, base_model, now, node, metrics)

    def activate(self, version: int | None) -> AdapterInfo | None:
        info = None
        if version is not None:
            info = next((a for a in self.adapters() if a.version == version), None)
            if info is None:
                raise AdapterError(f"No adapter v{version}; `hivemind-app adapters` lists the published ones.")
        event = json.dumps({"type": "adapter", "version": version, "node": self.hub.db.node_id})

        seal = self.hub.channel.seal

        def write(client: Any) -> None:
            stamp = self._next_stamp(client)
            pipe = client.pipeline(transaction=True)
            record: dict[str, Any] = {"version": None, "sha256": None, "base_model": None, "stamp": stamp}
            if info is not None:
                record.update(version=info.version, sha256=info.sha256, base_model=info.base_model)
            if seal is not None:
                record["mac"] = seal.pointer_mac(record)
            if info is not None:
                pipe.hset(self.keys.models_active, ACTIVE_FIELD, json.dumps(record))
                pipe.hdel(self.keys.models_active, NONE_FIELD)
            else:  # with the hive key, "none active" is a sealed pointer too (its own field): a deleted one is refused
                pipe.hdel(self.keys.models_active, ACTIVE_FIELD)
                if seal is not None:
                    pipe.hset(self.keys.models_active, NONE_FIELD, json.dumps(record))
                else:
                    pipe.hdel(self.keys.models_active, NONE_FIELD)
            pipe.publish(self.keys.events, event)
            pipe.execute()
            if seal is not None:
                self.hub.replica.raise_floor(POINTER_FLOOR, stamp)

        self._call(write)
        return None if info is None else AdapterInfo(**{**info.to_dict(), "active": True})

    def _next_stamp(self, client: Any) -> int:
        """A pointer stamp later than the pointer in the hub and every pointer this node took (the clocks of
        two nodes may disagree: the stamp still only grows)."""
        stamp = self.hub.db.next_version_now()
        floor = int(self.hub.replica.state().get(POINTER_FLOOR) or 0)
        try:
            current = self._pointer(client)
        except AdapterError:
            current = None  # a refused pointer orders nothing
        before = int(current["stamp"]) if current and isinstance(current.get("stamp"), int) else 0
        return max(stamp, floor + 1, before + 1)

    def _pointer(self, client: Any) -> dict[str, Any] | None:
        """The `models:active` pointer, checked on a node with the hive key (`AdapterError` saying why one is
        refused); None when no adapter is active."""
        active, none = client.hmget(self.keys.models_active, [ACTIVE_FIELD, NONE_FIELD])
        from_none = active is None and none is not None and self.hub.channel.seal is not None
        try:
            return self._checked_pointer(none if from_none else active, from_none)
        except AdapterError:
            raise
        except Exception as exc:  # the backstop: a pointer no check foresaw is refused, never a crashed node
            raise AdapterError(
                f"Refused the active-adapter pointer in Redis (models:active): it could not be read "
                f"({type(exc).__name__}); this node keeps serving what it serves; "
                "`hivemind-app adapters activate VERSION` sets it again."
            ) from None

    def _checked_pointer(self, raw: bytes | str | None, from_none: bool = False) -> dict[str, Any] | None:
        seal = self.hub.channel.seal
        floor = int(self.hub.replica.state().get(POINTER_FLOOR) or 0) if seal is not None else 0
        refused = "Refused the active-adapter pointer in Redis (models:active)"
        keep = "this node keeps serving what it serves; `hivemind-app adapters activate VERSION` sets it again."
        if raw is None:
            if floor:
                raise AdapterError(f"{refused}: it is gone, but this node took a sealed one before; {keep}")
            return None
        try:
            pointer = hub_json(as_text(raw))
        except BadRecord:
            pointer = None
        if not isinstance(pointer, dict):
            raise AdapterError(f"{refused}: it is not a JSON object; {keep}")
        if seal is not None:
            if not seal.pointer_ok(pointer):
                raise AdapterError(
                    f"{refused}: it is not signed with this hive's key (written or changed in Redis by someone "
                    f"without it); {keep}"
                )
            stamp = pointer.get("stamp")
            if not isinstance(stamp, int) or isinstance(stamp, bool):
                raise AdapterError(f"{refused}: its stamp is not a whole number; {keep}")
            if stamp < floor:
                raise AdapterError(
                    f"{refused}: it is older (stamp {stamp}) than the newest this node took ({floor}), an earlier "
                    f"activation put back in Redis; {keep}"
                )
            self.hub.replica.raise_floor(POINTER_FLOOR, stamp)
        version = pointer.get("version")
        if from_none and version is not None:
            raise AdapterError(f"{refused}: its 'no adapter' field names adapter v{version}; {keep}")
        if version is None:
            return None
        if not isinstance(version, int) or isinstance(version, bool):
            raise AdapterError(f"{refused}: its version is not a whole number; {keep}")
        return pointer

    def _active_version(self, client: Any) -> int | None:
        pointer = self._pointer(client)
        return None if pointer is None else int(pointer["version"])

    def active(self) -> AdapterInfo | None:
        """The adapter the pointer names (`AdapterError` when the pointer is refused, saying why)."""

        def read(client: Any) -> AdapterInfo | None:
            version = self._active_version(client)
            if version is None:
                return None
            return self._info(version, client.hmget(self.keys.models_adapter(version), _META), version)

        result: AdapterInfo | None = self._call(read)
        return result

    def adapters(self) -> list[AdapterInfo]:
        def read(client: Any) -> list[AdapterInfo]:
            try:
                active = self._active_version(client)
            except AdapterError:
                active = None  # a refused pointer marks none of them active
            versions = [int(as_text(v)) for v in client.zrange(self.keys.models_adapters, 0, -1)]
            pipe = client.pipeline(transaction=False)
            for version in versions:
                pipe.hmget(self.keys.models_adapter(version), _META)
            found = [self._info(v, f, active) for v, f in zip(versions, pipe.execute(), strict=True)]
            return [info for info in found if info is not None]

        result: list[AdapterInfo] = self._call(read)
        return result

    def fetch(self, version: int) -> Path:
        """The adapter's file in this node's cache, its sha256 checked (a corrupt copy is refused)."""
        key = self.keys.models_adapter(version)
        fields = self._call(lambda client: client.hmget(key, ("sha256", "path", "base_model", "mac")))
        if fields[0] is None:
            raise AdapterError(f"No adapter v{version} in the hub; `hivemind-app adapters` lists the published ones.")
        sha, shared_path = as_text(fields[0]), None if fields[1] is None else as_text(fields[1])
        seal = self.hub.channel.seal
        mac = None if fields[3] is None else as_text(fields[3])
        if seal is not None and not seal.adapter_ok(version, as_text(fields[2] or b""), sha, mac):
            raise AdapterError(
                f"Adapter v{version} is not signed with this hive's key (published or changed in Redis by someone "
                "without it); it is not loaded."
            )

        def read() -> bytes:
            if shared_path is not None:
                return self._read_shared(version, shared_path)
            data = self._call(lambda client: client.hget(key, "data"))
            if data is None:
                raise AdapterError(f"Adapter v{version} has no data in the hub.")
            return bytes(data)

        return verified_copy(read, sha, version, self.cache_dir)

    def _read_shared(self, version: int, shared_path: str) -> bytes:
        """The bytes of an adapter in `train.shared_dir`. The `path` field is not covered by the adapter's
        MAC (its sha256 is, checked after), so whoever writes to Redis chooses it: it is read only when it
        names a regular file inside this node's `train.shared_dir` (symlinks resolved first) of at most
        `MAX_SHARED_ADAPTER_BYTES`, never a device, a FIFO or a file elsewhere on this machine."""
        where = f"Adapter v{version} is in {shared_path[:200]!r}"
        if self.shared_dir is None:
            raise AdapterError(
                f"{where}, but this node has no train.shared_dir; set it to the directory the trainer uses."
            )
        try:
            base = self.shared_dir.resolve()
            target = Path(shared_path).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            raise AdapterError(f"{where}, which this node cannot resolve: {exc}") from exc
        if not target.is_relative_to(base):
            raise AdapterError(f"{where}, outside train.shared_dir ({base}): not read; the adapter is not loaded.")
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise AdapterError(f"{where}, which this node cannot read: {exc}") from exc
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise AdapterError(f"{where}, which is not a regular file: not read; the adapter is not loaded.")
        with os.fdopen(fd, "rb") as handle:
            if info.st_size > MAX_SHARED_ADAPTER_BYTES:
                raise AdapterError(
                    f"{where}, {info.st_size:,} bytes, over the {MAX_SHARED_ADAPTER_BYTES:,}-byte limit for an "
                    "adapter: not read."
                )
            data = handle.read(MAX_SHARED_ADAPTER_BYTES + 1)
        if len(data) > MAX_SHARED_ADAPTER_BYTES:  # it grew while being read
            raise AdapterError(f"{where}, which grew past the {MAX_SHARED_ADAPTER_BYTES:,}-byte limit: not read.")
        return data

    def record_round(self, report: dict[str, Any]) -> None:
        def write(client: Any) -> None:
            pipe = client.pipeline(transaction=True)
            pipe.lpush(self.keys.training_rounds, json.dumps(report))
            pipe.ltrim(self.keys.training_rounds, 0, ROUNDS_KEPT - 1)
            pipe.execute()

        self._call(write)

    def rounds(self, limit: int = 50) -> list[dict[str, Any]]:
        raw = self._call(lambda client: client.lrange(self.keys.training_rounds, 0, limit - 1))
        rounds = []
        for r in raw:
            try:
                report = hub_json(as_text(r))
            except BadRecord:
                continue  # a round report that is not ours to read hides only itself
            if isinstance(report, dict):
                rounds.append(report)
        return rounds


def _metrics(raw: str | None) -> dict[str, Any]:
    """An adapter's metrics as the hub holds them; ones that are not a JSON object read as none."""
    try:
        metrics = hub_json(raw or "{}")
    except BadRecord:
        return {}
    return metrics if isinstance(metrics, dict) else {}
