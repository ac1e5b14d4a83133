"""An engine over the real ccxt against the in-process emulator on a ManualClock.

Tests call the engine's job functions directly and move simulated time with ``advance``; every venue
call is a real ccxt request over TLS loopback. The emulator replays the bundled history from a week of
strong, broad positive funding (2025-07-21), so the carry strategy wants to enter at once.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bot.config import Mode, Settings, load_settings
from bot.domain import HOUR_MS, MINUTE_MS, Leg, PairState
from bot.engine.core import Engine
from bot.engine.daemon import assemble_engine
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock
from tests.ledger_files import open_ledger

START_MS = int(datetime(2025, 7, 21, 0, 5, tzinfo=UTC).timestamp() * 1000)
SYMBOLS = ["SOL/USDT", "XRP/USDT"]
BALANCE = Decimal(50_000)


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def engine_settings(db_url: str, symbols: list[str] = SYMBOLS, **sections: Any) -> Settings:
    """Settings for a test engine: fast execution retries, no HTTP, the given overrides per section."""
    execution = {"order_timeout_s": 0.2, "poll_interval_s": 0.02, "retry_backoff_s": 0, **sections.pop("execution", {})}
    treasury = {"backoff_s": 0, **sections.pop("treasury", {})}
    return load_settings(
        mode=Mode.LIVE,
        database_url=db_url,
        symbols=symbols,
        execution=execution,
        treasury=treasury,
        http={"enabled": False},
        **sections,
    )


@dataclass
class World:
    handle: Any
    clock: ManualClock
    venue: Any
    ledger: Ledger
    engine: Engine
    settings: Settings

    @property
    def sim(self) -> Any:
        return self.handle.sim

    def now(self) -> int:
        return self.clock.now_ms()

    async def advance(self, ms: int) -> None:
        """Move simulated time and let the emulator settle funding, fill resting orders and push."""
        self.clock.advance(ms)
        await self.handle.tick()

    async def run_for(self, ms: int, step_ms: int = 10 * MINUTE_MS, *jobs: str) -> None:
        """Advance ``ms`` in steps, running the named engine jobs after each step."""
        end = self.now() + ms
        while self.now() < end:
            await self.advance(min(step_ms, end - self.now()))
            for job in jobs:
                await getattr(self.engine, job)()

    async def pairs(self, *states: PairState) -> list[Any]:
        return await self.ledger.list_pairs(states or None, venue=self.venue.name)

    async def position(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(spot coin balance, perp short size) as the venue reports them."""
        base = symbol.split("/")[0]
        balances = await self.venue.fetch_balances()
        spot = sum((b.total for b in balances if b.wallet == "spot" and b.asset == base), Decimal(0))
        positions = await self.venue.fetch_positions([symbol])
        perp = -positions[symbol].qty if symbol in positions else Decimal(0)
        return spot, perp

    async def step(self, symbol: str) -> Decimal:
        markets = self.engine.builder.markets[symbol]
        return max(markets.spot.step_size, markets.perp.step_size)


async def open_world(
    stack: AsyncExitStack,
    db_url: str,
    *,
    scenario: dict[str, Any] | None = None,
    symbols: list[str] = SYMBOLS,
    start_ms: int = START_MS,
    balance: Decimal = BALANCE,
    start: bool = True,
    **sections: Any,
) -> World:
    from bot.emulator.server import run_emulator
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    clock = ManualClock(start_ms)
    handle = await stack.enter_async_context(
        run_emulator(symbols=symbols, clock=clock, scenario=scenario, balance=balance, tick_ms=50)
    )
    client = build_client(handle.connection, pro=True, tls=True, rateLimit=1)
    venue = CcxtVenue(client, time_resync_s=0)
    stack.push_async_callback(venue.close)
    ledger = await open_ledger(db_url)
    stack.push_async_callback(ledger.close)
    settings = engine_settings(db_url, symbols, **sections)
    engine = assemble_engine(settings, venue, ledger, clock.now_ms, sleep=no_sleep)
    world = World(handle, clock, venue, ledger, engine, settings)
    if start:
        await engine.start()
    return world


def leg_of(side: str) -> Leg:
    return Leg.SPOT if side == "spot" else Leg.PERP


__all__ = ["HOUR_MS", "MINUTE_MS", "START_MS", "SYMBOLS", "World", "engine_settings", "open_world"]
