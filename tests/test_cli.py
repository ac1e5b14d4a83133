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


def test_config_show_masks_the_database_password_and_the_webhook():
    env = {"FUNDBOT_DATABASE_URL": "postgresql+asyncpg://bob:dbpass77@127.0.0.1:5432/x",
           "FUNDBOT_ALERTS__WEBHOOK_URL": "https://hooks.example/T00/s3cr3t-token"}
    out = run("config", "show", env=env)
    assert out.returncode == 0, out.stderr
    assert "dbpass77" not in out.stdout and "s3cr3t-token" not in out.stdout
    assert "database_url = postgresql+asyncpg://bob:***@127.0.0.1:5432/x" in out.stdout
    out = run("config", "show", env={"FUNDBOT_DATABASE_URL": "postgresql+asyncpg://h/x?user=bob&password=s3cr3t"})
    assert "s3cr3t" not in out.stdout and "password=***" in out.stdout


def test_ccxt_request_logs_stay_out_even_at_debug():
    """ccxt logs each request's headers (X-MBX-APIKEY) and signed query at DEBUG."""
    import logging

    from bot.engine.cli import setup_logging

    root = logging.getLogger()
    saved = root.level, logging.getLogger("ccxt").level, logging.getLogger("apscheduler").level
    try:
        setup_logging("DEBUG")
        assert root.isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("ccxt.base.exchange").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(saved[0])
        logging.getLogger("ccxt").setLevel(saved[1])
        logging.getLogger("apscheduler").setLevel(saved[2])


def test_unusable_databases_and_missing_files_are_messages_not_tracebacks(tmp_path):
    bad_json = tmp_path / "emulator.json"
    bad_json.write_text("{bad")
    cases = [
        (["status", "--url", "notaurl"], 2, "the database URL is not one fundbot can use"),
        (["db", "upgrade", "--url", "notaurl"], 2, "the database URL is not one fundbot can use"),
        (["status", "--url", "postgresql+asyncpg://postgres@127.0.0.1:1/x"], 1, "connection refused"),
        (["status", "--url", "postgresql+asyncpg://u:pw@127.0.0.1:notaport/x"], 2, "not one fundbot can use"),
        (["status", "--url", "postgresql+asyncpg://u:pw@127.0.0.1:99999/x"], 2, "not a port number"),
        (["status", "--url", "postgresql+asyncpg://u@nosuchhost.invalid:5432/x"], 1, "cannot resolve the host"),
        (["run", "--connection-file", str(tmp_path / "missing.json")], 2, "No such file or directory"),
        (["run", "--connection-file", str(bad_json)], 2, "not a connection file written by `fundbot emulator`"),
        (["db", "upgrade", "--url", f"sqlite+aiosqlite:///{tmp_path}/l.db", "--revision", "bogus"], 2,
         "database migration: Can't locate revision"),
    ]
    for args, code, text in cases:
        out = run(*args, env={"FUNDBOT_DATA_DIR": str(tmp_path / "var"), "FUNDBOT_HTTP__ENABLED": "false"})
        assert out.returncode == code, (args, out.stderr)
        assert text in " ".join(out.stderr.split()), (args, out.stderr)
        assert "Traceback" not in out.stderr, args
