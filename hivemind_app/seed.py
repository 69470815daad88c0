"""The seed's fixed numbers, defined once for the store, the hub and the front ends alike."""

from __future__ import annotations

SESSION_TTL_S = 7 * 24 * 3600
"""A session lives a week after its last write (Redis `session:{id}` TTL; the local list shows as long)."""

TOOL_CACHE_TTL_S = 3600
"""A cached tool output lives an hour unless the caller names another TTL."""
