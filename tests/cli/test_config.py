"""`config` as a user runs it, and a broken settings file named in the error of any command."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.runner import assert_one_line_error, run


def test_a_broken_settings_file_is_named_in_the_error() -> None:
    Path(os.environ["HIVEMIND_CONFIG"]).write_text("[search\n")
    assert_one_line_error(run("status"), 78, "not valid TOML")


def test_config_set_and_show_keep_the_password_out_of_sight() -> None:
    proc = run("config", "set", "redis.url", "redis://:hunter2@nas.local:6379/0")
    assert proc.returncode == 0 and "hunter2" not in proc.stdout
    shown = run("config", "show")
    assert "hunter2" not in shown.stdout and json.loads(shown.stdout)["redis"]["url"].startswith("redis://:***@")
    assert_one_line_error(run("config", "set", "search.default_limit", "0"), 78, "search.default_limit")
