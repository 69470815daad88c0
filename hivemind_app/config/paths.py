"""Where the settings file and the data directory live (platformdirs, or the HIVEMIND_* overrides)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "hivemind-app"
CONFIG_ENV = "HIVEMIND_CONFIG"


def default_config_path() -> Path:
    """The settings file: `$HIVEMIND_CONFIG`, else `config.toml` in the platform's config directory."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_converted_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "converted-models"
