"""The replayed market as float arrays on the backtest grid, computed once with numpy.

What the simulator and the strategy see at each grid hour, for the fast-forward (``bot.backtest.fastforward``):
prices at the hour (the candle's open, which is where the replay's price path starts), the worst mark inside
the hour before it, the settlements and the predicted rate. Read through the source's public array API
(``candles``, ``settlements``, ``predicted_rates_at``). ``quiet_view`` hands the strategy's part of it to the
strategy's own quiet-hours bound (strategies/quiet.py); nothing strategy-specific is computed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bot.domain import HOUR_MS
from bot.engine.snapshot import HISTORY_SETTLEMENTS
from bot.sim.source import CandleSeries, SourceSettlement
from strategies.quiet import BookShape, MarketHours, QuietView


@dataclass
class SymbolPaths:
    """One symbol (Binance id) on the grid. NaN where the replay has no price."""

    spot: np.ndarray  # forward-filled: the simulator values a coin at its last known price in a gap
    perp: np.ndarray  # as replayed (NaN in a gap)
    mark: np.ndarray  # the simulator's margin mark: forward-filled; the perp price before the first mark
    mark_high: np.ndarray  # highest mark the simulator can check inside the hour ending at each grid hour
    mark_low: np.ndarray
    edge: np.ndarray  # bool: a price of this symbol is known at the previous hour and missing at this one
    settle_ts: np.ndarray  # int64
    settle_rate: np.ndarray
    settle_mark: np.ndarray  # mark the simulator pays funding at (NaN: unknown, certificate fails)
    settle_interval: np.ndarray  # hours since the previous settlement
    predicted: np.ndarray  # the simulator's predicted rate at each grid hour (bot/sim/premium.py)


def _at_grid(series: Any, grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` of a ``CandleSeries`` at each grid hour (NaN outside it)."""
    out = np.full(len(grid), np.nan)
    if series is None:
        return out
    k = (grid - series.t0) // HOUR_MS
    ok = (k >= 0) & (k < series.n)
    out[ok] = values[k[ok]]
    return out


def _ffill(values: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last known value before it (NaN until the first one)."""
    idx = np.where(np.isnan(values), 0, np.arange(len(values)))
    np.maximum.accumulate(idx, out=idx)
    out = values[idx]
    if len(values) and np.isnan(values[0]):
        first = np.flatnonzero(~np.isnan(values))
        out[: first[0] if len(first) else len(values)] = np.nan
    return out


class ArraySource(Protocol):
    """What ``build_paths`` reads of the market data source (``bot.sim.source.CandleSource``,
    ``bot.backtest.minute.MinuteOverlay``)."""

    def candles(self, kind: str, symbol: str) -> CandleSeries | None: ...

    def settlements(self, symbol: str) -> Sequence[SourceSettlement]: ...

    def predicted_rates_at(self, symbol: str, times: np.ndarray) -> np.ndarray: ...


def build_paths(source: ArraySource, symbols: list[str], grid: np.ndarray) -> dict[str, SymbolPaths]:
    out: dict[str, SymbolPaths] = {}
    for sym in symbols:
        spot_s, perp_s, mark_s = (source.candles(kind, sym) for kind in ("spot", "perp", "mark"))
        nan = np.full(len(grid), np.nan)
        raw = {
            kind: (_at_grid(s, grid, s.open) if s is not None else nan)
            for kind, s in (("spot", spot_s), ("perp", perp_s), ("mark", mark_s))
        }
        edge = np.zeros(len(grid), dtype=bool)
        for values in raw.values():
            known = ~np.isnan(values)
            edge[1:] |= known[:-1] & ~known[1:]
        # The simulator's margin mark: the last known mark; before the contract's first mark candle, the
        # perp price (the last known one in a gap). Without this a symbol whose mark history starts
        # later than its trades (BTCUSDT in the shared data) certified nothing there.
        mark = _ffill(raw["mark"])
        mark = np.where(np.isnan(mark), _ffill(raw["perp"]), mark)
        # The hour before grid hour t is candle t-1: its high/low bound the path, plus the price at t;
        # where the replay has no mark the simulator takes its last known one.
        prev = grid - HOUR_MS
        hi = np.fmax(_at_grid(mark_s, prev, mark_s.high), mark) if mark_s is not None else mark
        lo = np.fmin(_at_grid(mark_s, prev, mark_s.low), mark) if mark_s is not None else mark
        sts = source.settlements(sym)
        ts = np.array([s.ts_ms for s in sts], dtype=np.int64)
        rate = np.array([float(s.rate) for s in sts])
        smark = np.full(len(ts), np.nan)
        if mark_s is not None and len(ts):
            on_hour = ts % HOUR_MS == 0
            k = (ts - mark_s.t0) // HOUR_MS
            ok = on_hour & (k >= 0) & (k < mark_s.n)
            smark[ok] = mark_s.open[k[ok]]
        missing = np.isnan(smark)
        for idx in np.flatnonzero(missing).tolist():
            mark_price = sts[idx].mark_price
            if mark_price is not None:
                smark[idx] = float(mark_price)
        if len(ts) and perp_s is not None:
            # before any mark candle the simulator pays at the perp price of the settlement instant
            no_mark_yet = np.isnan(smark) & (ts % HOUR_MS == 0) & (ts < (mark_s.t0 if mark_s is not None else np.inf))
            smark = np.where(no_mark_yet, _at_grid(perp_s, ts, perp_s.open), smark)
        out[sym] = SymbolPaths(
            spot=_ffill(raw["spot"]),
            perp=raw["perp"],
            mark=mark,
            mark_high=hi,
            mark_low=lo,
            edge=edge,
            settle_ts=ts,
            settle_rate=rate,
            settle_mark=smark,
            settle_interval=np.array([s.interval_hours for s in sts], dtype=np.float64),
            predicted=source.predicted_rates_at(sym, grid),
        )
    return out


def quiet_view(
    paths: Mapping[str, SymbolPaths],
    unified: Mapping[str, str],
    grid: np.ndarray,
    blocked: Mapping[str, np.ndarray],
    fees: tuple[float, float],
    shapes: Mapping[str, BookShape],
    book_depth: int,
) -> QuietView:
    """What a strategy's quiet-hours bound reads (strategies/quiet.py): the arrays above (not copied), by
    Binance id; ``unified`` names each symbol as the strategy does, ``blocked`` says per hour which are not
    offered for entry, ``shapes`` the replayed top of book where both legs have one."""
    markets = {
        sid: MarketHours(
            symbol=unified[sid],
            spot=p.spot,
            perp=p.perp,
            settle_ts=p.settle_ts,
            settle_rate=p.settle_rate,
            settle_interval=p.settle_interval,
            predicted=p.predicted,
            blocked=blocked[sid],
            shape=shapes.get(sid),
        )
        for sid, p in paths.items()
    }
    return QuietView(grid, markets, fees, HISTORY_SETTLEMENTS, book_depth)
