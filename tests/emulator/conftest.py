"""Fixtures: an in-process emulator on a ManualClock and real ccxt clients talking to it over TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.emulator.server import EmulatorHandle, default_start_ms, run_emulator
from bot.sim.clock import ManualClock
from bot.venues.ccxt_factory import build_client

SYMBOLS = ("BTCUSDT", "ETHUSDT")
DAY_MS = 86_400_000


@pytest.fixture(scope="session")
def start_ms() -> int:
    """Ten days into the bundled data: 24 h tickers and funding history exist."""
    return default_start_ms(SYMBOLS, None, False, 0) + 10 * DAY_MS


@pytest.fixture
async def emu(start_ms: int) -> AsyncIterator[EmulatorHandle]:
    async with run_emulator(symbols=SYMBOLS, clock=ManualClock(start_ms), tick_ms=50) as handle:
        yield handle


@pytest.fixture
async def ex(emu: EmulatorHandle) -> AsyncIterator[Any]:
    client = build_client(emu.connection, pro=True, tls=True, rateLimit=1)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def advance(emu: EmulatorHandle):
    """``await advance(ms)``: move the ManualClock and run one emulator step (sim + pushes)."""

    async def _advance(ms: int) -> None:
        clock = emu.clock
        assert isinstance(clock, ManualClock)
        clock.advance(ms)
        await emu.tick()

    return _advance
