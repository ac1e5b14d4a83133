from __future__ import annotations

from decimal import Decimal

import pytest

from bot.sim.clock import ManualClock
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.source import RandomWalk

START = 1_767_225_600_000  # 2026-01-01 00:00 UTC


@pytest.fixture
def walk() -> RandomWalk:
    return RandomWalk(seed=7, symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"), start_ms=START, hours=24 * 5)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START + 60_000)


@pytest.fixture
def ex(walk: RandomWalk, clock: ManualClock) -> SimExchange:
    return SimExchange(
        walk, clock, SimConfig(), balances={"USDT": Decimal(100_000)}, futures_balances={"USDT": Decimal(10_000)}
    )
