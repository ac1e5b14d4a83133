"""Money of one pair at one size: expected funding over the horizon against round-trip costs.

Costs are everything a full round trip pays: fees on both legs in and out (taker or maker, per params),
slippage on both legs in and out measured against the mid (so it includes crossing half the spread),
walked through the visible book or taken from the linear slippage model, and an expected adverse basis
move. Break-even is the hours of expected funding needed to pay those costs back.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from bot.domain import ZERO
from strategies.base import Economics, LegMarket, Level
from strategies.forecast import FundingForecast
from strategies.params import HOURS_PER_YEAR, CarryParams

BPS = Decimal(10_000)
MONEY = Decimal("1e-8")
HOURS = Decimal("0.01")
RATE = Decimal("1e-8")

# The rules below are written once and called in Decimal by the strategies and in float (numpy arrays) by
# their quiet-hours bounds (strategies/quiet.py): plain arithmetic and one comparison each.
Num = TypeVar("Num", Decimal, float, npt.NDArray[np.float64])


def round_trip_fees(qty: Num, spot_mid: Num, perp_mid: Num, spot_fee: Num, perp_fee: Num) -> Num:
    """Fees of a round trip of ``qty`` (both legs, in and out) at the mids."""
    return 2 * qty * (spot_mid * spot_fee + perp_mid * perp_fee)


def basis_cost(notional: Num, basis_cost_bps: Num) -> Num:
    """The expected adverse basis move over a round trip."""
    return notional * basis_cost_bps / 10_000


def cost_apr(cost: Num, notional: Num, horizon_hours: Num) -> Num:
    """A cost spread over the horizon, as APR of the notional."""
    return cost / notional * 8760 / horizon_hours


def break_even_limit_hours(params: CarryParams) -> Decimal:
    """The longest break-even an entry (a growth, a switch in) may have: its round trip paid back within
    ``max_break_even_fraction`` of the horizon."""
    return params.hold_horizon_hours * params.max_break_even_fraction


@overload
def holding_loses(expected_funding: Decimal, round_trip_cost: Decimal) -> bool: ...
@overload
def holding_loses(expected_funding: npt.NDArray[np.float64], round_trip_cost: npt.NDArray[np.float64]) -> Any: ...
def holding_loses(expected_funding: Any, round_trip_cost: Any) -> Any:
    """A held pair is expected to lose more over the horizon than leaving now and coming back (one round
    trip) costs: the carry's ``exit_negative_funding``. Both per notional, or both in USDT."""
    return -expected_funding > round_trip_cost


@overload
def switch_pays(gain_apr: Decimal, cost_apr: Decimal, params: CarryParams) -> bool: ...
@overload
def switch_pays(gain_apr: npt.NDArray[np.float64], cost_apr: npt.NDArray[np.float64], params: CarryParams) -> Any: ...
def switch_pays(gain_apr: Any, cost_apr: Any, params: CarryParams) -> Any:
    """A switch's forecast gain pays its cost (both round trips) back within ``max_break_even_fraction``
    of the horizon, as an entry must."""
    fraction = (
        params.max_break_even_fraction if isinstance(gain_apr, Decimal) else float(params.max_break_even_fraction)
    )
    return gain_apr * fraction > cost_apr


def _q(value: Decimal, exp: Decimal) -> Decimal:
    """Round for the record; astronomically large values (a break-even of 1e30 hours) stay as they are."""
    if value.adjusted() > 20:
        return value
    return value.quantize(exp, rounding=ROUND_HALF_EVEN)


def walk_cost(levels: tuple[Level, ...], qty: Decimal, buying: bool) -> Decimal:
    """USDT paid (buying) or received (selling) for ``qty`` swept through ``levels``.

    Levels are sorted best first whatever order they came in; quantity beyond the visible depth is priced
    at the worst visible level (sizing caps keep us well inside the book, so this is only a fallback).
    """
    ordered = sorted(levels, key=lambda lv: lv[0], reverse=not buying)
    left = qty
    total = ZERO
    for price, size in ordered:
        take = min(left, size)
        total += take * price
        left -= take
        if left <= 0:
            return total
    return total + left * ordered[-1][0]


def leg_round_trip_slippage(leg: LegMarket, qty: Decimal) -> Decimal:
    """Slippage of buying and later selling ``qty`` on one leg, against the mid (USDT, >= 0)."""
    if qty <= 0:
        return ZERO
    mid = leg.mid
    if leg.has_depth:
        buy = walk_cost(leg.asks, qty, buying=True) - qty * mid
        sell = qty * mid - walk_cost(leg.bids, qty, buying=False)
        return max(buy, ZERO) + max(sell, ZERO)
    assert leg.slippage is not None  # LegMarket guarantees depth or a model
    notional = qty * mid
    half_spread = (leg.ask - leg.bid) / 2 * qty
    return 2 * (half_spread + notional * leg.slippage.bps(notional) / BPS)


def pair_economics(
    spot: LegMarket, perp: LegMarket, qty: Decimal, forecast: FundingForecast, params: CarryParams
) -> Economics:
    horizon = params.hold_horizon_hours
    notional = qty * perp.mid
    kind = params.fee_kind
    spot_fee = getattr(spot.fees, kind)
    perp_fee = getattr(perp.fees, kind)
    fees = round_trip_fees(qty, spot.mid, perp.mid, spot_fee, perp_fee)
    slippage = leg_round_trip_slippage(spot, qty) + leg_round_trip_slippage(perp, qty)
    basis = basis_cost(notional, params.basis_cost_bps)
    cost = fees + slippage + basis
    expected = notional * forecast.horizon_rate
    per_hour = expected / horizon
    break_even = cost / per_hour if per_hour > 0 else None
    score = expected - cost
    net_apr = score / notional * HOURS_PER_YEAR / horizon if notional > 0 else ZERO
    return Economics(
        qty=qty,
        notional=_q(notional, MONEY),
        horizon_hours=horizon,
        expected_funding=_q(expected, MONEY),
        expected_funding_per_hour=_q(per_hour, MONEY),
        forecast_apr=_q(forecast.apr, RATE),
        fees=_q(fees, MONEY),
        slippage=_q(slippage, MONEY),
        basis_cost=_q(basis, MONEY),
        round_trip_cost=_q(cost, MONEY),
        break_even_hours=None if break_even is None else _q(break_even, HOURS),
        score=_q(score, MONEY),
        net_apr=_q(net_apr, RATE),
    )
