"""The search modes every front end offers and the retrieval pipeline runs."""

from __future__ import annotations

from typing import Literal

SearchMode = Literal["hybrid", "vector", "keyword"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "vector", "keyword")
"""Hybrid first: it is the default."""
