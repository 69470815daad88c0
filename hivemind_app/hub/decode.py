"""Every record read from the hub is checked here before anything applies it.

Redis stores but does not vouch: a key may have been written by an older or newer program, by hand, by the
seed's own code (a `session:{id}` hash without a version), or damaged. Each reader turns the raw reply into a
typed record or raises `BadRecord` with a sentence saying what is wrong; the caller quarantines that record
(`store/quarantine.py`), moves on, and applies the rest, so one bad record never stops the change feed or a
bootstrap.

What is checked: text is UTF-8; numbers are finite; JSON is JSON of the right shape (tags and sources are
lists of strings, a session's state an object); required fields are there; a memory's id is a sha256 and the
one its key names; a version is a whole number no further ahead of this node's clock than `version_ceiling`
allows (a day), so a version near 2**63 never reaches the clock and overflows the next local write; a
memory's `born` (the delete its life came after) is absent, '' or 'version:node' with such a version, and so is
each stamp in its `label_stamps` (the newest store that added each tag and source); its `occurred_at` (the time
it describes) is absent, '' or a number of unix seconds from 1970 to before the year 10000. On a node with the hive
key, a memory's MAC (trust/records.py): one that does not verify is refused, a vector whose MAC does not verify
is dropped; a session's MAC (its stamp, state, base and epoch), each side's MAC in a conflict record and the record's
own MAC over which side won over which (and a winner never older than its loser, with or without a key).
Every JSON value goes through `hub_json` (a value nested past the parser's recursion limit is a `BadRecord`,
not a RecursionError), and each reader turns any exception nobody foresaw into a `BadRecord` too, so one
record never stops a sync. Content
encrypted under `hive.encrypt` (`enc`) is decrypted after its MAC verified; a node without the key refuses it,
never taking its ciphertext for text.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from hivemind_app.records.memories import MAX_PROJECT_CHARS, OCCURRED_RANGE
from hivemind_app.store.database import MAX_AHEAD_S, VERSION_CAP, VERSION_SHIFT, version_ceiling
from hivemind_app.store.kinds import RecordKind
from hivemind_app.store.remote import RemoteMemory, RemoteSession
from hivemind_app.trust.records import RecordSeal, Undecryptable

_MEMORY_ID = re.compile(r"[0-9a-f]{64}")
_MAX_VERSION_DIGITS = 19  # 2**63 - 1 has 19 digits


class BadRecord(ValueError):
    """A record from the hub that cannot be applied as it is; the message says what is wrong with it."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _refusing(parse: Callable[_P, _R]) -> Callable[_P, _R]:
    """A reader whose every failure is a `BadRecord`: the checks below name what they refuse, and anything they
    did not foresee in a planted value (an exception no check was written for) still refuses that one record,
    which the caller quarantines, rather than escaping and stopping the sync of every record after it."""

    @functools.wraps(parse)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return parse(*args, **kwargs)
        except BadRecord:
            raise
        except Exception as exc:  # the backstop: never a crashed sync for one record
            raise BadRecord(f"it could not be read ({type(exc).__name__}: {str(exc)[:80]})") from None

    return checked


Fields = dict[str, bytes]


def fields_of(raw: Mapping[Any, Any]) -> Fields:
    """A Redis hash or stream entry as field name -> bytes (names decoded leniently, values left as bytes)."""
    out: Fields = {}
    for name, value in raw.items():
        key = name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else str(name)
        out[key] = value if isinstance(value, bytes) else str(value).encode()
    return out


def _text(fields: Fields, name: str, required: bool = True) -> str:
    value = fields.get(name)
    if value is None:
        if required:
            raise BadRecord(f"it has no {name!r} field")
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRecord(f"{name!r} is not UTF-8 text") from None


def _project(fields: Fields) -> str | None:
    """A memory's project: absent or '' in records from before projects (None), else a short line of text."""
    project = _text(fields, "project", required=False)
    if len(project) > MAX_PROJECT_CHARS or "\n" in project:
        raise BadRecord(f"'project' is {project[:40]!r}..., not a project name (one line, {MAX_PROJECT_CHARS} at most)")
    return project or None


def _occurred_at(fields: Fields) -> float | None:
    """The time a memory describes: absent or '' when not known (and in records from before the field), else
    unix seconds within `OCCURRED_RANGE`."""
    if not _text(fields, "occurred_at", required=False):
        return None
    at = _number(fields, "occurred_at")
    if not OCCURRED_RANGE[0] <= at < OCCURRED_RANGE[1]:
        raise BadRecord(f"'occurred_at' is {at!r}, not a time between 1970 and the year 10000")
    return at


def _number(fields: Fields, name: str) -> float:
    text = _text(fields, name)
    try:
        number = float(text)
    except ValueError:
        raise BadRecord(f"{name!r} is {text[:40]!r}, not a number") from None
    if not math.isfinite(number):
        raise BadRecord(f"{name!r} is {text[:40]!r}, not a finite number")
    return number


def hub_json(text: str | bytes, what: str = "it") -> object:
    """JSON read from the hub, or `BadRecord` saying `what` is not JSON. Every JSON value read from Redis goes
    through here: a value nested deeper than the parser's recursion limit (`[[[[...`, planted by anyone who can
    write to Redis) raises RecursionError, not ValueError, and must be refused like any other bad value rather
    than escape the sync loop."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        shown = text[:40] if isinstance(text, str) else text[:40].decode("utf-8", "backslashreplace")
        raise BadRecord(f"{what} is not JSON (or is nested too deep to read): {shown!r}") from None


def _json(fields: Fields, name: str) -> object:
    return hub_json(_text(fields, name), repr(name))


def _strings(fields: Fields, name: str) -> tuple[str, ...]:
    value = _json(fields, name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRecord(f"{name!r} is {json.dumps(value)[:40]}, not a JSON list of strings")
    return tuple(value)


def parse_version(value: bytes | str | None, now: float | None = None) -> int:
    """A version as the hub holds it (decimal text), refused unless a whole number this node may take."""
    if value is None:
        raise BadRecord("it has no version (it was not written by a hivemind-app node)")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if not (text.isascii() and text.isdigit()):
        raise BadRecord(f"its version {text[:40]!r} is not a whole number")
    if len(text) > _MAX_VERSION_DIGITS:
        raise BadRecord(f"its version has {len(text)} digits, past the largest a store can hold (2**63 - 1)")
    version = int(text)
    if version == 0:
        raise BadRecord("its version is 0")
    now = time.time() if now is None else now
    if version > VERSION_CAP:
        raise BadRecord(f"its version {version} is past the largest a store can hold (2**63 - 1)")
    if version > version_ceiling(now):
        ahead_days = ((version >> VERSION_SHIFT) / 1000 - now) / 86400
        raise BadRecord(
            f"its version {version} lies {ahead_days:,.1f} days ahead of this node's clock (at most "
            f"{MAX_AHEAD_S / 86400:g} is taken): check the clock of the node that wrote it, and this one's"
        )
    return version


def _born(fields: Fields) -> tuple[int, str]:
    """The stamp of the delete a memory's life came after: 'version:node', or '' (absent) for a first life."""
    text = _text(fields, "born", required=False)
    if not text:
        return (0, "")
    return _stamp(text, "'born'")


def _stamp(text: str, what: str) -> tuple[int, str]:
    version, sep, node = text.partition(":")
    if not sep:
        raise BadRecord(f"{what} is {text[:40]!r}, not 'version:node'")
    return (parse_version(version), node)


def _label_stamps(fields: Fields) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]]]:
    """'label_stamps': {"tags": {tag: 'version:node'}, "sources": {...}}, the stamp of the newest store that
    added each label; absent or '' in records from before label stamps (each label then has the record's)."""
    if not _text(fields, "label_stamps", required=False):
        return {}, {}
    value = _json(fields, "label_stamps")
    if not isinstance(value, dict):
        raise BadRecord("'label_stamps' is not a JSON object")
    out: list[dict[str, tuple[int, str]]] = []
    for kind in ("tags", "sources"):
        stamps = value.get(kind, {})
        if not isinstance(stamps, dict) or not all(isinstance(s, str) for s in stamps.values()):
            raise BadRecord(f"'label_stamps' {kind} is not an object of 'version:node' strings")
        out.append({label: _stamp(s, f"the stamp of {kind[:-1]} {label[:40]!r}") for label, s in stamps.items()})
    return out[0], out[1]


@_refusing
def parse_memory(memory_id: str, raw: Mapping[Any, Any], seal: RecordSeal | None = None) -> RemoteMemory:
    """The memory hash at `embedding:{memory_id}` as a typed record (`BadRecord` if it cannot be applied);
    with `seal`, only one this hive's key sealed."""
    fields = fields_of(raw)
    problem = seal.memory_problem(fields) if seal is not None else None
    if problem:
        raise BadRecord(problem)
    if seal is None and fields.get("enc") == b"1":  # never its ciphertext taken as text
        raise BadRecord(
            "it is encrypted with the hive key (hive.encrypt), which this node does not hold: "
            "`hivemind-app hive join` here to read it"
        )
    vector_trusted = seal is None or seal.vector_ok(fields)  # checked on the bytes as stored
    if seal is not None:
        try:
            fields = seal.open_memory(memory_id, fields)
        except Undecryptable as exc:
            raise BadRecord(str(exc)) from None
    version = parse_version(fields.get("version"))
    record_id = _text(fields, "id")
    if record_id != memory_id:
        raise BadRecord(f"its id {record_id[:70]!r} is not the one its key names")
    if not _MEMORY_ID.fullmatch(memory_id):
        raise BadRecord("its id is not a sha256 (64 lowercase hex digits)")
    deleted = _text(fields, "deleted")
    if deleted not in ("0", "1"):
        raise BadRecord(f"'deleted' is {deleted[:40]!r}, not '0' or '1'")
    text = _text(fields, "text")
    if deleted == "0" and not text.strip():
        raise BadRecord("it is a live memory with no text")
    vector = fields.get("vector") or b""
    if vector and not vector_trusted:
        vector = b""  # not this hive's vector: the text is embedded here instead
    tag_added, source_added = _label_stamps(fields)
    return RemoteMemory(
        id=memory_id,
        version=version,
        text=text,
        deleted=deleted == "1",
        timestamp=_number(fields, "timestamp"),
        updated_at=_number(fields, "updated_at"),
        origin=_text(fields, "origin"),
        node=_text(fields, "node", required=False),
        born=_born(fields),
        session_id=_text(fields, "session_id", required=False) or None,
        project=_project(fields),
        occurred_at=_occurred_at(fields),
        tags=_strings(fields, "tags"),
        sources=_strings(fields, "sources"),
        model=_text(fields, "model", required=False) if vector else "",
        vector=vector,
        tag_added=tag_added,
        source_added=source_added,
    )


def _optional_number(state: dict[str, Any], name: str) -> None:
    value = state.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise BadRecord(f"the state's {name!r} is {json.dumps(value)[:40]}, not a number")


@_refusing
def parse_session(raw: Mapping[Any, Any], seal: RecordSeal | None = None, session_id: str = "") -> RemoteSession:
    """A `session:{id}` hash as a typed record (`BadRecord` if it cannot be applied).

    A hash in the seed's own format (timestamp, context, files, current_task, no version) was written by
    something other than a hivemind-app node: without a version it cannot be ordered against ours.
    """
    fields = fields_of(raw)
    problem = seal.session_problem(session_id, fields) if seal is not None else None
    if problem:
        raise BadRecord(problem)
    if "version" not in fields:
        raise BadRecord(
            "it has no version: a session hash in the seed's own format (or another program's), which cannot "
            "be ordered against this node's edits"
        )
    version = parse_version(fields["version"])
    node = _text(fields, "node", required=False)
    if fields.get("cleared") == b"1":
        return RemoteSession(version, None, node)
    state = _session_state(fields, "state", seal, session_id)
    return RemoteSession(version, state, node)


def _session_state(fields: Fields, name: str, seal: RecordSeal | None, session_id: str) -> dict[str, Any]:
    """A session's state (the field `name`: a hash's `state`, a conflict side's), decrypted when it is
    encrypted (`enc`), and checked for the shape the seed describes."""
    encrypted = fields.get("enc") == b"1"
    if encrypted and seal is None:  # never its ciphertext taken for a state
        raise BadRecord(
            "it is encrypted with the hive key (hive.encrypt), which this node does not hold: "
            "`hivemind-app hive join` here to read it"
        )
    if encrypted:
        assert seal is not None
        try:
            fields = {**fields, name: seal.open_session_field(session_id, "state", _text(fields, name)).encode()}
        except Undecryptable as exc:
            raise BadRecord(str(exc)) from None
    state = _json(fields, name)
    if not isinstance(state, dict):
        raise BadRecord(f"its 'state' is {json.dumps(state)[:40]}, not a JSON object")
    if not isinstance(state.get("context", {}), dict):
        raise BadRecord("the state's 'context' is not a JSON object")
    files = state.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise BadRecord("the state's 'files' is not a list of strings")
    if not isinstance(state.get("current_task", ""), str):
        raise BadRecord("the state's 'current_task' is not a string")
    _optional_number(state, "timestamp")
    _optional_number(state, "closed_at")
    return state


@_refusing
def parse_feed_entry(raw: Mapping[Any, Any]) -> tuple[RecordKind, str, str]:
    """A change-feed entry as (kind, record id, node that wrote it)."""
    fields = fields_of(raw)
    kind = _text(fields, "kind")
    if kind not in (RecordKind.MEMORY, RecordKind.SESSION):
        raise BadRecord(f"its kind {kind[:40]!r} is neither 'memory' nor 'session'")
    record_id = _text(fields, "id")
    if not record_id:
        raise BadRecord("its id is empty")
    if kind == RecordKind.MEMORY and not _MEMORY_ID.fullmatch(record_id):
        raise BadRecord("its memory id is not a sha256 (64 lowercase hex digits)")
    return RecordKind(kind), record_id, _text(fields, "node", required=False)


_CONFLICT_SIDE = ("version", "node", "cleared", "base", "base_node", "epoch", "mac", "enc")


def _side(record: dict[str, Any], side: str, seal: RecordSeal | None, session_id: str) -> dict[str, Any]:
    """One side of a conflict record as {version, node, state}; with `seal`, only one whose MAC verifies as
    that session's edit (the push script copies each side's MAC and what it covers into the record)."""
    version, node, state = record.get(f"{side}_version"), record.get(f"{side}_node"), record.get(side)
    if not isinstance(version, str | int) or isinstance(version, bool):
        raise BadRecord(f"its {side}_version is missing or not a version")
    if not isinstance(node, str) or not isinstance(state, str):
        raise BadRecord(f"its {side}_node or {side} is missing or not a string")
    fields: Fields = {}
    for name in _CONFLICT_SIDE:
        value = record.get(f"{side}_{name}", "")
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise BadRecord(f"its {side}_{name} is not a string")
        fields[name] = str(value).encode("utf-8")
    fields["state"] = state.encode("utf-8")
    if seal is not None:
        problem = seal.session_problem(session_id, fields)
        if problem:
            raise BadRecord(f"its {side} ({'A' if side == 'winner' else 'B'}): {problem}")
    if fields["cleared"] == b"1" or not state:  # a cleared session's marker: no state
        return {"version": version, "node": node, "state": {}}
    try:
        parsed = _session_state(fields, "state", seal, session_id)
    except BadRecord as exc:
        raise BadRecord(f"its {side} state: {exc}") from None
    return {"version": version, "node": node, "state": parsed}


@_refusing
def parse_conflict(value: bytes | str, seal: RecordSeal | None = None, session_id: str = "") -> dict[str, Any]:
    """One field of `sessions:conflicts` (`session_id`'s) as {winner, loser}, each {version, node, state};
    with `seal`, only one whose both sides verify (a planted or changed record is refused)."""
    record = hub_json(value)
    if not isinstance(record, dict):
        raise BadRecord("it is not a JSON object")
    sides = {"winner": _side(record, "winner", seal, session_id), "loser": _side(record, "loser", seal, session_id)}
    if seal is not None:  # each side is an edit of this session; the record's own MAC says which won over which
        given = record.get("mac")
        if not given:
            raise BadRecord("it carries no MAC of its own: it was not written by a node holding this hive's key")
        if not seal.conflict_ok(session_id, str(record.get("winner_mac")), str(record.get("loser_mac")), given):
            raise BadRecord(
                "its MAC does not verify: its sides were swapped or replaced in Redis (other sealed edits of the "
                "session put together), or it was written with another hive's key"
            )
    winner, loser = sides["winner"], sides["loser"]
    if (parse_version(str(winner["version"])), winner["node"]) < (parse_version(str(loser["version"])), loser["node"]):
        raise BadRecord("its winner (A) is older than its loser (B): no push decides a conflict that way")
    return sides
