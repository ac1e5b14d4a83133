"""Market data for the simulation: prices at any instant, funding settlements, klines.

Prices come from hourly candles. Inside an hour the price follows a deterministic path through the
candle: open -> low -> high -> close for an up candle (close >= open), open -> high -> low -> close for a
down candle, linear between the four points (at 0, 1/3, 2/3 and 1 of the hour). So the intrahour
extremes are reached and a liquidation check over an interval sees them. Hours without a candle are gaps:
every lookup inside one returns None (nothing is forward-filled).

Predicted funding rate (what premiumIndex calls ``lastFundingRate`` before a settlement): Binance's rule
over the premium of the replayed prices so far in the interval (bot/sim/premium.py), never the coming
settlement's real rate. The settled rate at each settlement is the real history's.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import numpy as np

from bot.domain import HOUR_MS
from bot.sim.history import load_symbol
from bot.sim.markets import funding_rule
from bot.sim.premium import predicted_rates

PRICE_KINDS = ("spot", "perp", "mark", "index")
_RATE_QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class SourceSettlement:
    """One funding settlement. ``interval_hours`` is the spacing to the previous settlement."""

    symbol: str
    ts_ms: int
    rate: Decimal
    interval_hours: int
    mark_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Kline:
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class MarketDataSource(Protocol):
    """What SimExchange needs from a market-data provider. Floats inside; Decimal at the sim boundary."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def start_ms(self) -> int: ...

    @property
    def end_ms(self) -> int: ...

    def has(self, kind: str, symbol: str) -> bool: ...

    def price(self, kind: str, symbol: str, t_ms: int) -> float | None: ...

    def price_range(self, kind: str, symbol: str, start_ms: int, end_ms: int) -> tuple[float, float] | None: ...

    def settlements(self, symbol: str) -> Sequence[SourceSettlement]: ...

    def settlements_between(self, symbol: str, after_ms: int, until_ms: int) -> list[SourceSettlement]: ...

    def next_settlement(self, symbol: str, t_ms: int) -> SourceSettlement | None: ...

    def last_settlement(self, symbol: str, t_ms: int) -> SourceSettlement | None: ...

    def predicted_rate(self, symbol: str, t_ms: int) -> Decimal | None: ...

    def predicted_rates_at(self, symbol: str, times: np.ndarray) -> np.ndarray: ...

    def klines(self, kind: str, symbol: str, start_ms: int, end_ms: int, limit: int | None = None) -> list[Kline]: ...


def _doubles(values: np.ndarray) -> array[float]:
    out = array("d")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return out


class CandleSeries:
    """Hourly candles on a dense grid (NaN rows are gaps) with O(1) lookups."""

    def __init__(
        self, ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray | None = None
    ) -> None:
        if len(ts) == 0:
            raise ValueError("empty candle series")
        self.t0 = int(ts[0])
        n = int((int(ts[-1]) - self.t0) // HOUR_MS) + 1
        idx = ((ts.astype(np.int64) - self.t0) // HOUR_MS).astype(np.int64)
        self.n = n
        self.end_ms = self.t0 + n * HOUR_MS
        self.open = np.full(n, np.nan)
        self.high = np.full(n, np.nan)
        self.low = np.full(n, np.nan)
        self.close = np.full(n, np.nan)
        self.volume = np.full(n, np.nan)
        self.open[idx], self.high[idx], self.low[idx], self.close[idx] = o, h, lo, c
        if v is not None:
            self.volume[idx] = v
        # Flat C doubles for scalar indexing (several times faster than on numpy arrays; 8 bytes a value
        # where a list of floats takes 32), and the numpy arrays become views of them, not copies.
        self._o, self._h, self._l, self._c = (_doubles(a) for a in (self.open, self.high, self.low, self.close))
        self.open, self.high, self.low, self.close = (
            np.frombuffer(d, dtype=np.float64) for d in (self._o, self._h, self._l, self._c)
        )

    def _points(self, k: int) -> tuple[float, float, float, float] | None:
        o = self._o[k]
        if o != o:  # NaN: a gap
            return None
        c = self._c[k]
        if c >= o:
            return (o, self._l[k], self._h[k], c)
        return (o, self._h[k], self._l[k], c)

    def price(self, t_ms: int) -> float | None:
        k = (t_ms - self.t0) // HOUR_MS
        if k < 0 or k >= self.n:
            return None
        pts = self._points(k)
        if pts is None:
            return None
        x = (t_ms - self.t0 - k * HOUR_MS) * 3.0 / HOUR_MS
        seg = min(int(x), 2)
        a = pts[seg]
        return a + (pts[seg + 1] - a) * (x - seg)

    def price_range(self, start_ms: int, end_ms: int) -> tuple[float, float] | None:
        """Min and max of the path over ``[start_ms, end_ms]`` (gaps ignored); None if all gap."""
        if end_ms < start_ms:
            start_ms, end_ms = end_ms, start_ms
        values: list[float] = []
        for t in (start_ms, end_ms):
            p = self.price(t)
            if p is not None:
                values.append(p)
        ka = max((start_ms - self.t0) // HOUR_MS, -1)
        kb = min((end_ms - self.t0) // HOUR_MS, self.n)
        third = HOUR_MS / 3.0
        for k in {ka, kb}:
            if 0 <= k < self.n:
                pts = self._points(k)
                if pts is None:
                    continue
                base = self.t0 + k * HOUR_MS
                for j in (0, 1, 2):
                    if start_ms < base + j * third < end_ms:
                        values.append(pts[j])
        lo_k, hi_k = max(ka + 1, 0), min(kb, self.n)
        if hi_k > lo_k:
            lows, highs = self.low[lo_k:hi_k], self.high[lo_k:hi_k]
            if not np.all(np.isnan(lows)):
                values.append(float(np.nanmin(lows)))
                values.append(float(np.nanmax(highs)))
        if not values:
            return None
        return (min(values), max(values))

    def klines(self, start_ms: int, end_ms: int, limit: int | None = None) -> list[Kline]:
        """Complete candles with open time in ``[start_ms, end_ms)``, oldest first, gaps skipped."""
        ka = max(-(-(start_ms - self.t0) // HOUR_MS), 0)
        kb = min(-(-(end_ms - self.t0) // HOUR_MS), self.n)
        out: list[Kline] = []
        for k in range(ka, kb):
            if self._o[k] != self._o[k]:
                continue
            out.append(
                Kline(self.t0 + k * HOUR_MS, self._o[k], self._h[k], self._l[k], self._c[k], float(self.volume[k]))
            )
            if limit is not None and len(out) >= limit:
                break
        return out

    def missing_hours(self) -> np.ndarray:
        return self.t0 + np.flatnonzero(np.isnan(self.open)).astype(np.int64) * HOUR_MS


class CandleSource:
    """Shared machinery of HistoryReplay and RandomWalk: per-symbol candle series and settlements."""

    def __init__(
        self,
        series: dict[tuple[str, str], CandleSeries],
        settlements: dict[str, list[SourceSettlement]],
        start_ms: int,
        end_ms: int,
    ) -> None:
        self._series = series
        self._settlements = settlements
        self._settle_ts = {s: [x.ts_ms for x in rows] for s, rows in settlements.items()}
        self._symbols = tuple(sorted(settlements))
        self._start_ms = start_ms
        self._end_ms = end_ms
        self._pred: dict[str, tuple[int, np.ndarray]] = {}

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def start_ms(self) -> int:
        return self._start_ms

    @property
    def end_ms(self) -> int:
        return self._end_ms

    def candles(self, kind: str, symbol: str) -> CandleSeries | None:
        """The hourly candles of one price kind (the index is the spot's), None when the data has none:
        the whole series at once, for readers that work on arrays (the backtest's fast path)."""
        if kind not in PRICE_KINDS:
            raise ValueError(f"price kind must be one of {PRICE_KINDS}, got {kind!r}")
        return self._series.get(("spot" if kind == "index" else kind, symbol))

    def has(self, kind: str, symbol: str) -> bool:
        return self.candles(kind, symbol) is not None

    def price(self, kind: str, symbol: str, t_ms: int) -> float | None:
        s = self.candles(kind, symbol)
        return None if s is None else s.price(t_ms)

    def price_range(self, kind: str, symbol: str, start_ms: int, end_ms: int) -> tuple[float, float] | None:
        s = self.candles(kind, symbol)
        return None if s is None else s.price_range(start_ms, end_ms)

    def listing_price(self, kind: str, symbol: str, t_ms: int) -> float | None:
        """The price at ``t_ms``, else the first one after it (a contract listed later: its filters are the
        ones of its listing); None without any."""
        s = self.candles(kind, symbol)
        if s is None:
            return None
        p = s.price(t_ms)
        if p is not None:
            return p
        k = max((t_ms - s.t0) // HOUR_MS, 0)
        opens = s.open[k:]
        known = np.flatnonzero(~np.isnan(opens))
        return float(opens[known[0]]) if len(known) else None

    def klines(self, kind: str, symbol: str, start_ms: int, end_ms: int, limit: int | None = None) -> list[Kline]:
        s = self.candles(kind, symbol)
        return [] if s is None else s.klines(start_ms, end_ms, limit)

    def missing_hours(self, kind: str, symbol: str) -> np.ndarray:
        s = self.candles(kind, symbol)
        return np.array([], dtype=np.int64) if s is None else s.missing_hours()

    def settlements(self, symbol: str) -> Sequence[SourceSettlement]:
        return self._settlements.get(symbol, [])

    def settlements_between(self, symbol: str, after_ms: int, until_ms: int) -> list[SourceSettlement]:
        ts = self._settle_ts.get(symbol)
        if not ts:
            return []
        i = bisect.bisect_right(ts, after_ms)
        j = bisect.bisect_right(ts, until_ms)
        return self._settlements[symbol][i:j]

    def next_settlement(self, symbol: str, t_ms: int) -> SourceSettlement | None:
        ts = self._settle_ts.get(symbol) or []
        i = bisect.bisect_right(ts, t_ms)
        return self._settlements[symbol][i] if i < len(ts) else None

    def last_settlement(self, symbol: str, t_ms: int) -> SourceSettlement | None:
        ts = self._settle_ts.get(symbol) or []
        i = bisect.bisect_right(ts, t_ms)
        return self._settlements[symbol][i - 1] if i > 0 else None

    def _predicted(self, symbol: str) -> tuple[int, np.ndarray]:
        """(first hour, rate per hour) of ``symbol``'s predicted rate, computed once (bot/sim/premium.py)."""
        hit = self._pred.get(symbol)
        if hit is None:
            perp, spot = self._series.get(("perp", symbol)), self._series.get(("spot", symbol))
            sts = self._settlements.get(symbol, [])
            starts = [x.t0 for x in (perp, spot) if x is not None] + [sts[0].ts_ms if sts else self._start_ms]
            ends = [x.end_ms for x in (perp, spot) if x is not None]
            ends.append(sts[-1].ts_ms + HOUR_MS if sts else self._end_ms)
            t0 = (min(starts) // HOUR_MS) * HOUR_MS
            n = int((max(ends) - t0) // HOUR_MS) + 1
            grid = t0 + np.arange(n, dtype=np.int64) * HOUR_MS
            hit = (
                t0,
                predicted_rates(
                    t0,
                    _opens_at(perp, grid),
                    _opens_at(spot, grid),
                    np.array([x.ts_ms for x in sts], dtype=np.int64),
                    np.array([x.interval_hours for x in sts], dtype=np.float64),
                    funding_rule(symbol),
                ),
            )
            self._pred[symbol] = hit
        return hit

    def predicted_rates_at(self, symbol: str, times: np.ndarray) -> np.ndarray:
        """The predicted rate (float) at each of ``times`` (ms); NaN outside the symbol's data."""
        t0, rates = self._predicted(symbol)
        k = (np.asarray(times, dtype=np.int64) - t0) // HOUR_MS
        ok = (k >= 0) & (k < len(rates))
        out = np.full(len(k), np.nan)
        out[ok] = rates[k[ok]]
        return out

    def predicted_rate(self, symbol: str, t_ms: int) -> Decimal | None:
        """Binance's rule over the premium observed so far in the interval (module docstring)."""
        if symbol not in self._settlements:
            return None
        t0, rates = self._predicted(symbol)
        k = (t_ms - t0) // HOUR_MS
        if k < 0 or k >= len(rates):
            return None
        return Decimal(repr(float(rates[k]))).quantize(_RATE_QUANTUM)


def _opens_at(series: CandleSeries | None, grid: np.ndarray) -> np.ndarray:
    """The candle opens (prices at each whole hour) of ``series`` on ``grid``; NaN where there is none."""
    out = np.full(len(grid), np.nan)
    if series is None:
        return out
    k = (grid - series.t0) // HOUR_MS
    ok = (k >= 0) & (k < series.n)
    out[ok] = series.open[k[ok]]
    return out


class HistoryReplay(CandleSource):
    """Real Binance history (a folder in ``bot.sim.history``'s layout, or the bundle) replayed deterministically."""

    def __init__(
        self, data_dir: Path, symbols: Sequence[str], start_ms: int | None = None, end_ms: int | None = None
    ) -> None:
        series: dict[tuple[str, str], CandleSeries] = {}
        settlements: dict[str, list[SourceSettlement]] = {}
        self.mark_from_perp: dict[str, bool] = {}
        lo, hi = [], []
        for symbol in symbols:
            hist = load_symbol(Path(data_dir), symbol, start_ms, end_ms)
            self.mark_from_perp[symbol] = hist.mark_from_perp
            for kind, df in (("spot", hist.spot), ("perp", hist.perp), ("mark", hist.mark)):
                if df is None or df.empty:
                    continue
                series[(kind, symbol)] = CandleSeries(
                    df["ts_ms"].to_numpy(np.int64),
                    df["open"].to_numpy(),
                    df["high"].to_numpy(),
                    df["low"].to_numpy(),
                    df["close"].to_numpy(),
                    df["volume"].to_numpy(),
                )
                lo.append(int(df["ts_ms"].iloc[0]))
                hi.append(int(df["ts_ms"].iloc[-1]) + HOUR_MS)
            f = hist.funding
            marks = f["mark_price"].tolist()
            settlements[symbol] = [
                SourceSettlement(symbol, int(ts), Decimal(text), int(iv), None if m != m else Decimal(repr(m)))
                for ts, text, iv, m in zip(
                    f["ts_ms"].tolist(), f["rate_text"].tolist(), f["interval_hours"].tolist(), marks, strict=True
                )
            ]
        if not lo:
            raise ValueError(f"no klines for {list(symbols)} in {data_dir}")
        super().__init__(
            series,
            settlements,
            start_ms if start_ms is not None else min(lo),
            end_ms if end_ms is not None else max(hi),
        )


class RandomWalk(CandleSource):
    """Seeded synthetic market for tests: geometric random walk candles (spot), perp = spot x (1 + basis)
    with an AR(1) basis, mark = perp, and an AR(1) funding rate settled on each symbol's own interval.

    ``funding_intervals`` maps symbol -> hours (default: 8 h for the first symbol, 4 h for the second,
    1 h for the third, 8 h after); ``interval_changes`` maps symbol -> [(from_ms, hours), ...].
    ``rate_mean`` and ``rate_vol`` are per 8 h and scaled to each interval.
    """

    def __init__(
        self,
        seed: int,
        symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
        start_ms: int = 1_767_225_600_000,
        hours: int = 24 * 30,
        start_prices: dict[str, float] | None = None,
        drift: float = 0.0,
        vol: float = 0.6,
        basis_mean: float = -0.0003,
        basis_vol: float = 0.0002,
        funding_intervals: dict[str, int] | None = None,
        interval_changes: dict[str, list[tuple[int, int]]] | None = None,
        rate_mean: float = 0.0001,
        rate_vol: float = 0.00005,
        rate_phi: float = 0.9,
        rate_cap: float = 0.003,
        substeps: int = 6,
    ) -> None:
        rng = np.random.default_rng(seed)
        start = (start_ms // HOUR_MS) * HOUR_MS
        ts = start + np.arange(hours, dtype=np.int64) * HOUR_MS
        defaults = {
            "BTCUSDT": 60_000.0,
            "ETHUSDT": 3_000.0,
            "SOLUSDT": 150.0,
            "XRPUSDT": 0.6,
            "DOGEUSDT": 0.15,
            "BNBUSDT": 600.0,
            "LTCUSDT": 80.0,
            "ADAUSDT": 0.5,
        }
        base_intervals = (8, 4, 1)
        series: dict[tuple[str, str], CandleSeries] = {}
        settlements: dict[str, list[SourceSettlement]] = {}
        dt = 1.0 / (24 * 365 * substeps)
        for n, symbol in enumerate(symbols):
            p0 = (start_prices or {}).get(symbol, defaults.get(symbol, 100.0))
            steps = rng.normal((drift - 0.5 * vol**2) * dt, vol * math.sqrt(dt), size=(hours, substeps))
            path = p0 * np.exp(np.cumsum(steps.ravel())).reshape(hours, substeps)
            opens = np.concatenate(([p0], path[:-1, -1]))
            closes = path[:, -1]
            highs = np.maximum(path.max(axis=1), opens)
            lows = np.minimum(path.min(axis=1), opens)
            vols = rng.uniform(0.5, 1.5, size=hours) * 1_000_000.0 / p0
            series[("spot", symbol)] = CandleSeries(ts, opens, highs, lows, closes, vols)
            basis = np.empty(hours)
            b = basis_mean
            shocks = rng.normal(0.0, basis_vol, size=hours)
            for i in range(hours):
                b = basis_mean + 0.8 * (b - basis_mean) + shocks[i]
                basis[i] = b
            f = 1.0 + basis
            perp = CandleSeries(ts, opens * f, highs * f, lows * f, closes * f, vols)
            series[("perp", symbol)] = perp
            series[("mark", symbol)] = CandleSeries(ts, opens * f, highs * f, lows * f, closes * f, None)
            base_iv = (funding_intervals or {}).get(symbol, base_intervals[n] if n < len(base_intervals) else 8)
            changes = sorted((interval_changes or {}).get(symbol, []))
            settlements[symbol] = self._schedule(
                rng, symbol, start, start + hours * HOUR_MS, base_iv, changes, rate_mean, rate_vol, rate_phi, rate_cap
            )
        super().__init__(series, settlements, start, start + hours * HOUR_MS)

    @staticmethod
    def _schedule(
        rng: np.random.Generator,
        symbol: str,
        start: int,
        end: int,
        base_iv: int,
        changes: list[tuple[int, int]],
        mean: float,
        vol: float,
        phi: float,
        cap: float,
    ) -> list[SourceSettlement]:
        def interval_at(t: int) -> int:
            iv = base_iv
            for from_ms, hours in changes:
                if from_ms <= t:
                    iv = hours
            return iv

        iv = interval_at(start)
        t = (start // (iv * HOUR_MS) + 1) * iv * HOUR_MS
        prev_t = t - iv * HOUR_MS
        x = mean
        out = []
        while t < end:
            x = mean + phi * (x - mean) + rng.normal(0.0, vol)
            hours = (t - prev_t) // HOUR_MS
            rate = max(-cap, min(cap, x * hours / 8.0))
            out.append(SourceSettlement(symbol, t, Decimal(repr(round(rate, 8))), int(hours)))
            prev_t = t
            t += interval_at(t) * HOUR_MS
        return out
