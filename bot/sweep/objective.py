"""What a sweep maximises, from one backtest's summary and hourly equity, and which trials may win.

* ``apr``: the backtest's net APR (net PnL / capital, annualised over the window);
* ``sharpe``: mean / standard deviation of daily equity returns, times sqrt(365) (0 when flat);
* ``calmar``: net APR / max drawdown, the drawdown floored at ``CALMAR_MIN_DRAWDOWN`` so a run that never
  fell does not divide by zero.

A trial is feasible when it had no liquidation and its max drawdown is within ``--max-drawdown``: only
feasible trials are chosen as best (and Optuna's samplers are told which were not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bot.backtest.result import BacktestResult

OBJECTIVES = ("apr", "sharpe", "calmar")
CALMAR_MIN_DRAWDOWN = 0.0001
HOURS_PER_DAY = 24


def daily_returns(equity: np.ndarray, capital: float) -> np.ndarray:
    """Returns of the equity sampled every 24 hours from the starting capital (the last day may be short)."""
    eq = equity[~np.isnan(equity)]
    if not len(eq):
        return np.zeros(0)
    points = np.concatenate(([capital], eq[HOURS_PER_DAY - 1 :: HOURS_PER_DAY]))
    if (len(eq) % HOURS_PER_DAY) != 0:
        points = np.concatenate((points, [eq[-1]]))
    return np.diff(points) / points[:-1]


def sharpe(equity: np.ndarray, capital: float) -> float:
    r = daily_returns(equity, capital)
    if len(r) < 2:
        return 0.0
    sd = float(np.std(r, ddof=1))
    return 0.0 if sd == 0 or not math.isfinite(sd) else float(np.mean(r)) / sd * math.sqrt(365)


@dataclass(frozen=True)
class TrialMetrics:
    """The figures of one trial's backtest (floats: analytics on settled ledger facts)."""

    apr: float
    sharpe: float
    calmar: float
    net_pnl: float
    max_drawdown: float
    liquidations: int
    trades: int
    funding_income: float
    fees: float
    time_in_market: float
    seconds: float

    @classmethod
    def of(cls, result: BacktestResult) -> TrialMetrics:
        s = result.summary
        return cls(
            apr=s.apr,
            sharpe=sharpe(result.timeline.equity, s.capital),
            calmar=s.apr / max(s.max_drawdown, CALMAR_MIN_DRAWDOWN),
            net_pnl=s.net_pnl,
            max_drawdown=s.max_drawdown,
            liquidations=s.liquidations,
            trades=s.trades,
            funding_income=s.funding_income,
            fees=s.fees,
            time_in_market=s.time_in_market,
            seconds=result.stats.seconds,
        )

    def value(self, objective: str) -> float:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        return float(getattr(self, objective))

    def feasible(self, max_drawdown: float | None) -> bool:
        return self.liquidations == 0 and (max_drawdown is None or self.max_drawdown <= max_drawdown)
