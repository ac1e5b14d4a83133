"""``fundbot run --live`` in maker style as a process against ``fundbot emulator`` (speed 600): SIGKILL while
a re-price's cancel is on the wire, then a restart: reconciliation cancels what the dead process left
resting and settles every intent; no order is sent twice and none is left resting (no orphan)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.domain import Leg, PairState
from bot.emulator.server import EmulatorProcess
from bot.ledger.models import EventKind, IntentKind
from bot.ledger.repository import Ledger
from engine import test_daemon
from engine.test_daemon import SYMBOLS, assert_no_duplicates_and_no_silent_naked_leg, wait_for

pytestmark = pytest.mark.slow  # two daemon processes and an emulator process: tens of seconds

emulator_factory = test_daemon.emulator_factory  # the fixture: an emulator subprocess at speed 600

# Simulated seconds: a pause of 0.05 real s is 30 s at speed 600; an hour of working is 6 real s.
MAKER_ENV = {
    "FUNDBOT_EXECUTION__STYLE": "maker",
    "FUNDBOT_EXECUTION__MAKER_POLL_S": "0.05",
    "FUNDBOT_EXECUTION__MAKER_TIMEOUT_S": "3600",
    "FUNDBOT_EXECUTION__MAKER_MAX_REPRICES": "50",
}


def start_daemon(tmp_path: Path, db: str, conn: Path, name: str, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {
        **os.environ,
        "FUNDBOT_DATABASE_URL": db,
        "FUNDBOT_DATA_DIR": str(tmp_path),
        "FUNDBOT_SYMBOLS": SYMBOLS,
        "FUNDBOT_HTTP__ENABLED": "false",
        "FUNDBOT_LOG_LEVEL": "WARNING",
        "FUNDBOT_ENGINE__SHUTDOWN_TIMEOUT_S": "10",
        **extra_env,
    }
    log = (tmp_path / f"{name}.log").open("wb")
    cmd = [sys.executable, "-m", "bot.cli", "run", "--live", "--connection-file", str(conn)]
    return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)


async def test_sigkill_between_a_reprice_and_its_cancel_then_restart_leaves_no_duplicate_or_orphan(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    slow_cancels = [
        {"endpoint": endpoint, "kind": "latency", "latency_ms": 3000, "count": 1}
        for endpoint in ("DELETE /api/v3/order", "DELETE /fapi/v1/order")
    ]
    emu = emulator_factory(slow_cancels)
    db = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    async with await Ledger.open(db, migrate=True) as ledger:
        first = start_daemon(tmp_path, db, emu.connection_file, "first", MAKER_ENV)
        try:

            async def reprice_cancel_in_flight() -> str | None:
                """A maker order's cancel intent is written and not settled: the re-price is on the wire."""
                for i in await ledger.open_intents([IntentKind.CANCEL]):
                    if "-m" in i.client_id:
                        return i.client_id
                return None

            cancel = await wait_for(reprice_cancel_in_flight, first, "a re-price's cancel", tmp_path / "first.log")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        in_flight = [i.client_id for i in await ledger.open_intents()]
        assert cancel in in_flight
        second = start_daemon(tmp_path, db, emu.connection_file, "second", MAKER_ENV)
        try:

            async def settled() -> bool:
                pairs = await ledger.list_pairs([PairState.OPEN, PairState.CLOSED, PairState.QUARANTINED])
                midway = await ledger.list_pairs([PairState.OPENING, PairState.REBALANCING, PairState.CLOSING])
                reconciled = await ledger.events(kinds=[EventKind.RECONCILE])
                return bool(pairs) and bool(reconciled) and not midway and not await ledger.open_intents()

            await wait_for(settled, second, "reconciliation after the restart", tmp_path / "second.log")
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
        finally:
            if second.poll() is None:
                second.kill()
        for cid in in_flight:  # every intent the dead process left is settled, once
            intent = await ledger.get_intent(cid)
            assert intent is not None and intent.status in ("done", "failed"), (cid, intent)
        await assert_no_duplicates_and_no_silent_naked_leg(ledger, emu)
        await assert_nothing_resting(emu)


async def assert_nothing_resting(emu: EmulatorProcess) -> None:
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    venue = CcxtVenue(build_client(emu.connection, pro=True, tls=True, rateLimit=1), account="check")
    try:
        for symbol in SYMBOLS.split(","):
            for leg in (Leg.SPOT, Leg.PERP):
                assert await venue.fetch_open_orders(symbol, leg) == [], (symbol, leg)
    finally:
        await venue.close()
