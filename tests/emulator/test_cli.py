"""``fundbot emulator`` as a separate process: connection file, one real call, clean SIGTERM exit."""

from __future__ import annotations

import stat
from pathlib import Path

from bot.emulator.server import start_emulator_subprocess
from bot.venues.ccxt_factory import build_client


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
