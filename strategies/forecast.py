"""Funding forecast over the hold horizon, normalised per hour so 1h, 4h and 8h symbols compare fairly.

- Every settled rate is turned into a per-hour rate with ITS OWN interval (a rate paid every 8h is worth
  an eighth per hour), so interval changes in the history are handled.
- History is averaged with an exponential decay by age in hours (half-life in hours, not settlements:
  a settlement half-life would look back 8 times further on an 8h symbol than on a 1h one), weighting each
  settlement by the hours it covered.
- The next settlement is expected at the predicted rate; later ones at a blend of the predicted per-hour
  rate, the decayed history and the baseline rate (Binance's interest rate, what most symbols pay most of
  the time): one weak or strong print moves the horizon forecast only by its own weight.
- Only settlements inside (now, now + horizon] count: a position must be held at the instant to be paid.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from bot.domain import HOUR_MS, MINUTE_MS
from strategies.base import FundingPoint, MarketSnapshot
from strategies.params import HOURS_PER_YEAR, CarryParams

HALF = Decimal("0.5")
Num = TypeVar("Num", Decimal, npt.NDArray[np.float64])
Int = TypeVar("Int", int, npt.NDArray[np.int64])


@dataclass(frozen=True, slots=True)
class FundingForecast:
    predicted_per_hour: Decimal  # predicted rate / current interval
    history_per_hour: Decimal | None  # decayed, time-weighted mean of settled per-hour rates
    later_per_hour: Decimal  # rate per hour assumed for settlements after the next
    next_settlement_ms: int  # first settlement strictly after now
    last_settlement_ms: int  # most recent settlement at or before now
    settlements: int  # settlements inside the horizon
    horizon_rate: Decimal  # sum of expected rates over the horizon (fraction of notional)
    rate_per_hour: Decimal  # horizon_rate / horizon hours
    apr: Decimal  # rate_per_hour annualised

    @property
    def predicted_apr(self) -> Decimal:
        return self.predicted_per_hour * HOURS_PER_YEAR


@functools.lru_cache(maxsize=32)
def _decay_per_minute(half_life_hours: Decimal) -> Decimal:
    """0.5 ** (1 / half-life in minutes), computed once per half-life under a fixed context."""
    with localcontext(Context(prec=40, rounding=ROUND_HALF_EVEN)):
        return HALF ** (1 / (half_life_hours * 60))


def decayed_history_per_hour(
    history: tuple[FundingPoint, ...], now_ms: int, half_life_hours: Decimal
) -> Decimal | None:
    """Time-weighted, exponentially decayed mean per-hour rate of settlements at or before ``now_ms``.

    Ages are counted in whole minutes so the decay is an integer power of a per-minute factor: exact
    Decimal arithmetic, fast, and identical on every platform.
    """
    per_minute = _decay_per_minute(half_life_hours)
    num = Decimal(0)
    den = Decimal(0)
    for point in history:
        if point.ts_ms > now_ms:
            continue
        decay = per_minute ** ((now_ms - point.ts_ms) // MINUTE_MS)
        num += decay * point.rate  # = decay * interval * (rate / interval)
        den += decay * point.interval_hours
    if den == 0:
        return None
    return num / den


def later_per_hour(predicted_per_hour: Decimal, history_per_hour: Decimal | None, params: CarryParams) -> Decimal:
    """Per-hour rate expected for the settlements after the next: predicted, history and baseline blended
    (without history its weight goes to the predicted rate)."""
    w, b = params.predicted_weight, params.baseline_weight
    if history_per_hour is None:
        return (1 - b) * predicted_per_hour + b * params.baseline_per_hour
    return blend_later(w, b, params.baseline_per_hour, predicted_per_hour, history_per_hour)


def blend_later(w: Num, b: Num, baseline_per_hour: Num, predicted_per_hour: Num, history_per_hour: Num) -> Num:
    """The blend of ``later_per_hour`` (Decimal here, float arrays in ``forecast_apr_hours``)."""
    return w * predicted_per_hour + (1 - w - b) * history_per_hour + b * baseline_per_hour


def settlements_in_horizon(next_ms: Int, horizon_end_ms: Int, interval_ms: Int) -> Int:
    """Settlements in (now, horizon end] from the next one on, every ``interval_ms`` (0 when the next is
    already beyond the horizon: ``1 + floor(negative / interval)`` is then at most 0)."""
    n = 1 + (horizon_end_ms - next_ms) // interval_ms
    return n * (n > 0)


def forecast_funding(market: MarketSnapshot, now_ms: int, params: CarryParams) -> FundingForecast:
    interval_ms = market.interval_hours * HOUR_MS
    next_ms = market.next_funding_ms
    if next_ms <= now_ms:  # stale next time: that instant has passed, roll to the next one
        next_ms += ((now_ms - next_ms) // interval_ms + 1) * interval_ms
    settled = [p.ts_ms for p in market.history if p.ts_ms <= now_ms]
    last_ms = max([*settled, next_ms - interval_ms])  # a history missing the last print still knows it

    predicted_per_hour = market.predicted_rate / market.interval_hours
    history_per_hour = decayed_history_per_hour(market.history, now_ms, params.history_half_life_hours)
    later = later_per_hour(predicted_per_hour, history_per_hour, params)

    horizon_end = now_ms + int(params.hold_horizon_hours * HOUR_MS)
    n = settlements_in_horizon(next_ms, horizon_end, interval_ms)
    horizon_rate = Decimal(0) if n == 0 else market.predicted_rate + (n - 1) * later * market.interval_hours
    per_hour = horizon_rate / params.hold_horizon_hours
    return FundingForecast(
        predicted_per_hour=predicted_per_hour,
        history_per_hour=history_per_hour,
        later_per_hour=later,
        next_settlement_ms=next_ms,
        last_settlement_ms=last_ms,
        settlements=n,
        horizon_rate=horizon_rate,
        rate_per_hour=per_hour,
        apr=per_hour * HOURS_PER_YEAR,
    )


# ---- the same forecast over a whole grid, in float (the carry's quiet-hours bound, strategies/carry_quiet.py)


def _history_means(
    ts: npt.NDArray[np.int64], rate: npt.NDArray[np.float64], half_life_hours: float, window: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Per settlement j: ``decayed_history_per_hour`` of the last ``window`` settlements up to j (each with
    the interval to its predecessor: what the snapshot's history holds), and whether those intervals were
    all equal.

    Between two settlements every point ages by the same minutes, so the ratio does not change: the
    value at settlement j holds until settlement j+1."""
    n = len(ts)
    mean = np.full(n, np.nan)
    regular = np.zeros(n, dtype=bool)
    w = window
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


def forecast_apr_hours(
    ts: npt.NDArray[np.int64],
    rate: npt.NDArray[np.float64],
    predicted: npt.NDArray[np.float64],
    grid: npt.NDArray[np.int64],
    params: CarryParams,
    window: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """``forecast_funding(...).apr`` at each grid hour in float, from the settlements (``ts``, ``rate``),
    the predicted rate at each hour and the history ``window`` the snapshot reads; and where it can be
    trusted (regular history, a settlement before and after the hour). tests/backtest/test_paths.py
    checks it against ``forecast_funding`` over real data."""
    apr = np.full(len(grid), np.nan)
    steady = np.zeros(len(grid), dtype=bool)
    if len(ts) < 3:
        return apr, steady
    hist, regular = _history_means(ts, rate, float(params.history_half_life_hours), window)
    k = np.searchsorted(ts, grid, side="right")
    ok = (k >= 1) & (k < len(ts))
    kk = np.clip(k, 1, len(ts) - 1)
    prev, nxt = kk - 1, kk
    interval_ms = ts[nxt] - ts[prev]
    interval = interval_ms / HOUR_MS
    w, b, base = (
        np.asarray(float(x)) for x in (params.predicted_weight, params.baseline_weight, params.baseline_per_hour)
    )
    later = blend_later(w, b, base, predicted / interval, hist[prev])
    horizon_h = float(params.hold_horizon_hours)
    n = settlements_in_horizon(ts[nxt], grid + int(params.hold_horizon_hours * HOUR_MS), interval_ms)
    horizon_rate = np.where(n == 0, 0.0, predicted + (n - 1) * later * interval)
    apr = horizon_rate / horizon_h * float(HOURS_PER_YEAR)
    # the interval must not change across the window the forecast reads (history, this and the next)
    steady = ok & regular[prev] & (interval == (ts[prev] - ts[np.maximum(prev - 1, 0)]) / HOUR_MS)
    apr = np.where(ok & ~np.isnan(hist[prev]) & ~np.isnan(predicted), apr, np.nan)
    return apr, steady & ~np.isnan(apr)
