"""Venue fixtures: the same market (seeded random walk, manual clock) behind CcxtVenue and SimVenue.

``venue_env`` is parametrised over both implementations so every behaviour test proves they agree:
CcxtVenue runs the real ccxt 4.5.90 against the in-process emulator over TLS loopback (production error
classes), SimVenue calls the same kind of SimExchange directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from bot.domain import HOUR_MS
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimExchange
from bot.sim.source import RandomWalk

SYMBOLS = ("BTCUSDT", "ETHUSDT")
PAIRS = ["BTC/USDT", "ETH/USDT"]
SEED = 1
START_MS = 1_767_225_600_000 + HOUR_MS  # one hour into the random walk
BALANCE = Decimal(10_000)


@dataclass
class VenueEnv:
    """A venue plus the handles a test needs to move simulated time."""

    kind: str
    venue: Any
    clock: ManualClock
    sim: SimExchange
    handle: Any = None

    async def advance(self, ms: int) -> None:
        """Move simulated time (settlements, resting fills) and let the exchange process it."""
        self.clock.advance(ms)
        if self.handle is not None:
            await self.handle.tick()
        else:
            self.sim.step()


def make_sim(clock: ManualClock) -> SimExchange:
    source = RandomWalk(seed=SEED, symbols=SYMBOLS, start_ms=START_MS)
    return SimExchange(source, clock, symbols=list(SYMBOLS), balances={"USDT": BALANCE})


async def open_env(kind: str, stack: Any, **emulator_kwargs: Any) -> VenueEnv:
    clock = ManualClock(START_MS)
    if kind == "sim":
        from bot.venues.sim_venue import SimVenue

        sim = make_sim(clock)
        return VenueEnv(kind, SimVenue(sim), clock, sim)
    from bot.emulator.server import run_emulator
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    handle = await stack.enter_async_context(
        run_emulator(symbols=SYMBOLS, clock=clock, random_walk=True, seed=SEED, balance=BALANCE, **emulator_kwargs)
    )
    client = build_client(handle.connection, pro=True, tls=True, rateLimit=1)
    venue = CcxtVenue(client, time_resync_s=0)  # the emulator's clock is manual: always ask it
    stack.push_async_callback(venue.close)
    return VenueEnv(kind, venue, clock, handle.sim, handle)


@pytest.fixture(params=["ccxt", "sim"])
async def venue_env(request: pytest.FixtureRequest) -> AsyncIterator[VenueEnv]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        yield await open_env(request.param, stack)


@pytest.fixture
async def ccxt_env() -> AsyncIterator[VenueEnv]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        yield await open_env("ccxt", stack)
