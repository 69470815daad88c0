"""The settings file as a user edits it (`config set`, `config show`), and URLs made safe to show."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from hivemind_app.config.paths import default_config_path
from hivemind_app.config.settings import Settings, describe_validation_error
from hivemind_app.errors import ConfigError


def redact_url(url: str) -> str:
    """A URL safe to show: passwords, lone tokens and query credentials replaced by `***` (trust/urls.py;
    it cannot fail open, also on a URL that does not parse)."""
    from hivemind_app.trust.urls import redact_url as redact

    return redact(url)


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    """The raw contents of the settings file, or an empty dict when there is none."""
    path = path or default_config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Settings file {path} is not valid TOML ({exc}); fix or remove it.") from exc


def _coerce(raw: str) -> Any:
    """Interpret a command-line value the way TOML would, falling back to a plain string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def set_config_value(dotted_key: str, raw_value: str, path: Path | None = None) -> Path:
    """Set `section.field` in the settings file after checking the result is a valid configuration.

    The file is written 0600 because it may hold the Redis password.
    """
    path = path or default_config_path()
    data = read_config_file(path)
    keys = dotted_key.split(".")
    if not all(keys):
        raise ConfigError(f"'{dotted_key}' is not a setting name; use section.field, e.g. redis.url.")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"'{key}' is a value, not a section, in {path}.")
        node = child
    node[keys[-1]] = _coerce(raw_value)
    try:
        Settings.model_validate({k: v for k, v in data.items()})
    except ValidationError as exc:
        raise ConfigError(f"Not saved: {describe_validation_error(exc)}.") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        tomli_w.dump(data, fh)
    os.replace(tmp, path)
    return path


def public_view(settings: Settings) -> dict[str, Any]:
    """Settings as plain data for display, with secrets redacted."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    url = settings.redis.url
    data["redis"]["url"] = redact_url(url.get_secret_value()) if url else None
    data["node"]["token"] = "***" if settings.node.token else None
    return data
