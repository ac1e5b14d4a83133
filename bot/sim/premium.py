"""Binance's funding-rate rule and the causal predicted rate the simulator publishes.

Binance (USD-M, "Introduction to Binance Futures Funding Rates"; formula change announced for
2025-09-18 08:01 UTC): the premium index is sampled through the interval and averaged with weights that
grow with time (``(1*P1 + 2*P2 + ... + n*Pn) / (1 + 2 + ... + n)``), then

* before the change: ``F = P + clamp(I_N - P, -0.05%, +0.05%)`` with ``I_N`` the interest component of an
  N-hour interval, 0.01% per 8 h scaled to N (the quiet settlements of 2 h SOLUSDT in 2022-23 sit at
  0.0025%);
* from the change: ``F = [P + clamp(I - P, -0.05%, +0.05%)] * N / 8`` with ``I`` = 0.01%;

and ``F`` is then capped to the symbol's cap and floor (``FundingRule``). The interest rate is 0 for some
contracts (BNBUSDT: its quiet settlements are exactly 0).

What the simulator knows at ``t`` is the replayed prices up to ``t``, so the predicted rate is built from
those only: one premium sample per whole hour of the interval so far, ``(perp - spot) / spot`` at the
hour (the candle's open is the price at that instant; the spot price stands in for Binance's index). The
coming settlement's real rate is never read, so a quote carries no information about it beyond the
prices. Samples change only on the hour, so the rate is computed once per symbol on an hourly grid
(``predicted_rates``), and the simulator, the emulator and the backtest's certificates all read that one
array. With no sample yet (data gaps) the premium counts as 0, i.e. the rate is the interest component.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.domain import HOUR_MS

FORMULA_CHANGE_MS = 1_758_182_460_000  # 2025-09-18 08:01 UTC: the whole rate scaled by N/8 from here
DAMPENER = 0.0005  # the +-0.05% clamp around the interest component
DEFAULT_INTEREST_8H = 0.0001  # 0.01% per 8 h
RATE_DECIMALS = 8  # Binance prints funding rates with 8 decimals


@dataclass(frozen=True, slots=True)
class FundingRule:
    """One contract's funding parameters: interest per 8 h, cap and floor per settlement."""

    interest_8h: float = DEFAULT_INTEREST_8H
    cap: float = 0.0075
    floor: float = -0.0075


def funding_rate(
    premium: np.ndarray | float, interval_hours: np.ndarray | float, settle_ms: np.ndarray | int, rule: FundingRule
) -> np.ndarray:
    """Binance's rate for an average premium over an interval of ``interval_hours`` settling at ``settle_ms``."""
    p = np.asarray(premium, dtype=np.float64)
    n = np.asarray(interval_hours, dtype=np.float64)
    scale = n / 8.0
    old = p + np.clip(rule.interest_8h * scale - p, -DAMPENER, DAMPENER)
    new = (p + np.clip(rule.interest_8h - p, -DAMPENER, DAMPENER)) * scale
    rate = np.where(np.asarray(settle_ms) >= FORMULA_CHANGE_MS, new, old)
    return np.round(np.clip(rate, rule.floor, rule.cap), RATE_DECIMALS)


def predicted_rates(
    t0: int,
    perp_open: np.ndarray,
    spot_open: np.ndarray,
    settle_ts: np.ndarray,
    settle_interval_hours: np.ndarray,
    rule: FundingRule,
) -> np.ndarray:
    """The predicted rate at each whole hour ``t0 + k h`` (both price arrays on that grid, NaN in gaps).

    At hour k the interval is the one that started at the last settlement at or before it; its samples
    are the hours from that settlement to k (the settlement's own hour included: the price at the
    instant the new interval starts), weighted 1, 2, ... by their position in the interval."""
    n = len(perp_open)
    ts = np.asarray(settle_ts, dtype=np.int64)
    grid = t0 + np.arange(n, dtype=np.int64) * HOUR_MS
    with np.errstate(invalid="ignore", divide="ignore"):
        prem = (perp_open - spot_open) / spot_open
    valid = np.isfinite(prem)
    x = np.where(valid, prem, 0.0)
    k = np.arange(n, dtype=np.float64)
    sums = [np.cumsum(v) for v in (x, x * k, valid.astype(np.float64), valid * k)]
    last = np.searchsorted(ts, grid, side="right") - 1  # the interval's opening settlement (-1: none yet)
    start_ms = np.where(last >= 0, ts[np.maximum(last, 0)] if len(ts) else t0, t0)
    ka = np.clip(-(-(start_ms - t0) // HOUR_MS), 0, n).astype(np.int64)

    def since_start(c: np.ndarray) -> np.ndarray:
        return c - np.where(ka > 0, c[np.maximum(ka - 1, 0)], 0.0)

    s1, s2, w1, w2 = (since_start(c) for c in sums)
    offset = ka.astype(np.float64) - 1.0  # weight of hour j is j - ka + 1
    num = s2 - offset * s1
    den = w2 - offset * w1
    premium = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    if len(ts) == 0:
        return funding_rate(premium, 8.0, grid + 8 * HOUR_MS, rule)
    iv = np.asarray(settle_interval_hours, dtype=np.float64)
    nxt = last + 1
    has_next = nxt < len(ts)
    nxt_c = np.minimum(nxt, len(ts) - 1)
    # interval of the coming settlement: its spacing from the previous one, else its own stated interval
    spacing = np.where(last >= 0, (ts[nxt_c] - ts[np.maximum(last, 0)]) / HOUR_MS, iv[nxt_c])
    after_last = np.where(iv[-1] > 0, iv[-1], 8.0)
    interval = np.where(has_next, spacing, after_last)
    interval = np.where(interval > 0, interval, 8.0)
    settle_at = np.where(has_next, ts[nxt_c], start_ms + (interval * HOUR_MS).astype(np.int64))
    return funding_rate(premium, interval, settle_at, rule)
