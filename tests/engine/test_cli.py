"""`fundbot run` start-up failures: a clear message and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.emulator.connection import ConnectionInfo, write_connection_file
from bot.emulator.tls import generate_tls_files

pytestmark = pytest.mark.slow  # every test here is over ~2 s


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "FUNDBOT_DATA_DIR": str(tmp_path / "var"), "FUNDBOT_HTTP__ENABLED": "false", **env},
    )


def _connection_file(tmp_path: Path, port: int) -> Path:
    tls = generate_tls_files(tmp_path / "tls")
    info = ConnectionInfo(
        host="127.0.0.1",
        http_port=port,
        https_port=port,
        api_key="k" * 64,
        secret="s" * 64,
        ca_file=str(tls.ca_cert),
        sim_start_ms=1_753_056_000_000,
        wall_start_ms=1_753_056_000_000,
        speed=1.0,
        symbols=("BTCUSDT",),
        pid=0,
    )
    return write_connection_file(info, tmp_path / "emulator.json")


def test_unreachable_venue_at_start_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as server:  # listens (so the file is live), then drops every connection
        server.bind(("127.0.0.1", 0))
        server.listen()
        conn = _connection_file(tmp_path, server.getsockname()[1])
        server_thread = threading.Thread(target=_drop_connections, args=(server,), daemon=True)
        server_thread.start()
        out = _run(tmp_path, "--live", "--connection-file", str(conn), FUNDBOT_ENGINE__START_RETRY_S="2")
    assert out.returncode == 1, out.stderr
    assert "cannot reach the venue at start" in out.stderr
    assert "kept failing at start" in out.stderr  # retried for the start budget first
    assert "Traceback" not in out.stderr
    assert "s" * 64 not in out.stderr and "k" * 64 not in out.stderr  # no secret in the message


def _drop_connections(server: socket.socket) -> None:
    while True:
        try:
            client, _ = server.accept()
        except OSError:
            return
        client.close()


def test_a_connection_file_left_by_an_earlier_emulator_is_not_trusted(tmp_path: Path) -> None:
    """On a second `docker compose up` the old emulator.json in the volume named ports of the previous
    run: the daemon failed on them. A file whose emulator does not listen is waited for, then named."""
    conn = _connection_file(tmp_path, _closed_port())
    out = _run(tmp_path, "--live", "--wait-for-emulator", "1", "--connection-file", str(conn))
    assert out.returncode == 2, out.stderr
    text = " ".join(out.stderr.split())
    assert "waiting up to 1 s for the emulator" in text
    assert "names an emulator that is not listening on 127.0.0.1:" in text and "an earlier run?" in text
    assert "Traceback" not in out.stderr and "s" * 64 not in out.stderr


def test_live_without_keys_is_refused(tmp_path: Path) -> None:
    out = _run(tmp_path, "--live", FUNDBOT_API_KEY="", FUNDBOT_API_SECRET="")
    assert out.returncode == 2
    assert "live mode needs FUNDBOT_API_KEY and FUNDBOT_API_SECRET" in out.stderr


def test_control_reaches_the_live_ledger_and_never_creates_one(tmp_path: Path) -> None:
    """A daemon started with `run --live` keeps var/fundbot.db while FUNDBOT_MODE says dry-run: `control`
    wrote to a new var/fundbot-dryrun.db, said it had worked, and the daemon never saw the switch."""
    import asyncio

    from bot.ledger.repository import Ledger

    var = tmp_path / "var"
    var.mkdir()
    live_db = f"sqlite+aiosqlite:///{(var / 'fundbot.db').as_posix()}"

    async def create() -> None:
        async with await Ledger.open(live_db):
            pass

    asyncio.run(create())

    def control(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "from bot.cli import main; main()", "control", "close-only", "on", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "FUNDBOT_DATA_DIR": str(var), "FUNDBOT_MODE": "dry-run"},
        )

    out = control()
    assert out.returncode == 2 and "nothing was switched" in out.stderr and "add --live" in out.stderr
    assert not (var / "fundbot-dryrun.db").exists()
    out = control("--live")
    assert out.returncode == 0, out.stderr

    async def switches() -> list[str]:
        async with await Ledger.open(live_db, migrate=False) as ledger:
            return [e.message for e in await ledger.events()]

    assert "operator set close-only on" in asyncio.run(switches())
