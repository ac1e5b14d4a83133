"""Pure planning of leg orders: what to send to bring a hedged pair to a target base quantity.

Quantities are base units; the perp leg is described by the size of the short (positive number).
Nothing here does I/O, so every rule (rounding, minimums, "never make the hedge worse with one leg")
is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.domain import ZERO, Leg, MarketFilters, Side, ceil_to_step, common_step, floor_to_step


@dataclass(frozen=True, slots=True)
class LegOrder:
    """One order to send on one leg."""

    leg: Leg
    side: Side
    qty: Decimal
    reduce_only: bool = False

    def signed_effect(self) -> Decimal:
        """Change of the leg's hedge quantity (spot holding or short size) when fully filled."""
        if self.leg is Leg.SPOT:
            return self.qty if self.side is Side.BUY else -self.qty
        return self.qty if self.side is Side.SELL else -self.qty


@dataclass(frozen=True, slots=True)
class PairFilters:
    """Filters of both markets of a pair and the step on which both legs can be equal."""

    spot: MarketFilters
    perp: MarketFilters

    @property
    def common_step(self) -> Decimal:
        return common_step(self.spot.step_size, self.perp.step_size)

    def of(self, leg: Leg) -> MarketFilters:
        return self.spot if leg is Leg.SPOT else self.perp


def sendable(filters: MarketFilters, qty: Decimal, price: Decimal, reduce_only: bool = False) -> bool:
    """True when an order of ``qty`` passes the market's step, minimum quantity and minimum notional.

    Reduce-only perp orders are exempt from the minimum notional (as on Binance USD-M), so a small
    short can always be closed.
    """
    if reduce_only:
        return qty >= filters.min_qty and qty > 0 and floor_to_step(qty, filters.step_size) == qty
    return qty > 0 and filters.accepts(qty, price)


def leg_order(leg: Leg, delta: Decimal, filters: MarketFilters) -> LegOrder | None:
    """The order that changes ``leg``'s hedge quantity by ``delta`` (rounded down to the step), or None."""
    qty = floor_to_step(abs(delta), filters.step_size)
    if qty <= 0:
        return None
    if leg is Leg.SPOT:
        return LegOrder(Leg.SPOT, Side.BUY if delta > 0 else Side.SELL, qty)
    if delta > 0:
        return LegOrder(Leg.PERP, Side.SELL, qty)
    return LegOrder(Leg.PERP, Side.BUY, qty, reduce_only=True)


def plan_to_target(
    spot_qty: Decimal, short_qty: Decimal, target: Decimal, filters: PairFilters, price: Decimal
) -> list[LegOrder]:
    """Orders that bring both legs to ``target`` (rounded down to the common step).

    Each leg moves by its own delta, so the same call opens, grows, shrinks, closes, or repairs drift
    (then only the lagging leg trades). A leg below the market minimums is not sent, and a single leg is
    never sent when it would make the hedge worse than it is (that would be a naked position).
    """
    if target < 0:
        raise ValueError("target quantity must be >= 0")
    target = floor_to_step(target, filters.common_step)
    orders: dict[Leg, LegOrder] = {}
    for leg, current in ((Leg.SPOT, spot_qty), (Leg.PERP, short_qty)):
        order = leg_order(leg, target - current, filters.of(leg))
        if order is not None and sendable(filters.of(leg), order.qty, price, order.reduce_only):
            orders[leg] = order
    if len(orders) == 1:
        (only,) = orders.values()
        before = abs(spot_qty - short_qty)
        spot_after = spot_qty + (only.signed_effect() if only.leg is Leg.SPOT else ZERO)
        short_after = short_qty + (only.signed_effect() if only.leg is Leg.PERP else ZERO)
        if abs(spot_after - short_after) > before:
            return []
    return [orders[leg] for leg in (Leg.SPOT, Leg.PERP) if leg in orders]


def hedge_repair(
    spot_qty: Decimal, short_qty: Decimal, target: Decimal, filters: PairFilters, price: Decimal
) -> tuple[LegOrder | None, LegOrder | None]:
    """(top-up, unwind) for a pair whose legs differ after an action.

    The top-up moves the lagging leg (the one further from ``target``) to the other leg's quantity; the
    unwind moves the leading leg back to the lagging one's. Either is None when below the minimums.
    """
    if spot_qty == short_qty:
        return None, None
    spot_gap, short_gap = abs(target - spot_qty), abs(target - short_qty)
    lagging = Leg.SPOT if spot_gap > short_gap else Leg.PERP
    lag_qty, lead_qty = (spot_qty, short_qty) if lagging is Leg.SPOT else (short_qty, spot_qty)
    leading = Leg.PERP if lagging is Leg.SPOT else Leg.SPOT
    top_up = leg_order(lagging, lead_qty - lag_qty, filters.of(lagging))
    unwind = leg_order(leading, lag_qty - lead_qty, filters.of(leading))
    if top_up is not None and not sendable(filters.of(lagging), top_up.qty, price, top_up.reduce_only):
        top_up = None
    if unwind is not None and not sendable(filters.of(leading), unwind.qty, price, unwind.reduce_only):
        unwind = None
    return top_up, unwind


def min_sendable_qty(filters: MarketFilters, price: Decimal) -> Decimal:
    """The smallest market order the market accepts at ``price`` (its lot, minimum quantity and notional)."""
    floor_qty = max(filters.min_qty, filters.min_notional / price if price > 0 else filters.min_qty)
    return max(ceil_to_step(floor_qty, filters.step_size), filters.step_size)


def hedge_trim(spot_qty: Decimal, short_qty: Decimal, filters: PairFilters, price: Decimal) -> LegOrder | None:
    """The order that trims the longer leg when ``hedge_repair`` has nothing sendable (a residue of a lot
    or a few, below both markets' minimum notional, left by partial fills rounded down).

    A longer short is bought back reduce-only (exempt from the minimum notional). A longer spot is sold:
    at least the spot market's minimum order, so the sale may overshoot the residue; the short then
    leads by less than that minimum and its reduce-only buy-back ends the legs equal. None when the
    legs already agree within the common step, or when the spot holding is too small to sell at all.
    """
    gap = spot_qty - short_qty
    if abs(gap) < filters.common_step:
        return None
    if gap < 0:
        order = leg_order(Leg.PERP, gap, filters.perp)
        return order if order is not None and sendable(filters.perp, order.qty, price, True) else None
    qty = max(floor_to_step(gap, filters.spot.step_size), min_sendable_qty(filters.spot, price))
    if qty > floor_to_step(spot_qty, filters.spot.step_size) or not sendable(filters.spot, qty, price):
        return None
    return LegOrder(Leg.SPOT, Side.SELL, qty)


def reduced_qty(spot_qty: Decimal, short_qty: Decimal, fraction: Decimal, step: Decimal) -> Decimal:
    """The target of a pair the treasury reduces by ``fraction`` (in (0, 1]): the hedged quantity less that
    share, rounded down to the common ``step``, so the cut is at least ``fraction``.

    Invariant: never above either leg (a reduction never grows a pair). The executor relies on it to call
    no funder under the treasury's lock (``Executor.reduce_pairs``); tests/execution/test_plan.py checks it.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(ZERO, floor_to_step(min(spot_qty, short_qty) * (1 - fraction), step))
