"""The store's own record: one embedding model's vector space (its vec0 table). Everything else a store
call returns is a plain record from `hivemind_app.records.memories`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddingSpace:
    """One embedding model's vectors in the store: vec0 table `vec_space_{space_id}`."""

    space_id: int
    model: str
    dim: int
    active: bool

    @property
    def table(self) -> str:
        return f"vec_space_{self.space_id}"

    def create_table_sql(self) -> str:
        """The DDL of this space's vec0 table (cosine distance, the model's dimension)."""
        return (
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.table} "
            f"USING vec0(embedding float[{int(self.dim)}] distance_metric=cosine)"
        )
