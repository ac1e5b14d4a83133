"""SimVenue hot-path figures: funding reads, market orders and balance reads per second (prints only)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from bot.domain import HOUR_MS, Leg, Side
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimExchange
from bot.sim.source import RandomWalk
from bot.venues.base import OrderRequest
from bot.venues.sim_venue import SimVenue

N = 2000


async def main() -> None:
    source = RandomWalk(seed=1, symbols=("BTCUSDT", "ETHUSDT"), hours=24 * 60)
    clock = ManualClock(source.start_ms + HOUR_MS)
    venue = SimVenue(SimExchange(source, clock, balances={"USDT": Decimal(10**9)}))
    await venue.transfer("USDT", Decimal(10**8), "spot", "futures")
    figures = {}
    t = time.perf_counter()
    for _ in range(N):
        clock.advance(60_000)
        await venue.fetch_funding(["BTC/USDT", "ETH/USDT"])
    figures["fetch_funding (2 symbols, 1 sim-minute step each)"] = N / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(N):
        leg, side = (Leg.SPOT, Side.BUY) if i % 2 else (Leg.PERP, Side.SELL)
        await venue.create_order(OrderRequest(f"b{i}", "ETH/USDT", leg, side, "market", Decimal("0.01")))
    figures["create_order market"] = N / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(N):
        await venue.fetch_balances()
    figures["fetch_balances"] = N / (time.perf_counter() - t)
    for name, rate in figures.items():
        print(f"{name:55s} {rate:10.0f} /s")


if __name__ == "__main__":
    asyncio.run(main())
