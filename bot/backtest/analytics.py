"""Risk ratios and the monthly table of a backtest, from its hourly equity timeline.

Ratios use daily returns: the equity at the close of each UTC day (the last hour row of the day; a
partial first or last day counts as a day), against the previous close (the starting capital before the
first). Risk-free rate 0; annualised with 365 days (the market trades every day):

- Sharpe = mean(daily return) / stdev(daily return, n-1) * sqrt(365);
- Sortino = mean(daily return) / downside deviation * sqrt(365), the downside deviation being
  sqrt(mean(min(return, 0)^2)) over all days;
- Calmar = APR (net PnL / capital, annualised over the window) / max drawdown (fraction of the peak).

None where undefined (fewer than two days, no variation, no losing day, no drawdown).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from bot.backtest.result import Timeline
from bot.domain import DAY_MS, HOUR_MS

DAYS_PER_YEAR = 365.0
RATIO_BASIS = (
    "daily returns of equity at each UTC day's close (risk-free 0), annualised with sqrt(365); "
    "Calmar = APR / max drawdown"
)


def daily_closes(ts_ms: np.ndarray, equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(day start ms, equity at that day's close) per UTC day of the timeline."""
    ok = ~np.isnan(equity)
    end = ts_ms[ok] + HOUR_MS  # a row is the state at the end of its hour
    eq = equity[ok]
    if not len(eq):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    day = (end - 1) // DAY_MS
    last = np.flatnonzero(np.diff(day, append=day[-1] + 1))  # the last row of each day
    return day[last] * DAY_MS, eq[last]


def daily_returns(ts_ms: np.ndarray, equity: np.ndarray, capital: float) -> np.ndarray:
    _, closes = daily_closes(ts_ms, equity)
    if not len(closes) or capital <= 0:
        return np.zeros(0)
    prev = np.concatenate(([capital], closes[:-1]))
    return closes / prev - 1.0


@dataclass(frozen=True)
class RiskRatios:
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    days: int


def risk_ratios(ts_ms: np.ndarray, equity: np.ndarray, capital: float, apr: float, max_dd: float) -> RiskRatios:
    r = daily_returns(ts_ms, equity, capital)
    scale = math.sqrt(DAYS_PER_YEAR)
    sharpe = sortino = None
    if len(r) >= 2:
        sd = float(np.std(r, ddof=1))
        mean = float(np.mean(r))
        sharpe = mean / sd * scale if sd > 0 else None
        down = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        sortino = mean / down * scale if down > 0 else None
    calmar = apr / max_dd if max_dd > 0 else None
    return RiskRatios(sharpe, sortino, calmar, len(r))


@dataclass(frozen=True)
class MonthRow:
    month: str  # YYYY-MM (UTC)
    start_equity: float
    end_equity: float
    pnl: float
    ret: float  # pnl / start_equity
    funding: float
    fees: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def monthly_returns(tl: Timeline) -> list[MonthRow]:
    """One row per UTC month: equity at its start (the previous month's close, the capital for the first)
    and close, the PnL and return, and the funding and fees booked in it."""
    ok = ~np.isnan(tl.equity)
    if not ok.any():
        return []
    end = tl.ts_ms[ok] + HOUR_MS
    month = ((end - 1).astype("datetime64[ms]")).astype("datetime64[M]")
    eq, funding, fees = tl.equity[ok], tl.funding_cum[ok], tl.fees_cum[ok]
    last = np.flatnonzero(np.append(month[1:] != month[:-1], True))
    rows = []
    start_eq, start_f, start_fee = tl.capital, 0.0, 0.0
    for i in last:
        e = float(eq[i])
        rows.append(
            MonthRow(
                str(month[i]),
                start_eq,
                e,
                e - start_eq,
                (e - start_eq) / start_eq if start_eq else 0.0,
                float(funding[i]) - start_f,
                float(fees[i]) - start_fee,
            )
        )
        start_eq, start_f, start_fee = e, float(funding[i]), float(fees[i])
    return rows


def round_trip_stats(trips: list[Any]) -> dict[str, Any]:
    """Counts and medians over ``bot.ledger.round_trips.RoundTrip`` rows (the report's one-line summary)."""
    holds = [t.hold_hours for t in trips]
    evens = [t.break_even_hours for t in trips if t.break_even_hours is not None]
    nets = [t.net for t in trips if t.net is not None]
    return {
        "count": len(trips),
        "closed": sum(1 for t in trips if t.exit_ms is not None),
        "median_hold_hours": float(np.median(holds)) if holds else None,
        "median_break_even_hours": float(np.median(evens)) if evens else None,
        "held_past_break_even": sum(1 for t in trips if t.held_past_break_even),
        "with_break_even": len(evens),
        "winners": sum(1 for n in nets if n > 0),
        "funding": float(sum((t.funding for t in trips), Decimal(0))),
        "fees": float(sum((t.fees for t in trips), Decimal(0))),
        "net": float(sum(nets, Decimal(0))) if len(nets) == len(trips) else None,
    }
