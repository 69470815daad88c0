"""The sidecar (`space-N.json`): which index file serves a space, and what it was built from.

It names the file, the store's vector-history token (`meta.ann_generation`), the change-log number the file
is complete up to, and the model and index parameters. A file whose sidecar does not match the store (another
store's, another model's, older than the pruned log, newer than the store) is never used.
"""

from __future__ import annotations

import json
import os
from typing import Any

import apsw

from hivemind_app.store.ann import changes
from hivemind_app.store.ann.config import AnnConfig
from hivemind_app.store.ann.files import SpaceFiles
from hivemind_app.store.models import EmbeddingSpace

FORMAT = 1
LIBRARY = "usearch"


def read(files: SpaceFiles) -> dict[str, Any] | None:
    try:
        data = json.loads(files.sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(files: SpaceFiles, data: dict[str, Any], token: str) -> None:
    """Replace the sidecar at once (written beside it, then renamed): other processes see the new file."""
    tmp = files.sidecar_tmp(token)
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, files.sidecar)


def describe(space: EmbeddingSpace, config: AnnConfig, **saved: Any) -> dict[str, Any]:
    """A new sidecar: the format and parameters a reader checks, then what the build saved (`saved`)."""
    return {
        "format": FORMAT,
        "library": LIBRARY,
        "library_version": usearch_version(),
        "generation": saved.pop("generation"),
        "space_id": space.space_id,
        "model": space.model,
        "dim": space.dim,
        "dtype": config.dtype,
        "connectivity": config.connectivity,
        **saved,
    }


def unusable_reason(
    conn: apsw.Connection, meta: dict[str, Any], space: EmbeddingSpace, config: AnnConfig
) -> str | None:
    """Why the sidecar's file cannot serve this store (None: it can)."""
    expected = {
        "format": FORMAT,
        "library": LIBRARY,
        "generation": changes.generation(conn),
        "space_id": space.space_id,
        "model": space.model,
        "dim": space.dim,
        "dtype": config.dtype,
        "connectivity": config.connectivity,
    }
    for key, want in expected.items():
        if meta.get(key) != want:
            return f"index {key} is {meta.get(key)!r}, the store needs {want!r}"
    seq = int(meta.get("seq", -1))
    if seq > changes.last_seq(conn):
        return "the index is newer than the store (was the store restored from a backup?)"
    if changes.pruned_seq(conn, space.space_id) > seq:
        return "the index file misses changes the store no longer logs"
    if not changes.is_logging(conn):
        return "the store has not logged its changes since the index was saved"
    return None


def usearch_version() -> str:
    try:
        import usearch

        return str(getattr(usearch, "__version__", "?"))
    except ImportError:
        return "?"
