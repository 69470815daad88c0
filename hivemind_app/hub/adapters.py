"""The hive's adapter registry in Redis: versioned, immutable adapters, the active one, and round history.

A small adapter's bytes live in its hash (`models:adapter:{v}`, field `data`); a big one is copied to
`train.shared_dir` and the hash names the file. Either way the hash carries the sha256 that every infer
node checks before it loads the file. On a node with the hive key the hash also carries `mac`, the adapter's
version, base model and sha256 signed with it (trust/records.py), and a keyed node fetches only an adapter
whose `mac` verifies: whoever can write to Redis cannot publish one. Activation writes `adapter:active` in
`models:active` and announces the change on `channel:events`.
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
from hivemind_app.hub.sync import HubSync
from hivemind_app.records.learning import AdapterInfo
from hivemind_app.store.adapter_files import sha256_file, verified_copy

ACTIVE_FIELD = "adapter:active"
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
            metrics=json.loads(meta["metrics"] or "{}"),
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

        def write(client: Any) -> None:
            pipe = client.pipeline(transaction=True)
            if info is None:
                pipe.hdel(self.keys.models_active, ACTIVE_FIELD)
            else:
                record = {"version": info.version, "sha256": info.sha256, "base_model": info.base_model}
                pipe.hset(self.keys.models_active, ACTIVE_FIELD, json.dumps(record))
            pipe.publish(self.keys.events, event)
            pipe.execute()

        self._call(write)
        return None if info is None else AdapterInfo(**{**info.to_dict(), "active": True})

    def _active_version(self, client: Any) -> int | None:
        raw = client.hget(self.keys.models_active, ACTIVE_FIELD)
        return int(json.loads(as_text(raw))["version"]) if raw else None

    def active(self) -> AdapterInfo | None:
        def read(client: Any) -> AdapterInfo | None:
            version = self._active_version(client)
            if version is None:
                return None
            return self._info(version, client.hmget(self.keys.models_adapter(version), _META), version)

        result: AdapterInfo | None = self._call(read)
        return result

    def adapters(self) -> list[AdapterInfo]:
        def read(client: Any) -> list[AdapterInfo]:
            active = self._active_version(client)
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
        return [json.loads(as_text(r)) for r in raw]
