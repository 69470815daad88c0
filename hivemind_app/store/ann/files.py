"""The index's file set: every file name, glob and pattern the index uses, in one place.

A store's index files live in `<store file>.ann/` beside it. Per embedding space N:

- `space-N.json`: the sidecar, naming the current index file and what it was built from;
- `space-N-SEQ-TOKEN.usearch`: the HNSW graph, complete up to change-log number SEQ;
- `space-N-SEQ-TOKEN.vectors.npy` and `.keys.npy`: every indexed vector by rowid (`vectors.VectorTable`);
- `space-N.lock`: held by the one process building;
- `.space-N-...tmp` and `space-N.TOKEN.tmp`: files being written (renamed into place when complete).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

INDEX_SUFFIX = ".usearch"
# The space a file in the index directory belongs to, whatever its kind (temporary files included).
_SPACE_OF_FILE = re.compile(r"\.*space-(\d+)")


def index_dir(db_path: Path) -> Path:
    """Where a store's index files live: `<store file>.ann/` beside it."""
    return db_path.parent / f"{db_path.name}.ann"


def spaces_with_files(directory: Path) -> set[int]:
    """The embedding spaces that have any file in `directory` (leftovers of dropped spaces included)."""
    if not directory.is_dir():
        return set()
    named = (_SPACE_OF_FILE.match(path.name) for path in directory.iterdir())
    return {int(match[1]) for match in named if match}


def side_names(name: str) -> tuple[str, str]:
    """The vector and key files written beside the index file `name`."""
    stem = name.removesuffix(INDEX_SUFFIX)
    return f"{stem}.vectors.npy", f"{stem}.keys.npy"


@dataclass(frozen=True)
class SpaceFiles:
    """The files of one embedding space's index in `directory`."""

    directory: Path
    space_id: int

    @property
    def sidecar(self) -> Path:
        return self.directory / f"space-{self.space_id}.json"

    @property
    def lock(self) -> Path:
        return self.directory / f"space-{self.space_id}.lock"

    def sidecar_tmp(self, token: str) -> Path:
        return self.sidecar.with_suffix(f".{token}.tmp")

    def index_name(self, seq: int, token: str) -> str:
        """A new index file's name: complete up to change-log number `seq`, unique by `token`."""
        return f"space-{self.space_id}-{seq}-{token}{INDEX_SUFFIX}"

    def path(self, name: str) -> Path:
        return self.directory / name

    def tmp(self, name: str) -> Path:
        """Where `name` is written before it is renamed into place."""
        return self.directory / f".{name}.tmp"

    def leftover_tmps(self) -> list[Path]:
        """Temporary files of a build cut short (its process exited)."""
        return list(self.directory.glob(f".space-{self.space_id}-*.tmp"))

    def superseded(self, current: str) -> list[Path]:
        """Index, vector and key files other than those of the index file `current`."""
        keep = {current, *side_names(current)}
        return [path for path in self.directory.glob(f"space-{self.space_id}-*") if path.name not in keep]

    def every_file(self) -> list[Path]:
        """Every file of this space: sidecar, lock, index files, temporary files."""
        return [
            *self.directory.glob(f"space-{self.space_id}.*"),
            *self.directory.glob(f"space-{self.space_id}-*"),
            *self.directory.glob(f".space-{self.space_id}-*"),
        ]
