"""The console script as a user runs it."""

import os
import subprocess
import sys

from bot.cli import COMMAND_MODULES


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_help_lists_every_registered_command():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert "config" in out.stdout
    for mod in COMMAND_MODULES:
        assert mod.split(".")[1] in mod  # sanity: registered modules live in bot/<pkg>/cli.py


def test_bad_config_exits_2_with_field_name(tmp_path):
    out = run("config", "show", env={"FUNDBOT_MODE": "paper"})
    assert out.returncode == 2
    assert "FUNDBOT_MODE" in out.stderr


def test_config_show_masks_secret():
    out = run("config", "show", env={"FUNDBOT_API_KEY": "k-123-secret"})
    assert out.returncode == 0, out.stderr
    assert "k-123-secret" not in out.stdout
    assert "api_key = **********" in out.stdout
