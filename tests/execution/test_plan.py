from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Leg, MarketFilters, Side, floor_to_step
from bot.execution.plan import (
    LegOrder,
    PairFilters,
    common_step,
    hedge_repair,
    hedge_trim,
    plan_to_target,
    reduced_qty,
    sendable,
)

SPOT = MarketFilters("BTC/USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5"))
PERP = MarketFilters("BTC/USDT:USDT", D("0.1"), D("0.001"), D("0.001"), D("5"))
F = PairFilters(SPOT, PERP)
PX = D("60000")


def test_common_step_is_the_lcm() -> None:
    assert common_step(D("0.00001"), D("0.001")) == D("0.001")
    assert common_step(D("0.02"), D("0.05")) == D("0.1")
    assert common_step(D("1"), D("0.1")) == D("1")


def test_open_sends_equal_legs_rounded_to_both_steps() -> None:
    orders = plan_to_target(D(0), D(0), D("0.12345"), F, PX)
    assert orders == [LegOrder(Leg.SPOT, Side.BUY, D("0.123")), LegOrder(Leg.PERP, Side.SELL, D("0.123"))]


def test_close_sells_spot_and_buys_perp_reduce_only() -> None:
    orders = plan_to_target(D("0.5"), D("0.5"), D(0), F, PX)
    assert orders == [
        LegOrder(Leg.SPOT, Side.SELL, D("0.5")),
        LegOrder(Leg.PERP, Side.BUY, D("0.5"), reduce_only=True),
    ]


def test_drift_trades_only_the_lagging_leg() -> None:
    assert plan_to_target(D("0.5"), D("0.4"), D("0.5"), F, PX) == [LegOrder(Leg.PERP, Side.SELL, D("0.1"))]
    assert plan_to_target(D("0.4"), D("0.5"), D("0.5"), F, PX) == [LegOrder(Leg.SPOT, Side.BUY, D("0.1"))]


def test_legs_below_minimums_are_not_sent() -> None:
    # 0.00005 BTC = 3 USDT: below min notional on spot, below the perp step.
    assert plan_to_target(D(0), D(0), D("0.00005"), F, PX) == []
    # spot leg alone passes, perp would round to 0: a lone spot buy would unhedge, so nothing is sent.
    assert plan_to_target(D("0.1"), D("0.1"), D("0.1009"), F, PX) == []


def test_negative_target_refused() -> None:
    with pytest.raises(ValueError):
        plan_to_target(D(0), D(0), D(-1), F, PX)


def test_hedge_repair_tops_up_lagging_leg_or_unwinds_leading_one() -> None:
    top, unwind = hedge_repair(D("1.0"), D("0.6"), D("1.0"), F, PX)
    assert top == LegOrder(Leg.PERP, Side.SELL, D("0.4"))
    assert unwind == LegOrder(Leg.SPOT, Side.SELL, D("0.4"))
    # closing: spot sold, short still open -> buy the perp back (reduce-only) or re-buy spot
    top, unwind = hedge_repair(D(0), D("0.4"), D(0), F, PX)
    assert top == LegOrder(Leg.PERP, Side.BUY, D("0.4"), reduce_only=True)
    assert unwind == LegOrder(Leg.SPOT, Side.BUY, D("0.4"))
    assert hedge_repair(D(1), D(1), D(1), F, PX) == (None, None)


qty = st.decimals(min_value=0, max_value=5, places=5)


@given(qty, qty, qty)
def test_plan_never_leaves_hedge_worse_and_respects_filters(spot: D, short: D, target: D) -> None:
    spot = floor_to_step(spot, SPOT.step_size)
    short = floor_to_step(short, PERP.step_size)
    orders = plan_to_target(spot, short, target, F, PX)
    new_spot, new_short = spot, short
    for o in orders:
        assert sendable(F.of(o.leg), o.qty, PX, o.reduce_only)
        if o.leg is Leg.SPOT:
            new_spot += o.signed_effect()
        else:
            new_short += o.signed_effect()
        assert o.reduce_only == (o.leg is Leg.PERP and o.side is Side.BUY)
    if len(orders) == 1:
        assert abs(new_spot - new_short) <= abs(spot - short)
    if len(orders) == 2:
        assert new_spot == new_short


fraction = st.decimals(min_value=D("0.0001"), max_value=1, places=4)
step = st.sampled_from([D("0.001"), D("0.01"), D("0.1"), D("1"), D("0.00001")])
held = st.decimals(min_value=0, max_value=10**6, places=5)


@given(held, held, fraction, step)
def test_a_reduction_never_grows_a_pair(spot: D, short: D, f: D, s: D) -> None:
    """The lock-order invariant (``Executor.reduce_pairs``): the treasury reduces under its own lock, and
    only an increase makes the executor call the treasury back, so a reduced target must be at most both
    legs, on the step the executor rounds to (its own rounding then changes nothing), cut by at least f."""
    new = reduced_qty(spot, short, f, s)
    assert D(0) <= new <= spot and new <= short
    assert new % s == 0
    assert new <= min(spot, short) * (1 - f)


def test_a_reduction_fraction_outside_0_1_is_refused() -> None:
    for bad in (D(0), D("-0.1"), D("1.01")):
        with pytest.raises(ValueError, match="fraction"):
            reduced_qty(D(1), D(1), bad, D("0.001"))


# XRP as the simulator lists it: spot lot 1, perp lot 0.1, 5 USDT minimum notional on both, at 0.6 USDT
XRP = PairFilters(
    MarketFilters("XRP/USDT", D("0.0001"), D("1"), D("1"), D("5")),
    MarketFilters("XRP/USDT:USDT", D("0.0001"), D("0.1"), D("0.1"), D("5")),
)
XRP_PX = D("0.6")


def test_a_residue_below_both_minimums_is_trimmed_not_left_naked() -> None:
    # a partial perp fill left spot 1.899 XRP ahead: neither a 1.8 short nor a 1 XRP sale passes 5 USDT
    assert hedge_repair(D("100.899"), D("99"), D("100"), XRP, XRP_PX) == (None, None)
    # so the spot is sold at the market's smallest order (9 XRP = 5.4 USDT), overshooting the residue ...
    trim = hedge_trim(D("100.899"), D("99"), XRP, XRP_PX)
    assert trim == LegOrder(Leg.SPOT, Side.SELL, D("9"))
    # ... and the short, now 7.101 ahead, is bought back reduce-only (exempt from the notional): equal legs
    top, unwind = hedge_repair(D("91.899"), D("99"), D("100"), XRP, XRP_PX)
    assert unwind == LegOrder(Leg.PERP, Side.BUY, D("7.1"), reduce_only=True) and top is None
    # a longer short is bought back directly; legs within a common step need nothing
    assert hedge_trim(D("10"), D("11.5"), XRP, XRP_PX) == LegOrder(Leg.PERP, Side.BUY, D("1.5"), reduce_only=True)
    assert hedge_trim(D("100.899"), D("100"), XRP, XRP_PX) is None
    # a spot leg smaller than one minimum sale cannot be trimmed (it is dust once the short is gone)
    assert hedge_trim(D("2.9"), D("0"), XRP, XRP_PX) is None
