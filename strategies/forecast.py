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

from bot.domain import HOUR_MS, MINUTE_MS
from strategies.base import FundingPoint, MarketSnapshot
from strategies.params import HOURS_PER_YEAR, CarryParams

HALF = Decimal("0.5")


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
    blend = b * params.baseline_per_hour
    if history_per_hour is None:
        return (1 - b) * predicted_per_hour + blend
    return w * predicted_per_hour + (1 - w - b) * history_per_hour + blend


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
    n = 0 if next_ms > horizon_end else 1 + (horizon_end - next_ms) // interval_ms
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
