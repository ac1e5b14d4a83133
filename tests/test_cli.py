"""The console script as a user runs it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot import __version__
from bot.cli import COMMAND_MODULES

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def run_all(*commands: tuple[list[str], dict | None]) -> list[subprocess.CompletedProcess]:
    """``run`` of each ``(args, env)``, the processes side by side: each spends seconds importing the
    command line, and independent commands need not wait for one another."""
    procs = [
        (
            args,
            subprocess.Popen(
                [sys.executable, "-c", "from bot.cli import main; main()", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {})},
            ),
        )
        for args, env in commands
    ]
    done = []
    try:
        for args, proc in procs:
            out, err = proc.communicate(timeout=120)
            done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


@pytest.mark.slow
def test_help_lists_every_registered_command():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert "config" in out.stdout
    for mod in COMMAND_MODULES:
        assert mod.split(".")[1] in mod  # sanity: registered modules live in bot/<pkg>/cli.py


@pytest.mark.slow
def test_bad_config_exits_2_with_field_name(tmp_path):
    out = run("config", "show", env={"FUNDBOT_MODE": "paper"})
    assert out.returncode == 2
    assert "FUNDBOT_MODE" in out.stderr


@pytest.mark.slow
def test_config_show_masks_secret():
    out = run("config", "show", env={"FUNDBOT_API_KEY": "k-123-secret"})
    assert out.returncode == 0, out.stderr
    assert "k-123-secret" not in out.stdout
    assert "api_key = **********" in out.stdout


@pytest.mark.slow
def test_config_show_masks_the_database_password_and_the_webhook():
    env = {
        "FUNDBOT_DATABASE_URL": "postgresql+asyncpg://bob:dbpass77@127.0.0.1:5432/x",
        "FUNDBOT_ALERTS__WEBHOOK_URL": "https://hooks.example/T00/s3cr3t-token",
    }
    query = {"FUNDBOT_DATABASE_URL": "postgresql+asyncpg://h/x?user=bob&password=s3cr3t"}
    out, out_query = run_all((["config", "show"], env), (["config", "show"], query))
    assert out.returncode == 0, out.stderr
    assert "dbpass77" not in out.stdout and "s3cr3t-token" not in out.stdout
    assert "database_url = postgresql+asyncpg://bob:***@127.0.0.1:5432/x" in out.stdout
    assert "s3cr3t" not in out_query.stdout and "password=***" in out_query.stdout


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.timeout(300)  # 76 s on a loaded 2-core machine
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
        (
            ["run", "--wait-for-emulator", "0", "--connection-file", str(tmp_path / "missing.json")],
            2,
            "--connection-file: " + str(tmp_path / "missing.json") + ": No such file or directory",
        ),
        (
            ["run", "--wait-for-emulator", "0", "--connection-file", str(bad_json)],
            2,
            "not a connection file written by `fundbot emulator`",
        ),
        (
            ["db", "upgrade", "--url", f"sqlite+aiosqlite:///{tmp_path}/l.db", "--revision", "bogus"],
            2,
            "database migration: Can't locate revision",
        ),
    ]
    env = {"FUNDBOT_DATA_DIR": str(tmp_path / "var"), "FUNDBOT_HTTP__ENABLED": "false"}
    outs = run_all(*((args, env) for args, _, _ in cases))
    for (args, code, text), out in zip(cases, outs, strict=True):
        assert out.returncode == code, (args, out.stderr)
        assert text in " ".join(out.stderr.split()), (args, out.stderr)
        assert "Traceback" not in out.stderr, args


@pytest.mark.slow
def test_version_prints_without_a_command():
    out = run("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"fundbot {__version__}"


@pytest.mark.slow
@pytest.mark.timeout(300)  # 39 s on a loaded 2-core machine
def test_the_example_env_copied_as_it_is_runs_a_dry_run(tmp_path):
    """`cp .env.example .env` made every command exit 2 (the empty capital limit), then `Is a directory: .`
    (the empty connection file). Here: the copy, `config show`, and a short dry run against the emulator."""
    import json
    import signal
    import socket
    import time
    import urllib.request

    from bot.emulator.server import start_emulator_subprocess

    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FUNDBOT_") or k.startswith("FUNDBOT_TEST_")}
    shown = subprocess.run(
        [sys.executable, "-m", "bot.cli", "config", "show"], cwd=tmp_path, env=clean, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "connection_file = None" in shown.stdout
    assert "resolved database url = sqlite+aiosqlite:///var/fundbot-dryrun.db" in shown.stdout

    with socket.socket() as s:  # the example's 8787 may be taken on a shared machine; the variable wins over .env
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    emu = start_emulator_subprocess(
        tmp_path / "emulator.json",
        "--speed",
        "600",
        "--start",
        "2025-07-21",
        "--symbols",
        "BTC/USDT,ETH/USDT,SOL/USDT,XRP/USDT,DOGE/USDT,BNB/USDT",
    )
    log = (tmp_path / "run.log").open("wb")
    cmd = [sys.executable, "-m", "bot.cli", "run", "--dry-run", "--connection-file", str(emu.connection_file)]
    env = {**clean, "FUNDBOT_HTTP__PORT": str(port)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    health = answer.status, json.loads(answer.read())
                    break
            except OSError:
                time.sleep(0.2)
        assert health is not None and health[0] == 200, (tmp_path / "run.log").read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        emu.stop()
    tail = subprocess.run(
        [sys.executable, "-m", "bot.cli", "tail", "--kind", "decision"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
    )
    assert tail.returncode == 0, tail.stderr
    assert "BTC/USDT" in tail.stdout and (tmp_path / "var" / "fundbot-dryrun.db").exists()
