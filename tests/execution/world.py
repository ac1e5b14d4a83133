"""A small trading world for tests: real SimExchange (seeded RandomWalk, ManualClock) behind SimVenue,
plus ``FaultyVenue``, which injects venue failures around the real SimVenue (never a ccxt mock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.config import ExecutionConfig, TreasuryConfig
from bot.execution import Executor
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.source import RandomWalk
from bot.treasury import Treasury
from bot.venues.sim_venue import SimVenue

START = 1_767_225_600_000
SYMBOL = "BTC/USDT"
D = Decimal

FAST = ExecutionConfig(
    order_timeout_s=0.05,
    poll_interval_s=0.01,
    retry_backoff_s=0,
    max_hedge_retries=3,
    breaker_failures=3,
    breaker_cooldown_s=600,
)
TREASURY = TreasuryConfig(backoff_s=0, min_transfer=D("10"))


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


class Crash(BaseException):
    """The process dies: not an Exception, so nothing in the bot catches it."""


@dataclass
class Fault:
    exc: BaseException
    times: int = 1
    after_call: bool = False  # True: the real call happens first, then the error (answer lost)
    when: Callable[[tuple[Any, ...]], bool] = lambda args: True


class FaultyVenue:
    """Delegates to a real SimVenue; ``fail(method, ...)`` makes the next calls of ``method`` raise."""

    def __init__(self, inner: SimVenue) -> None:
        self.inner = inner
        self.faults: dict[str, list[Fault]] = {}
        self.calls: dict[str, int] = {}
        self.hooks: dict[str, Callable[[], None]] = {}

    def fail(
        self,
        method: str,
        exc: BaseException,
        times: int = 1,
        *,
        after_call: bool = False,
        when: Callable[[tuple[Any, ...]], bool] = lambda args: True,
    ) -> None:
        self.faults.setdefault(method, []).append(Fault(exc, times, after_call, when))

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not asyncio.iscoroutinefunction(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            fault = next((f for f in self.faults.get(name, []) if f.times > 0 and f.when(args)), None)
            if fault is not None and not fault.after_call:
                fault.times -= 1
                raise fault.exc
            result = await target(*args, **kwargs)
            if name in self.hooks:
                self.hooks[name]()
            if fault is not None:
                fault.times -= 1
                raise fault.exc
            return result

        return call


@dataclass
class World:
    clock: ManualClock
    sim: SimExchange
    venue: Any
    ledger: Ledger
    executors: list[Executor] = field(default_factory=list)

    def now(self) -> int:
        return self.clock.now_ms()

    def executor(self, config: ExecutionConfig = FAST, funder: Any = None) -> Executor:
        return Executor(self.venue, self.ledger, self.now, config, funder=funder, sleep=no_sleep)

    def treasury(self, config: TreasuryConfig = TREASURY, reducer: Any = None) -> Treasury:
        return Treasury(self.venue, self.ledger, config, self.now, reducer=reducer, sleep=no_sleep)

    def sim_orders(self, market: str) -> list[Any]:
        return self.sim.order_history(market)


def make_world(
    ledger: Ledger, spot_usdt: str = "20000", futures_usdt: str = "0", seed: int = 7, market: str = "BTCUSDT"
) -> World:
    clock = ManualClock(START + 60_000)
    walk = RandomWalk(seed=seed, symbols=(market,), start_ms=START, hours=24 * 3, vol=0.3)
    sim = SimExchange(
        walk,
        clock,
        SimConfig(),
        balances={"USDT": D(spot_usdt)},
        futures_balances={"USDT": D(futures_usdt)} if D(futures_usdt) else None,
    )
    venue = FaultyVenue(SimVenue(sim))
    return World(clock, sim, venue, ledger)
