"""Snapshot builders for the strategy tests (plain values in, frozen snapshot objects out)."""

from __future__ import annotations

from decimal import Decimal

from bot.domain import HOUR_MS, MINUTE_MS, MarketFilters, PairState, perp_symbol
from strategies.base import Fees, FundingPoint, LegMarket, Limits, MarketSnapshot, PairView, Snapshot

D = Decimal
NOW = 59_028 * 8 * HOUR_MS  # an 8h settlement instant (also on every 4h, 2h and 1h grid)
assert NOW % (8 * HOUR_MS) == 0


def filters(symbol: str, step: str = "0.001", min_qty: str = "0.001", min_notional: str = "5") -> MarketFilters:
    return MarketFilters(symbol, D("0.01"), D(step), D(min_qty), D(min_notional))


def leg(
    symbol: str,
    price: Decimal,
    *,
    spread_bps: str = "1",
    depth: str = "1000",
    levels: int = 5,
    fee: str = "0.0002",
    step: str = "0.001",
    min_qty: str = "0.001",
    min_notional: str = "5",
) -> LegMarket:
    half = price * D(spread_bps) / D(20_000)
    bid, ask = price - half, price + half
    per = D(depth) / levels
    tick = price / D(10_000)
    bids = tuple((bid - i * tick, per) for i in range(levels))
    asks = tuple((ask + i * tick, per) for i in range(levels))
    return LegMarket(filters(symbol, step, min_qty, min_notional), bid, ask, Fees(D("0.0002"), D(fee)), bids, asks)


def history(rate: Decimal, interval: int, hours: int = 72, now_ms: int = NOW) -> tuple[FundingPoint, ...]:
    """Settlements every ``interval`` hours over the last ``hours``, the newest at ``now_ms``."""
    n = hours // interval
    return tuple(FundingPoint(now_ms - k * interval * HOUR_MS, rate, interval) for k in range(n))


def market(
    symbol: str = "BTC/USDT",
    *,
    price: str = "50000",
    rate: str = "0.0005",
    predicted: str | None = None,
    interval: int = 8,
    next_ms: int | None = None,
    hist: tuple[FundingPoint, ...] | None = None,
    now_ms: int = NOW,
    **leg_kw: str,
) -> MarketSnapshot:
    p = D(price)
    r = D(rate)
    return MarketSnapshot(
        symbol=symbol,
        spot=leg(symbol, p, **leg_kw),
        perp=leg(perp_symbol(symbol), p, **leg_kw),
        funding_rate=r,
        predicted_rate=r if predicted is None else D(predicted),
        interval_hours=interval,
        next_funding_ms=now_ms + interval * HOUR_MS if next_ms is None else next_ms,
        history=history(r, interval, now_ms=now_ms) if hist is None else hist,
    )


def pair(symbol: str, spot: str, perp: str | None = None, state: PairState = PairState.OPEN) -> PairView:
    return PairView(symbol, state, D(spot), D(spot if perp is None else perp), entry_ms=NOW - 24 * HOUR_MS)


def snap(
    *markets: MarketSnapshot,
    pairs: tuple[PairView, ...] = (),
    capital: str = "100000",
    now_ms: int = NOW,
    limits: Limits | None = None,
) -> Snapshot:
    return Snapshot(now_ms, tuple(markets), pairs, D(capital), limits or Limits())


def minutes(n: int) -> int:
    return n * MINUTE_MS


def by_symbol(targets):
    return {t.symbol: t for t in targets}
