"""Settings: one pydantic-settings class (`Settings`), its sections, and the settings file.

`settings.py` holds the class and its precedence rules, `sections.py` one model per section, `paths.py`
where files live, `file.py` what `config set` / `config show` do. Import from here.
"""

from hivemind_app.config.file import public_view, read_config_file, redact_url, set_config_value
from hivemind_app.config.paths import default_config_path
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
from hivemind_app.config.settings import Settings, load_settings

__all__ = [
    "DiscoverySettings",
    "EmbeddingSettings",
    "HiveSettings",
    "ImportSettings",
    "InferSettings",
    "InjectSettings",
    "NodeSettings",
    "RedisSettings",
    "SearchSettings",
    "Settings",
    "StoreSettings",
    "TrainSettings",
    "default_config_path",
    "load_settings",
    "public_view",
    "read_config_file",
    "redact_url",
    "set_config_value",
]
