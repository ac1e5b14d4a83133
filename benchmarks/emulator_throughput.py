"""Print how fast the real ccxt can talk to the in-process emulator over TLS loopback.

Run: .venv/bin/python benchmarks/emulator_throughput.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import time

from bot.emulator.server import default_start_ms, run_emulator
from bot.sim.clock import ManualClock
from bot.venues.ccxt_factory import build_client


async def main(n: int) -> None:
    symbols = ("BTCUSDT", "ETHUSDT")
    start = default_start_ms(symbols, None, False, 0) + 10 * 86_400_000
    async with run_emulator(symbols=symbols, clock=ManualClock(start)) as handle:
        ex = build_client(handle.connection, rateLimit=1)
        try:
            await ex.load_markets()
            for label, call in (
                ("fetch_ticker spot", lambda: ex.fetch_ticker("BTC/USDT")),
                ("fetch_order_book perp", lambda: ex.fetch_order_book("BTC/USDT:USDT", 20)),
                ("fetch_balance spot (signed)", lambda: ex.fetch_balance()),
            ):
                t0 = time.perf_counter()
                for _ in range(n):
                    await call()
                dt = time.perf_counter() - t0
                print(f"{label:30s} {n / dt:8.1f} req/s  ({dt / n * 1000:.2f} ms each)")
            await ex.transfer("USDT", 10_000, "spot", "swap")
            t0 = time.perf_counter()
            for _ in range(n // 2):
                await ex.create_order("BTC/USDT:USDT", "market", "sell", 0.001)
                await ex.create_order("BTC/USDT:USDT", "market", "buy", 0.001)
            dt = time.perf_counter() - t0
            print(f"{'perp market orders':30s} {n / dt:8.1f} req/s  ({dt / n * 1000:.2f} ms each)")
        finally:
            await ex.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
