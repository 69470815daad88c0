"""A read-only keyword lookup on the store file for Claude Code's prompt hook, which must answer in milliseconds.

The store proper (apsw, sqlite-vec, numpy, migrations) costs most of a second to open; a prompt hook cannot
wait for that on every prompt. This module opens the file with the standard library's SQLite (`_sqlite3`), read-only
(`mode=ro`: it never creates, migrates or writes the store), and asks only the FTS5 index and the `memories`
table. It scores each candidate by the topic words (stopwords aside) it shares with the prompt, as FTS5
(porter stemming) matches them, over the smaller of the two word counts (the overlap coefficient): a short
note that answers a long prompt, or a short prompt about a long note, scores near 1; a note that shares one
common word with the prompt scores low, and one word is never enough when the prompt has two or more.

Invariants: never writes; any problem (no store yet, an older schema, a busy file) is "nothing found", never
an error (the hook then injects nothing); the caller redacts the prompt before it gets here.
"""

from __future__ import annotations

import json
import os
import re

try:  # the C module alone: `sqlite3` adds the datetime adapters, which this lookup never uses (ms to import)
    import _sqlite3 as sqlite3
except ImportError:  # a Python whose sqlite3 is built otherwise
    import sqlite3  # type: ignore[no-redef,unused-ignore]

from hivemind_app.records.labels import DIGEST_TAG, SUMMARY_TAG

# A prompt's words beyond this many are not looked up (a pasted log would otherwise cost a query per word).
MAX_TERMS = 16
CANDIDATES = 24
_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)
# The common words of a request (the store's own list is in store/search.py, which loads numpy: too slow here).
_STOPWORD_TEXT = (
    "the and for with that this what was were are how why when where which who whom you your our its can could "
    "would should will shall not but have has had does did doing done from into onto about after before then "
    "than them they there their these those some any all also just only very much many more most such here "
    "please thanks thank let lets make made use used using get got want need like know tell show give take "
    "look find check see help try run work working file files code thing things way one two new now again "
    "still yet out off over under between while because been being into per via"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class Match:
    """A memory that shares topic words with the prompt; `relevance`: the shared topic words over the smaller
    word count (0..1), 0 when fewer than two are shared (of a prompt with two or more). A plain class: `typing`
    and `dataclasses` cost the hot path milliseconds to import."""

    __slots__ = ("id", "project", "relevance", "text")

    def __init__(self, id: str, text: str, project: str | None, relevance: float) -> None:
        self.id = id
        self.text = text
        self.project = project
        self.relevance = relevance

    def __repr__(self) -> str:
        return f"Match(id={self.id!r}, relevance={self.relevance:.2f})"


def topic_terms(prompt: str) -> list[str]:
    """The prompt's topic words, lower case, each once, in order, at most MAX_TERMS."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(prompt.lower()):
        if len(word) >= 4 if word.isdigit() else word not in _STOPWORDS:  # a port or a year, not "42"
            seen.setdefault(word, None)
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def prompt_matches(
    db_path: str | os.PathLike[str],
    prompt: str,
    projects: tuple[str, ...],
    exclude: set[str],
    limit: int,
    global_tag: str,
) -> list[Match]:
    """Memories in scope (these projects, no project, or tagged `global_tag`) that share topic words with the
    prompt, best covered first; [] on any problem."""
    terms = topic_terms(prompt)
    if not terms or not os.path.exists(db_path):
        return []
    try:
        conn = sqlite3.connect(f"file:{os.fspath(db_path)}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return []
    try:
        return _matches(conn, terms, projects, exclude, limit, global_tag)
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def _matches(
    conn: sqlite3.Connection,
    terms: list[str],
    projects: tuple[str, ...],
    exclude: set[str],
    limit: int,
    global_tag: str,
) -> list[Match]:
    # in scope: this project's, global ones and project-less ones, except a project-less session digest or
    # summary (a session outside any repository: its prompts and commands belong to no other project); ids
    # already given are left out in SQL, so they never crowd newer matches out of the candidates
    scope = (
        "m.deleted = 0 AND m.id NOT IN (SELECT value FROM json_each(?)) AND ("
        "m.project IN (SELECT value FROM json_each(?)) "
        "OR EXISTS (SELECT 1 FROM memory_tags g WHERE g.memory_rowid = m.rowid AND g.tag = ?) "
        "OR (m.project IS NULL AND NOT EXISTS (SELECT 1 FROM memory_tags d WHERE d.memory_rowid = m.rowid "
        "AND d.tag IN (?, ?))))"
    )
    rows = conn.execute(
        f"SELECT m.rowid, m.id, m.text, m.project FROM memories_fts f JOIN memories m ON m.rowid = f.rowid "
        f"WHERE memories_fts MATCH ? AND {scope} ORDER BY bm25(memories_fts) LIMIT ?",
        (
            " OR ".join(_quoted(t) for t in terms),
            json.dumps(sorted(exclude)),
            json.dumps(list(projects)),
            global_tag,
            DIGEST_TAG,
            SUMMARY_TAG,
            CANDIDATES,
        ),
    ).fetchall()
    candidates = {int(r[0]): r for r in rows}
    if not candidates:
        return []
    covered = dict.fromkeys(candidates, 0)
    rowids = json.dumps(list(candidates))
    for term in terms:
        for (rowid,) in conn.execute(
            "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))",
            (_quoted(term), rowids),
        ):
            covered[int(rowid)] += 1
    found = []
    for rowid, r in candidates.items():
        shared = covered[rowid]
        if shared < min(2, len(terms)):
            continue
        smaller = max(1, min(len(terms), len(topic_terms(str(r[2])[:4000]))))
        found.append(Match(str(r[1]), str(r[2]), r[3], min(1.0, shared / smaller)))
    found.sort(key=lambda m: -m.relevance)
    return found[:limit]
