"""Time FundingCarry.evaluate on a 30-symbol snapshot with 72h of history (prints ms per call).

Run: .venv/bin/python benchmarks/bench_strategy.py
"""

from __future__ import annotations

import time
from decimal import Decimal as D

from bot.domain import HOUR_MS, MarketFilters, PairState, perp_symbol
from strategies.base import Fees, FundingPoint, LegMarket, MarketSnapshot, PairView, Snapshot
from strategies.funding_carry import FundingCarry

NOW = 59_028 * 8 * HOUR_MS


def leg(symbol: str, price: D) -> LegMarket:
    f = MarketFilters(symbol, D("0.01"), D("0.001"), D("0.001"), D(5))
    bids = tuple((price - i, D(10)) for i in range(20))
    asks = tuple((price + 1 + i, D(10)) for i in range(20))
    return LegMarket(f, price, price + 1, Fees(D("0.0002"), D("0.0004")), bids, asks)


def market(i: int) -> MarketSnapshot:
    sym, interval, rate = f"S{i}/USDT", (1, 4, 8)[i % 3], D(i % 9 + 1) / 10_000
    hist = tuple(FundingPoint(NOW - k * interval * HOUR_MS, rate, interval) for k in range(72 // interval))
    price = D(1000 + i)
    return MarketSnapshot(
        sym, leg(sym, price), leg(perp_symbol(sym), price), rate, rate, interval, NOW + interval * HOUR_MS, hist
    )


def main() -> None:
    pairs = tuple(PairView(f"S{i}/USDT", PairState.OPEN, D(1), D(1)) for i in range(3))
    snapshot = Snapshot(NOW, tuple(market(i) for i in range(30)), pairs, D(1_000_000))
    strategy = FundingCarry()
    strategy.evaluate(snapshot)
    n = 50
    start = time.perf_counter()
    for _ in range(n):
        strategy.evaluate(snapshot)
    ms = (time.perf_counter() - start) / n * 1000
    print(f"FundingCarry.evaluate: {ms:.1f} ms per call (30 symbols, 72h history, 3 held pairs)")


if __name__ == "__main__":
    main()
