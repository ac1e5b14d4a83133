"""The replayed market as float arrays on the backtest grid, computed once with numpy.

What the simulator and the strategy see at each grid hour, for the fast-forward certificates
(``bot.backtest.fastforward``): prices at the hour (the candle's open, which is where the replay's price
path starts), the worst mark inside the hour before it, and the carry forecast APR exactly as
``strategies.forecast.forecast_funding`` computes it from what ``SnapshotBuilder`` reads (float here,
Decimal there: the certificates keep a margin far above the float error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.domain import HOUR_MS, MINUTE_MS
from bot.engine.snapshot import HISTORY_SETTLEMENTS
from strategies.params import CarryParams

HOURS_PER_YEAR = 8760.0


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
    apr: np.ndarray  # forecast APR per grid hour (NaN: no forecast can be certified here)
    steady: np.ndarray  # bool per grid hour: the funding history the snapshot reads is regular here
    inputs: np.ndarray  # int64 per grid hour: equal only where two symbols' forecasts read equal inputs


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


def _base_source(source: Any) -> Any:
    return getattr(source, "_base", source)


def build_paths(source: Any, symbols: list[str], grid: np.ndarray, params: CarryParams) -> dict[str, SymbolPaths]:
    base = _base_source(source)
    out: dict[str, SymbolPaths] = {}
    keys: dict[bytes, int] = {}
    for sym in symbols:
        spot_s, perp_s, mark_s = (base._get(kind, sym) for kind in ("spot", "perp", "mark"))
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
        sts = base.settlements(sym)
        ts = np.array([s.ts_ms for s in sts], dtype=np.int64)
        rate = np.array([float(s.rate) for s in sts])
        smark = np.full(len(ts), np.nan)
        if mark_s is not None and len(ts):
            on_hour = ts % HOUR_MS == 0
            k = (ts - mark_s.t0) // HOUR_MS
            ok = on_hour & (k >= 0) & (k < mark_s.n)
            smark[ok] = mark_s.open[k[ok]]
        missing = np.isnan(smark)
        for idx in np.flatnonzero(missing):
            if sts[idx].mark_price is not None:
                smark[idx] = float(sts[idx].mark_price)
        if len(ts) and perp_s is not None:
            # before any mark candle the simulator pays at the perp price of the settlement instant
            no_mark_yet = np.isnan(smark) & (ts % HOUR_MS == 0) & (ts < (mark_s.t0 if mark_s is not None else np.inf))
            smark = np.where(no_mark_yet, _at_grid(perp_s, ts, perp_s.open), smark)
        predicted = base.predicted_rates_at(sym, grid)  # the simulator's own predicted rate (bot/sim/premium.py)
        apr, steady = forecast_apr(ts, rate, predicted, grid, params)
        inputs = forecast_inputs(ts, rate, predicted, grid, keys)
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
            apr=apr,
            steady=steady,
            inputs=inputs,
        )
    return out


def _history_means(ts: np.ndarray, rate: np.ndarray, half_life_hours: float) -> tuple[np.ndarray, np.ndarray]:
    """Per settlement j: the decayed per-hour mean of the last ``HISTORY_SETTLEMENTS`` settlements up to
    j (each with the interval to its predecessor), and whether those intervals were all equal.

    Between two settlements every point ages by the same minutes, so the ratio does not change: the
    value at settlement j holds until settlement j+1."""
    n = len(ts)
    mean = np.full(n, np.nan)
    regular = np.zeros(n, dtype=bool)
    w = HISTORY_SETTLEMENTS
    iv = np.zeros(n)
    iv[1:] = (ts[1:] - ts[:-1]) / HOUR_MS
    ln_decay = np.log(0.5) / (half_life_hours * 60.0)
    # The first settlements: the snapshot reads every settlement since the data began, and the very
    # first has no predecessor, hence no interval, and is left out.
    for j in range(1, min(w, n)):
        ages = (ts[j] - ts[1 : j + 1]) // MINUTE_MS
        weights = np.exp(ln_decay * ages)
        mean[j] = (weights * rate[1 : j + 1]).sum() / (weights * iv[1 : j + 1]).sum()
        regular[j] = iv[1 : j + 1].min() == iv[1 : j + 1].max()
    if n <= w:
        return mean, regular
    from numpy.lib.stride_tricks import sliding_window_view

    idx = np.arange(w, n)  # windows [j-w+1, j], every point with a predecessor
    win_ts = sliding_window_view(ts, w)[1:]  # window ending at j = idx
    win_rate = sliding_window_view(rate, w)[1:]
    win_iv = sliding_window_view(iv, w)[1:]
    ages = (ts[idx][:, None] - win_ts) // MINUTE_MS
    weights = np.exp(ln_decay * ages)
    mean[idx] = (weights * win_rate).sum(axis=1) / (weights * win_iv).sum(axis=1)
    # the window the snapshot fetches also holds the settlement before the first point (its interval)
    span = sliding_window_view(iv, w + 1)
    regular[w:] = (span.max(axis=1) == span.min(axis=1)) & (span.min(axis=1) > 0)
    return mean, regular


def forecast_inputs(
    ts: np.ndarray, rate: np.ndarray, predicted: np.ndarray, grid: np.ndarray, keys: dict[bytes, int]
) -> np.ndarray:
    """Per grid hour, a number naming everything the forecast reads (the settlements of its history
    window, the last and the next one, their times, the predicted rate at the hour): two symbols with the
    same number have exactly the same Decimal forecast, so the strategy's tie-break by symbol decides
    their order. -1: unknown. ``keys`` numbers the inputs; share it between the symbols of one run."""
    out = np.full(len(grid), -1, dtype=np.int64)
    n = len(ts)
    if n < 2:
        return out
    w = HISTORY_SETTLEMENTS + 1
    per_settlement = np.full(n, -1, dtype=np.int64)
    for j in range(n - 1):
        lo = max(0, j - w + 1)
        key = ts[lo : j + 2].tobytes() + rate[lo : j + 2].tobytes()
        per_settlement[j] = keys.setdefault(key, len(keys))
    k = np.searchsorted(ts, grid, side="right")
    ok = (k >= 1) & (k < n) & ~np.isnan(predicted)
    if not ok.any():
        return out
    pairs = np.stack([per_settlement[k[ok] - 1], predicted[ok].view(np.int64)], axis=1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    ids = np.array([keys.setdefault(b"%d:%d" % (int(a), int(b)), len(keys)) for a, b in uniq], dtype=np.int64)
    out[ok] = ids[inverse.ravel()]
    return out


def forecast_apr(
    ts: np.ndarray, rate: np.ndarray, predicted_at_grid: np.ndarray, grid: np.ndarray, params: CarryParams
) -> tuple[np.ndarray, np.ndarray]:
    """``forecast_funding(...).apr`` at each grid hour, and where it can be trusted (regular history,
    a settlement before and after the hour)."""
    apr = np.full(len(grid), np.nan)
    steady = np.zeros(len(grid), dtype=bool)
    if len(ts) < 3:
        return apr, steady
    hist, regular = _history_means(ts, rate, float(params.history_half_life_hours))
    k = np.searchsorted(ts, grid, side="right")
    ok = (k >= 1) & (k < len(ts))
    kk = np.clip(k, 1, len(ts) - 1)
    prev, nxt = kk - 1, kk
    span_ms = (ts[nxt] - ts[prev]).astype(np.float64)
    predicted = predicted_at_grid
    interval = span_ms / HOUR_MS
    w, b = float(params.predicted_weight), float(params.baseline_weight)
    later = w * predicted / interval + (1 - w - b) * hist[prev] + b * float(params.baseline_per_hour)
    horizon_h = float(params.hold_horizon_hours)
    horizon_end = grid + int(params.hold_horizon_hours * HOUR_MS)
    n = np.where(ts[nxt] > horizon_end, 0, 1 + (horizon_end - ts[nxt]) // (interval * HOUR_MS).astype(np.int64))
    horizon_rate = np.where(n == 0, 0.0, predicted + (n - 1) * later * interval)
    apr = horizon_rate / horizon_h * HOURS_PER_YEAR
    # the interval must not change across the window the forecast reads (history, this and the next)
    steady = ok & regular[prev] & (interval == (ts[prev] - ts[np.maximum(prev - 1, 0)]) / HOUR_MS)
    apr = np.where(ok & ~np.isnan(hist[prev]) & ~np.isnan(predicted), apr, np.nan)
    return apr, steady & ~np.isnan(apr)
