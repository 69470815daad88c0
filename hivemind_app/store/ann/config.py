"""The index's knobs (from `SearchSettings`)."""

from __future__ import annotations

from dataclasses import dataclass

DTYPES = ("f32", "f16", "i8")


@dataclass(frozen=True)
class AnnConfig:
    """The index's knobs (from `SearchSettings`); see the settings' docstrings."""

    enabled: bool = True
    min_vectors: int = 20_000
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 1024
    dtype: str = "f16"
    exact_filter_limit: int = 20_000
    compact_changes: int = 20_000
    threads: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"ANN dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}.")
