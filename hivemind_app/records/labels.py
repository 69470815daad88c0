"""The names of the tags and limits that mark what a memory is for (no imports: Claude Code's hook hot path
reads them without the dataclasses of `records.memories`, which re-exports them)."""

GLOBAL_TAG = "global"
"""A memory tagged this is recalled and injected in every project, not only its own."""
DIGEST_TAG = "session-digest"
"""The tag of a session's digest: one memory per session, written without an LLM (`services/digest.py`)."""
SUMMARY_TAG = "session-summary"
"""The tag of a session's summary by the local LLM (an infer node), which replaces its digest."""
MAX_PROJECT_CHARS = 300
"""The longest project name (`hivemind_app.projects`) a memory carries."""
