"""``fundbot emulator`` as a separate process: connection file, one real call, clean SIGTERM exit."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.emulator.server import start_emulator_subprocess
from bot.venues.ccxt_factory import build_client

pytestmark = pytest.mark.slow  # every test here is over ~2 s


async def test_subprocess_serves_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    conn_file = tmp_path / "emulator.json"
    proc = start_emulator_subprocess(
        conn_file, "--symbols", "BTC/USDT", "--speed", "60", "--start", "2025-02-01", "--seed", "7"
    )
    try:
        conn = proc.connection
        assert stat.S_IMODE(conn_file.stat().st_mode) == 0o600  # it holds the API secret
        assert conn["speed"] == 60 and conn["symbols"] == ["BTCUSDT"]
        assert conn["tls"]["rest"]["fapiPrivate"].startswith("https://demo-fapi@127.0.0.1:")
        assert conn["tls"]["rest"]["private"].startswith("https://demo-api@127.0.0.1:")
        assert "/stream" in conn["http"]["ws"]["spot"] and "/stream" not in conn["http"]["ws"]["linear"]
        ex = build_client(conn_file, rateLimit=1)
        try:
            ticker = await ex.fetch_ticker("BTC/USDT")
            assert ticker["last"] > 0
            assert (await ex.fetch_balance())["USDT"]["free"] == 100_000
            assert abs((await ex.fetch_time()) - conn["sim_start_ms"]) < 3_600_000  # simulated time
        finally:
            await ex.close()
    finally:
        code = proc.stop()
    assert code == 0


@pytest.mark.timeout(300)  # 32 s on a loaded 2-core machine
def test_a_clock_file_carries_the_replay_on_across_restarts(tmp_path: Path) -> None:
    """Under docker compose a restarted emulator replayed from its --start again: the offline daemon's paper
    account (written hours of simulated time later) found the market back in its past."""
    import time

    conn_file, clock = tmp_path / "emulator.json", tmp_path / "clock.json"
    args = ("--symbols", "BTC/USDT", "--speed", "3600", "--start", "2025-02-01", "--clock-file", str(clock))
    first = start_emulator_subprocess(conn_file, *args)
    assert first.stop() == 0
    time.sleep(1.0)
    second = start_emulator_subprocess(conn_file, *args)
    try:
        ran = second.connection["wall_start_ms"] - first.connection["wall_start_ms"]
        moved = second.connection["sim_start_ms"] - first.connection["sim_start_ms"]
        assert moved >= 1000 * 3600 and abs(moved - ran * 3600) < 2000 * 3600  # where the clock is by now
    finally:
        assert second.stop() == 0
    clock.write_text("{not json")
    from bot.emulator.server import resume_clock

    with pytest.raises(ValueError, match="not a clock file written by `fundbot emulator --clock-file`"):
        resume_clock(clock, None, 1.0)
    assert resume_clock(tmp_path / "none.json", 123, 1.0) == 123


async def test_an_earlier_runs_connection_file_is_gone_before_the_data_loads(tmp_path: Path) -> None:
    """A stale emulator.json passed the compose healthcheck while the new emulator was still loading."""
    from bot.emulator.server import run_emulator

    stale = tmp_path / "emulator.json"
    stale.write_text('{"version": 1, "http_port": 1}')
    with pytest.raises(ValueError, match="outside the data"):  # fails at the data, after the unlink
        async with run_emulator(symbols=["BTC/USDT"], start_ms=0, connection_file=stale):
            pass
    assert not stale.exists()
