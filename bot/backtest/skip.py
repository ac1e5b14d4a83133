"""Which hours can be skipped because nothing can change: vectorised, and only where provably identical.

While the book is flat (no pair, no open order, no pending intent), an hour matters only if the strategy
could enter somewhere. ``FundingCarry`` enters only when its horizon forecast APR reaches
``entry_threshold_apr`` (strategies/funding_carry.py, rule ``skip_forecast_below_entry``), and that
forecast (strategies/forecast.py) is ``predicted + (n - 1) * later * interval`` over the horizon, where
``later`` is a blend of the predicted per-hour rate and a decayed mean of settled per-hour rates (together
weighing ``1 - baseline_weight``) and the baseline per-hour rate ``B`` (weighing ``b = baseline_weight``), and
``(n - 1) * interval <= horizon``. The simulator's predicted rate is a blend of the last and the hour's
predicted rate (bot/sim/premium.py, the same array the simulator quotes). So with ``M`` the larger of the
hour's predicted rate and the largest settled rate, and ``I`` the smallest interval among the settlements
from 32 days before the hour up to the next settlement (the next settlement pays at most ``max(M, 0)``, every
per-hour rate is at most ``max(M, 0) / I``)::

    forecast APR <= (max(M, 0) + horizon * max((1 - b) * max(M, 0) / I + b * B, 0)) / horizon * 8760

An entry also needs its break-even (round-trip cost over expected funding per hour,
strategies/economics.py) within ``max_break_even_fraction`` of the horizon. The round-trip cost is at
least both legs' fees in and out plus ``basis_cost_bps`` (slippage is >= 0), with the spot leg's price
at least ``SPOT_PERP_FLOOR`` of the perp's, so the forecast must also reach::

    (2 * (spot_fee * SPOT_PERP_FLOOR + perp_fee) + basis_cost_bps / 1e4) / max_break_even_fraction * 8760 / horizon

When the bound is below the larger of the two thresholds for every symbol, the strategy returns skips and
holds only, and the hour is skipped. Symbols outside their data window have no market, hence no entry, but the
bound does not rely on that. Other strategies (baselines) get no skipping unless they say how.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bot.backtest.data import Dataset, SymbolSeries
from bot.domain import DAY_MS
from strategies.params import CarryParams

LOOKBACK_MS = 32 * DAY_MS  # the snapshot's funding history reaches 30 days back; 2 days of slack
SAFETY = 0.999  # skip only when the bound is clearly below the threshold (float arithmetic here)
SPOT_PERP_FLOOR = 0.9  # spot/perp price ratio assumed at worst (real hourly basis stays within a few %)


def _window_stats(s: SymbolSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per settlement k: max rate, min and max interval over settlements in [ts_k - LOOKBACK, ts_k]."""
    idx = pd.to_datetime(s.funding_ts, unit="ms")
    rate = pd.Series(s.funding_rate, index=idx)
    iv = pd.Series(s.funding_interval.astype(np.float64), index=idx)
    win = pd.Timedelta(milliseconds=LOOKBACK_MS)
    return (
        rate.rolling(win, closed="both").max().to_numpy(),
        iv.rolling(win, closed="both").min().to_numpy(),
        iv.rolling(win, closed="both").max().to_numpy(),
    )


def entry_threshold_apr(params: CarryParams, spot_fee: float, perp_fee: float) -> float:
    """The smallest forecast APR with which ``FundingCarry`` can enter (module docstring)."""
    horizon = float(params.hold_horizon_hours)
    cost = 2 * (spot_fee * SPOT_PERP_FLOOR + perp_fee) + float(params.basis_cost_bps) / 1e4
    cost_apr = cost / float(params.max_break_even_fraction) * 8760.0 / horizon
    return max(float(params.entry_threshold_apr), cost_apr)


def carry_entry_possible(
    ds: Dataset, params: CarryParams, spot_fee: float, perp_fee: float, predicted: dict[str, np.ndarray]
) -> np.ndarray:
    """bool per grid hour: some symbol's forecast could reach the entry threshold at that hour.

    ``spot_fee``/``perp_fee`` are the fee rates the snapshot carries for ``params.fee_kind``;
    ``predicted`` the simulator's predicted rate per symbol (Binance id) at each grid hour."""
    horizon = float(params.hold_horizon_hours)
    threshold = entry_threshold_apr(params, spot_fee, perp_fee)
    b = float(params.baseline_weight)
    baseline = b * float(params.baseline_per_hour)
    possible = np.zeros(len(ds.grid), dtype=bool)
    for s in ds.series.values():
        if len(s.funding_ts) == 0:
            continue
        max_rate, min_iv, _ = _window_stats(s)
        # The hour's window ends at its next settlement (the first one strictly after the hour).
        k = np.searchsorted(s.funding_ts, ds.grid, side="right")
        beyond = k >= len(s.funding_ts)
        kk = np.minimum(k, len(s.funding_ts) - 1)
        pred = predicted.get(s.symbol)
        top = max_rate[kk] if pred is None else np.fmax(max_rate[kk], pred)
        later = np.maximum((1 - b) * np.maximum(top, 0.0) / min_iv[kk] + baseline, 0.0)
        bound = (np.maximum(top, 0.0) + horizon * later) / horizon * 8760.0
        possible |= beyond | ~(bound < threshold * SAFETY)
    return possible
