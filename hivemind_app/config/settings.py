"""Settings: the one pydantic-settings class, read from a TOML file and `HIVEMIND_*` environment variables.

Precedence, highest first: values passed in code, environment variables (`HIVEMIND_EMBEDDING__MODEL`,
nested sections joined by a double underscore), the TOML file, the defaults below. The TOML file lives in
the platform's config directory unless `HIVEMIND_CONFIG` names another path; the data directory likewise
comes from platformdirs unless `HIVEMIND_DATA_DIR` (or `data_dir` in the file) says otherwise.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from hivemind_app.config.paths import default_config_path, default_data_dir
from hivemind_app.config.sections import (
    DiscoverySettings,
    EmbeddingSettings,
    HiveSettings,
    ImportSettings,
    InferSettings,
    InjectSettings,
    NodeSettings,
    RedisSettings,
    SearchSettings,
    StoreSettings,
    TrainSettings,
)
from hivemind_app.errors import ConfigError


class Settings(BaseSettings):
    """Everything configurable about one hivemind-app node."""

    model_config = SettingsConfigDict(
        env_prefix="HIVEMIND_",
        env_nested_delimiter="__",
        extra="forbid",
        use_attribute_docstrings=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    """Directory holding the SQLite store and caches (created 0700); `~` is the user's home."""

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        # the hook spool (claude/spool.py) expands `~` too: both must name the same directory
        return value.expanduser()

    node: NodeSettings = Field(default_factory=NodeSettings)
    """This node's identity."""

    hive: HiveSettings = Field(default_factory=HiveSettings)
    """The hive key: what proves this node belongs to its hive."""

    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    """The embedding model used for vector search."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    """The local SQLite + sqlite-vec store."""

    inject: InjectSettings = Field(default_factory=InjectSettings)
    """What the Claude Code hooks add to a session: how much, and how relevant."""

    search: SearchSettings = Field(default_factory=SearchSettings)
    """Recall behaviour."""

    importer: ImportSettings = Field(default_factory=ImportSettings)
    """`hivemind-app import`: which files, and how they are chunked."""

    redis: RedisSettings = Field(default_factory=RedisSettings)
    """The hub. Leave `url` unset to run on the local store alone."""

    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    """Finding peers on the LAN."""

    infer: InferSettings = Field(default_factory=InferSettings)
    """The local LLM (infer role)."""

    train: TrainSettings = Field(default_factory=TrainSettings)
    """The learning loop (train role): from the learning queue to a LoRA adapter."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=default_config_path())
        return (init_settings, env_settings, toml)

    @property
    def hive_key_path(self) -> Path:
        """The hive key file: `hive.key_file`, else `hive.key` beside the settings file."""
        return self.hive.key_file or default_config_path().parent / "hive.key"

    @property
    def db_path(self) -> Path:
        return self.data_dir / self.store.filename


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning any problem into one `ConfigError` that names the file or variable."""
    path = default_config_path()
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Settings file {path} is not valid TOML ({exc}); fix or remove it.") from exc
    except ValidationError as exc:
        raise ConfigError(
            f"Invalid setting ({describe_validation_error(exc)}); check {path} and HIVEMIND_* variables."
        ) from exc
