"""Which project a memory comes from: the git repository around a directory, named by its remote or its root.

A project's name is the `origin` remote's URL normalised to `host/owner/repo` (lower-case host, no scheme,
no user or password, no `.git`), so one repository cloned on two machines is one project everywhere; a
repository with no remote is named by its root's absolute path; a directory outside any repository has no
project (None), and what is stored there belongs to none.

Invariants: the name never carries credentials (the URL's user part is dropped and the rest passes the secret
redactor); finding it reads a few small files and starts no process (hooks call it on Claude Code's hot path:
stdlib and the redactor only, and `os.path` rather than `pathlib`, milliseconds to import); a repository that cannot be
read is named by its root, never an error.
"""

from __future__ import annotations

import os
import re

from hivemind_app.records.labels import MAX_PROJECT_CHARS
from hivemind_app.trust.redact import redact

# patterns, not compiled at import: a hook outside any repository needs none of them (`re` caches them)
_SCP_LIKE = r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$"  # git@github.com:owner/repo.git
_SCHEME = r"(?i)^[a-z][a-z0-9+.-]*://"
_REMOTE_SECTION = r'^\s*\[\s*remote\s+"([^"]+)"\s*\]\s*$'
_URL_LINE = r"^\s*url\s*=\s*(.+?)\s*$"


def normalise_remote(url: str) -> str | None:
    """`https://user:tok@GitHub.com/owner/repo.git` -> `github.com/owner/repo`; None for a local path."""
    url = url.strip()
    host, path = "", ""
    found = re.match(_SCHEME, url)
    if found:
        if url.lower().startswith("file://"):
            return None
        # the user part is everything up to the LAST `@` (a password may hold `/`, `?`, `#` or `@`; a host
        # never holds `@`: trust/urls.py), and a query or fragment (`?private_token=...`) is no part of a name
        rest = url[found.end() :]
        rest = rest[rest.rfind("@") + 1 :]
        rest = re.split(r"[?#]", rest, maxsplit=1)[0]
        host, _, path = rest.partition("/")
        if not host:
            return None
    elif (scp := re.match(_SCP_LIKE, url)) and not url.startswith(("/", ".")):
        host, path = scp.group(1), scp.group(2)
    else:
        return None
    host = host.lower().rsplit(":", 1)[0] if host.count(":") == 1 else host.lower()  # no port
    path = path.strip("/")
    path = path[:-4] if path.endswith(".git") else path
    name = f"{host}/{path}" if path else host
    return redact(name)[:MAX_PROJECT_CHARS] or None


def git_root(start: str) -> str | None:
    """The nearest directory at or above `start` holding `.git` (a directory, or a worktree's file)."""
    try:
        directory = os.path.realpath(start)
    except (OSError, ValueError):
        return None
    while True:
        if os.path.exists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _git_dir(root: str) -> str:
    """The repository's shared git directory (for a worktree: the main one, where `config` lives)."""
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:
        line = _read(dot_git).strip()
    except OSError:
        return dot_git
    target = os.path.join(root, line.removeprefix("gitdir:").strip())  # an absolute target stays as it is
    try:
        common = _read(os.path.join(target, "commondir")).strip()
        return os.path.realpath(os.path.join(target, common)) if common else target
    except OSError:
        return target


def origin_url(root: str) -> str | None:
    """The URL of the `origin` remote (else the first remote) in the repository's config, if any."""
    try:
        lines = _read(os.path.join(_git_dir(root), "config")).splitlines()
    except OSError:
        return None
    urls: dict[str, str] = {}
    section: str | None = None
    for line in lines[:5000]:
        if (head := re.match(_REMOTE_SECTION, line)) is not None:
            section = head.group(1)
        elif line.strip().startswith("["):
            section = None
        elif section is not None and (url := re.match(_URL_LINE, line)) is not None:
            urls.setdefault(section, url.group(1))
    return urls.get("origin") or next(iter(urls.values()), None)


def project_of(directory: str | os.PathLike[str] | None) -> str | None:
    """The project `directory` belongs to (see the module's docstring); None outside any git repository."""
    if not directory:
        return None
    root = git_root(os.fspath(directory))
    if root is None:
        return None
    url = origin_url(root)
    named = normalise_remote(url) if url else None
    return named or redact(root)[:MAX_PROJECT_CHARS]


def current_project(cwd: str | None = None) -> str | None:
    """The project of a Claude Code hook or MCP server: `CLAUDE_PROJECT_DIR` (where Claude Code was started),
    else the hook's `cwd`, else this process's working directory."""
    for candidate in (os.environ.get("CLAUDE_PROJECT_DIR"), cwd):
        if candidate:
            return _project_here(candidate)
    try:
        return _project_here(os.getcwd())
    except OSError:
        return None


def _project_here(directory: str) -> str | None:
    """`project_of`, remembered per directory in this process while its repository looks the same: the
    prompt's hook asks twice (to spool the prompt and to look up its memories), and a long-running MCP server
    keeps its directory. Each call still walks up to the repository's root (a stat per level) and stats its
    `.git` and `config`, so a `git init` after the server started, a new remote or a moved `.git` is seen at
    once; only reading and parsing the config is saved. At most `_FOUND_MAX` directories are kept."""
    root = git_root(directory)
    if root is None:
        return None
    signature = (root, _stamp(os.path.join(root, ".git")), _stamp(os.path.join(_git_dir(root), "config")))
    known = _found.get(directory)
    if known is not None and known[0] == signature:
        return known[1]
    if len(_found) >= _FOUND_MAX:
        _found.clear()
    project = project_of(directory)
    _found[directory] = (signature, project)
    return project


def _stamp(path: str) -> tuple[int, int, int] | None:
    """What changes when the file (or directory) at `path` is replaced or written: its inode, size and mtime."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


_FOUND_MAX = 64
_found: dict[str, tuple[tuple[str, tuple[int, int, int] | None, tuple[int, int, int] | None], str | None]] = {}
