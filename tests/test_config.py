from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hivemind_app.config import load_settings, public_view, redact_url, set_config_value
from hivemind_app.errors import ConfigError


def test_settings_come_from_the_toml_file_named_by_hivemind_config(tmp_path: Path) -> None:
    Path(os.environ["HIVEMIND_CONFIG"]).write_text("[embedding]\nbatch_size = 7\n[search]\ndefault_limit = 3\n")
    settings = load_settings()
    assert settings.embedding.batch_size == 7
    assert settings.search.default_limit == 3


def test_environment_variables_override_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(os.environ["HIVEMIND_CONFIG"]).write_text("[search]\ndefault_limit = 3\n")
    monkeypatch.setenv("HIVEMIND_SEARCH__DEFAULT_LIMIT", "5")
    assert load_settings().search.default_limit == 5


def test_data_dir_follows_the_environment(isolated_env: Path) -> None:
    assert load_settings().data_dir == isolated_env


def test_malformed_toml_names_the_file() -> None:
    path = Path(os.environ["HIVEMIND_CONFIG"])
    path.write_text("[search\n")
    with pytest.raises(ConfigError, match=f"{path}.*not valid TOML"):
        load_settings()


def test_a_wrong_type_names_the_setting() -> None:
    Path(os.environ["HIVEMIND_CONFIG"]).write_text('[search]\ndefault_limit = "many"\n')
    with pytest.raises(ConfigError, match=r"search\.default_limit"):
        load_settings()


def test_config_set_writes_a_private_file_and_refuses_invalid_values() -> None:
    path = set_config_value("redis.url", "redis://:s3cret@nas.local:6379/0")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_settings().redis.url is not None
    before = path.read_text()
    with pytest.raises(ConfigError, match="Not saved"):
        set_config_value("search.default_limit", "0")
    with pytest.raises(ConfigError):
        set_config_value("nosuch.field", "1")
    assert path.read_text() == before


def test_secrets_are_redacted_from_every_view() -> None:
    set_config_value("redis.url", "redis://alice:s3cret@nas.local:6379/0")
    view = public_view(load_settings())
    assert "s3cret" not in str(view)
    assert view["redis"]["url"] == "redis://alice:***@nas.local:6379/0"
    assert redact_url("redis://nas.local:6379") == "redis://nas.local:6379"


def test_the_sync_retention_settings_come_from_the_environment_and_refuse_a_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HIVEMIND_REDIS__TOMBSTONE_KEEP_S", "86400")
    monkeypatch.setenv("HIVEMIND_REDIS__NODE_KEEP_S", "3600")
    monkeypatch.setenv("HIVEMIND_REDIS__FEED_MAX_LEN", "500")
    redis = load_settings().redis
    assert redis.tombstone_keep_s == 86400 and redis.feed_max_len == 500 and redis.node_keep_s == 3600
    monkeypatch.setenv("HIVEMIND_REDIS__NODE_KEEP_S", "90000")  # longer than the tombstones are kept
    with pytest.raises(ConfigError, match=r"tombstone_keep_s .* must be at least redis.node_keep_s"):
        load_settings()
    monkeypatch.setenv("HIVEMIND_REDIS__NODE_KEEP_S", "3600")
    monkeypatch.setenv("HIVEMIND_REDIS__LEARNING_KEEP_S", "0")
    with pytest.raises(ConfigError, match="learning_keep_s"):
        load_settings()


def test_the_old_node_token_is_refused_with_what_replaced_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVEMIND_NODE__TOKEN", "s3cret-bearer")
    with pytest.raises(ConfigError, match="replaced by the hive key") as caught:
        load_settings()
    assert "`hivemind-app hive join` on the others (it asks for the join code)" in str(caught.value)
    assert "s3cret-bearer" not in str(caught.value)


def test_the_hive_key_file_defaults_to_beside_the_settings_file(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().hive_key_path == Path(os.environ["HIVEMIND_CONFIG"]).parent / "hive.key"
    monkeypatch.setenv("HIVEMIND_HIVE__KEY_FILE", "~/keys/hive.key")
    assert load_settings().hive_key_path == Path.home() / "keys" / "hive.key"
