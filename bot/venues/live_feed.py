"""``LiveFeed``: a MarketDataSource the paper account pushes live prices and funding into.

``SimExchange`` reads prices and funding settlements from a ``MarketDataSource``; backtests give it
recorded history, the dry-run paper account gives it this feed. Prices are step functions of what was
pushed (the last value at or before ``t``). Funding: settled rates pushed from the live history, plus a
*pending* settlement at the live next funding time carrying the latest predicted rate, so the simulated
account is paid at the rate Binance showed last before the instant (corrected by history when known).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from decimal import Decimal

from bot.domain import HOUR_MS
from bot.sim.source import PRICE_KINDS, Kline, SourceSettlement

_FAR_FUTURE_MS = 2**62
_MAX_POINTS = 20_000


class _Series:
    """Time-ordered (t, price) points, bounded in length."""

    __slots__ = ("prices", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.prices: list[float] = []

    def push(self, t_ms: int, price: float) -> None:
        if self.times and t_ms < self.times[-1]:
            t_ms = self.times[-1]  # never rewrite the past: late data counts from the latest instant
        if self.times and t_ms == self.times[-1]:
            self.prices[-1] = price
        else:
            self.times.append(t_ms)
            self.prices.append(price)
        if len(self.times) > _MAX_POINTS:
            del self.times[: len(self.times) - _MAX_POINTS]
            del self.prices[: len(self.prices) - _MAX_POINTS]

    def at(self, t_ms: int) -> float | None:
        if not self.times:
            return None
        i = bisect.bisect_right(self.times, t_ms)
        return self.prices[i - 1] if i > 0 else self.prices[0]

    def range(self, a: int, b: int) -> tuple[float, float] | None:
        if not self.times:
            return None
        lo_i, hi_i = bisect.bisect_left(self.times, a), bisect.bisect_right(self.times, b)
        values = [*self.prices[lo_i:hi_i]]
        for t in (a, b):
            p = self.at(t)
            if p is not None:
                values.append(p)
        return (min(values), max(values))


class LiveFeed:
    """MarketDataSource over pushed live data; ``symbols`` are Binance ids (``BTCUSDT``)."""

    def __init__(self, symbols: Sequence[str], start_ms: int) -> None:
        self._symbols = tuple(symbols)
        self._start_ms = int(start_ms)
        self._series = {(k, s): _Series() for k in PRICE_KINDS for s in self._symbols}
        self._settled: dict[str, list[SourceSettlement]] = {s: [] for s in self._symbols}
        self._pending: dict[str, SourceSettlement] = {}
        # symbol -> the settlement after which others were missed (pushes further apart than an interval)
        self.missed_after: dict[str, int] = {}
        self._predicted: dict[str, Decimal] = {}
        self.latest_ms = int(start_ms)  # newest instant any price was pushed for
        self.version = 0  # bumped on every push, so a reader knows its cached prices are stale

    # ---- pushing
    def push_price(self, kind: str, symbol: str, t_ms: int, price: Decimal | float) -> None:
        self._series[(kind, symbol)].push(int(t_ms), float(price))
        self.latest_ms = max(self.latest_ms, int(t_ms))
        self.version += 1

    def push_funding(
        self, symbol: str, t_ms: int, predicted_rate: Decimal, next_funding_ms: int, interval_hours: int | None
    ) -> None:
        """Latest premium index: the predicted rate becomes the pending settlement at ``next_funding_ms``."""
        self._predicted[symbol] = predicted_rate
        self.version += 1
        old = self._pending.get(symbol)
        if old is not None and old.ts_ms < next_funding_ms:
            # the instant passed: keep it (at its last predicted rate) until history replaces it
            self.push_settlement(symbol, old.ts_ms, old.rate, old.interval_hours)
            interval_ms = (interval_hours or old.interval_hours or 0) * HOUR_MS
            if interval_ms == 0 or next_funding_ms - old.ts_ms > interval_ms:
                # more than one interval since the last push: settlements in between are unknown here;
                # the paper venue reads them from the live history before its clock passes them
                self.missed_after[symbol] = min(self.missed_after.get(symbol, old.ts_ms), old.ts_ms)
        if next_funding_ms > 0:
            self._pending[symbol] = SourceSettlement(symbol, int(next_funding_ms), predicted_rate, interval_hours or 0)

    def push_settlement(self, symbol: str, ts_ms: int, rate: Decimal, interval_hours: int | None) -> None:
        """A settled rate from the live history (replaces a pending one at the same instant)."""
        rows = self._settled[symbol]
        times = [r.ts_ms for r in rows]
        i = bisect.bisect_left(times, ts_ms)
        row = SourceSettlement(symbol, int(ts_ms), rate, interval_hours or 0)
        if i < len(rows) and rows[i].ts_ms == ts_ms:
            rows[i] = row
        else:
            rows.insert(i, row)
        pending = self._pending.get(symbol)
        if pending is not None and pending.ts_ms == ts_ms:
            del self._pending[symbol]

    # ---- MarketDataSource
    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def start_ms(self) -> int:
        return self._start_ms

    @property
    def end_ms(self) -> int:
        return _FAR_FUTURE_MS

    def has(self, kind: str, symbol: str) -> bool:
        return (kind, symbol) in self._series

    def price(self, kind: str, symbol: str, t_ms: int) -> float | None:
        s = self._series.get((kind, symbol))
        return None if s is None else s.at(t_ms)

    def price_range(self, kind: str, symbol: str, start_ms: int, end_ms: int) -> tuple[float, float] | None:
        s = self._series.get((kind, symbol))
        if s is None:
            return None
        return s.range(min(start_ms, end_ms), max(start_ms, end_ms))

    def _all(self, symbol: str) -> list[SourceSettlement]:
        rows = list(self._settled.get(symbol, ()))
        pending = self._pending.get(symbol)
        if pending is not None and (not rows or pending.ts_ms > rows[-1].ts_ms):
            rows.append(pending)
        return rows

    def settlements(self, symbol: str) -> Sequence[SourceSettlement]:
        return self._all(symbol)

    def settlements_between(self, symbol: str, after_ms: int, until_ms: int) -> list[SourceSettlement]:
        return [r for r in self._all(symbol) if after_ms < r.ts_ms <= until_ms]

    def next_settlement(self, symbol: str, t_ms: int) -> SourceSettlement | None:
        return next((r for r in self._all(symbol) if r.ts_ms > t_ms), None)

    def last_settlement(self, symbol: str, t_ms: int) -> SourceSettlement | None:
        rows = [r for r in self._all(symbol) if r.ts_ms <= t_ms]
        return rows[-1] if rows else None

    def predicted_rate(self, symbol: str, t_ms: int) -> Decimal | None:
        return self._predicted.get(symbol)

    def klines(self, kind: str, symbol: str, start_ms: int, end_ms: int, limit: int | None = None) -> list[Kline]:
        return []  # the paper account needs no candles; charts read the live venue
