"""1-minute perp candles laid over the hourly replay, so minute collateral checks see the real path.

Inside a window covered by ``klines_1m`` files the perp price (and the mark price, for which no 1m data
exists: the perp close stands in, and the report says so) follows the minute candles, with the same
open -> extreme -> extreme -> close path inside each minute that ``bot.sim.source`` uses inside an hour.
Everywhere else every call goes to the wrapped source unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np

from bot.backtest.data import load_minute_closes
from bot.domain import MINUTE_MS
from bot.sim.source import CandleSeries, Kline, MarketDataSource, SourceSettlement

_OVERLAID = ("perp", "mark")


class MinuteSeries:
    """Dense 1m candles of one symbol over ``[t0, end)``; NaN rows are missing minutes."""

    def __init__(self, ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> None:
        self.t0 = int(ts[0])
        self.n = int((int(ts[-1]) - self.t0) // MINUTE_MS) + 1
        self.end_ms = self.t0 + self.n * MINUTE_MS
        idx = (ts - self.t0) // MINUTE_MS
        self.o, self.h, self.l, self.c = (np.full(self.n, np.nan) for _ in range(4))
        self.o[idx], self.h[idx], self.l[idx], self.c[idx] = o, h, lo, c

    def covers(self, t_ms: int) -> bool:
        k = (t_ms - self.t0) // MINUTE_MS
        return 0 <= k < self.n and not np.isnan(self.o[k])

    def _points(self, k: int) -> tuple[float, float, float, float]:
        o, c = float(self.o[k]), float(self.c[k])
        hi, lo = float(self.h[k]), float(self.l[k])
        return (o, lo, hi, c) if c >= o else (o, hi, lo, c)

    def price(self, t_ms: int) -> float:
        k = (t_ms - self.t0) // MINUTE_MS
        pts = self._points(k)
        x = (t_ms - self.t0 - k * MINUTE_MS) * 3.0 / MINUTE_MS
        seg = min(int(x), 2)
        return pts[seg] + (pts[seg + 1] - pts[seg]) * (x - seg)

    def range(self, start_ms: int, end_ms: int) -> tuple[float, float]:
        ka, kb = (start_ms - self.t0) // MINUTE_MS, (end_ms - self.t0) // MINUTE_MS
        values = [self.price(start_ms), self.price(end_ms)] if self.covers(end_ms) else [self.price(start_ms)]
        lo_k, hi_k = max(ka, 0), min(kb + 1, self.n)
        if hi_k > lo_k:
            values += [float(np.nanmin(self.l[lo_k:hi_k])), float(np.nanmax(self.h[lo_k:hi_k]))]
        return min(values), max(values)


class MinuteOverlay:
    """A ``MarketDataSource`` that answers perp and mark prices from 1m candles where they exist."""

    def __init__(self, base: MarketDataSource, minutes: dict[str, MinuteSeries]) -> None:
        self._base = base
        self._minutes = minutes

    @classmethod
    def from_files(
        cls, base: MarketDataSource, data_dir: Path, windows: dict[str, list[tuple[int, int]]]
    ) -> MinuteOverlay:
        minutes = {}
        for symbol, spans in windows.items():
            df = load_minute_closes(data_dir, symbol, min(a for a, _ in spans), max(b for _, b in spans))
            if not df.empty:
                cols = [df[c].to_numpy(np.float64) for c in ("open", "high", "low", "close")]
                minutes[symbol] = MinuteSeries(df["ts_ms"].to_numpy(np.int64), *cols)
        return cls(base, minutes)

    def minute_covered(self, symbol: str, t_ms: int) -> bool:
        m = self._minutes.get(symbol)
        return m is not None and m.covers(t_ms)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._base.symbols

    @property
    def start_ms(self) -> int:
        return self._base.start_ms

    @property
    def end_ms(self) -> int:
        return self._base.end_ms

    def has(self, kind: str, symbol: str) -> bool:
        return self._base.has(kind, symbol)

    def price(self, kind: str, symbol: str, t_ms: int) -> float | None:
        if kind in _OVERLAID and self.minute_covered(symbol, t_ms):
            return self._minutes[symbol].price(t_ms)
        return self._base.price(kind, symbol, t_ms)

    def price_range(self, kind: str, symbol: str, start_ms: int, end_ms: int) -> tuple[float, float] | None:
        m = self._minutes.get(symbol)
        if kind in _OVERLAID and m is not None and m.covers(start_ms) and m.covers(end_ms):
            return m.range(start_ms, end_ms)
        return self._base.price_range(kind, symbol, start_ms, end_ms)

    def settlements(self, symbol: str) -> Sequence[SourceSettlement]:
        return self._base.settlements(symbol)

    def settlements_between(self, symbol: str, after_ms: int, until_ms: int) -> list[SourceSettlement]:
        return self._base.settlements_between(symbol, after_ms, until_ms)

    def next_settlement(self, symbol: str, t_ms: int) -> SourceSettlement | None:
        return self._base.next_settlement(symbol, t_ms)

    def last_settlement(self, symbol: str, t_ms: int) -> SourceSettlement | None:
        return self._base.last_settlement(symbol, t_ms)

    def predicted_rate(self, symbol: str, t_ms: int) -> Decimal | None:
        return self._base.predicted_rate(symbol, t_ms)

    def listing_price(self, kind: str, symbol: str, t_ms: int) -> float | None:
        listing = getattr(self._base, "listing_price", None)  # optional: not every MarketDataSource has one
        return listing(kind, symbol, t_ms) if listing is not None else None

    def predicted_rates_at(self, symbol: str, times: np.ndarray) -> np.ndarray:
        return self._base.predicted_rates_at(symbol, times)

    def candles(self, kind: str, symbol: str) -> CandleSeries | None:
        """The base source's hourly candles (the minute candles only refine prices inside the windows)."""
        candles = getattr(self._base, "candles", None)  # optional: not every MarketDataSource has it
        return None if candles is None else candles(kind, symbol)

    def klines(self, kind: str, symbol: str, start_ms: int, end_ms: int, limit: int | None = None) -> list[Kline]:
        return self._base.klines(kind, symbol, start_ms, end_ms, limit)

    def __getattr__(self, name: str) -> object:
        # Anything else the simulator asks of its source (e.g. missing_hours) comes from the hourly replay.
        return getattr(self._base, name)
