"""The index's knobs (store/ann/config.py) and turning it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivemind_app.config import Settings
from hivemind_app.store.ann import AnnConfig
from tests.store.ann.helpers import Store, clustered


def test_an_unknown_index_dtype_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="dtype must be one of f32, f16, i8"):
        AnnConfig(dtype="f64")


def test_settings_turn_the_index_off(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVEMIND_SEARCH__ANN", "false")
    monkeypatch.setenv("HIVEMIND_SEARCH__ANN_MIN_VECTORS", "5")
    settings = Settings()
    assert settings.search.ann is False and settings.search.ann_min_vectors == 5


def test_an_exact_space_without_an_index_is_reported_off_when_disabled(path: Path) -> None:
    s = Store(path, enabled=False)
    s.put([f"note {i}" for i in range(100)], clustered(100))
    assert s.search(clustered(100)[4], k=1) == ["note 4"]
    assert [st.state for st in s.memories.index_status()] == ["off"]
    s.close()
