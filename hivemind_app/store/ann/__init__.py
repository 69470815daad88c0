"""The approximate nearest-neighbour (ANN) index beside sqlite-vec: an HNSW graph (usearch) per embedding space.

sqlite-vec stays the source of truth and the exact path (small stores, filters that match few rows, any
fallback). The index lives in files next to the store (`hive.db.ann/`, see `files.py`): the graph, the
vectors beside it, and a sidecar naming that file, the store's vector-history token (`meta.ann_generation`)
and the `vector_changes` sequence number the file is complete up to. Opening memory-maps the file (no vector
is read on start; pages come in as searches touch them and are shared by every process on the machine).

Every transaction that changes a vector also appends (rowid, new vector or NULL) to `vector_changes` once an
index exists (`record_change`). Before each search a process replays the rows it has not seen into a small
in-memory "delta": the changed memories' current vectors, searched exactly, and the set of rowids whose copy
in the file is out of date ("shadowed", never returned from the file). So writes from this process, from
another process and from sync all show up in the next search, and a tombstoned memory is never returned.
When the delta grows past `compact_changes`, a background thread writes a new file (file + delta) and prunes
the log rows it covers; other processes see the sidecar change and map the new file.

An index that cannot be used (no file, a sidecar for another store or model, a file older than the pruned
log, a corrupt file) is detected on open: the search falls back to exact and a background thread rebuilds
the index from sqlite-vec, reporting progress. Only one process builds at a time (a lock file).

The parts, one concern each:

- `changes.py`: the change log (`record_change`, `forget_space`) and its compaction;
- `files.py`: every index file name, glob and pattern; `sidecar.py`: what a file claims and whether it fits;
- `vectors.py`: the vectors beside the graph (`VectorTable`);
- `index.py`: one space's index in a process (open, refresh, search); `manager.py`: all of a store's;
- `build.py`: background builds and compactions; `status.py`: `AnnStatus` and progress reports;
- `config.py`: `AnnConfig`, the knobs.
"""

from __future__ import annotations

from hivemind_app.store.ann.changes import forget_space, record_change
from hivemind_app.store.ann.config import AnnConfig
from hivemind_app.store.ann.files import index_dir
from hivemind_app.store.ann.index import AnnIndex
from hivemind_app.store.ann.manager import AnnManager, available
from hivemind_app.store.ann.status import AnnStatus, ProgressCallback

__all__ = [
    "AnnConfig",
    "AnnIndex",
    "AnnManager",
    "AnnStatus",
    "ProgressCallback",
    "available",
    "forget_space",
    "index_dir",
    "record_change",
]
