"""Typed records that cross layers (store -> services -> front ends): frozen dataclasses, no behaviour beyond
formatting. Converted to JSON only at the edge (`to_dict`), so mypy follows a value from SQLite to the screen.

This package imports nothing of the app but the standard library: every layer may depend on it.
"""
