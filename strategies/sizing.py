"""Pair sizing: one base quantity valid on BOTH markets, and the caps that bound it.

A hedge is only a hedge when both legs hold the same base quantity, so the pair quantity is a multiple of
the least common multiple of the two step sizes (the coarser step when one divides the other) and must
pass both markets' min qty and min notional. Everything is Decimal and rounds down (never overspend).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from bot.domain import ZERO, MarketFilters, ceil_to_step, common_step, floor_to_step
from strategies.base import LegMarket, Level


@dataclass(frozen=True, slots=True)
class SizingFilters:
    """Both markets' filters with the prices used for min-notional checks (the bids: conservative)."""

    spot: MarketFilters
    perp: MarketFilters
    spot_price: Decimal
    perp_price: Decimal

    @classmethod
    def of(cls, spot: LegMarket, perp: LegMarket) -> SizingFilters:
        return cls(spot.filters, perp.filters, spot.bid, perp.bid)

    @property
    def step(self) -> Decimal:
        return common_step(self.spot.step_size, self.perp.step_size)

    def round(self, qty: Decimal) -> Decimal:
        """Largest common-step multiple <= qty (0 for non-positive input)."""
        if qty <= 0:
            return ZERO
        return floor_to_step(qty, self.step)

    def min_qty(self) -> Decimal:
        """Smallest pair quantity both markets accept."""
        need = max(
            self.spot.min_qty,
            self.perp.min_qty,
            self.spot.min_notional / self.spot_price,
            self.perp.min_notional / self.perp_price,
        )
        return max(ceil_to_step(need, self.step), self.step)

    def max_order_qty(self) -> Decimal | None:
        """The largest market order both legs accept (MARKET_LOT_SIZE maxQty), None when neither caps it."""
        caps = [f.max_market_qty for f in (self.spot, self.perp) if f.max_market_qty is not None]
        return min(caps) if caps else None

    def order_violation(self, current: Decimal, target: Decimal) -> tuple[str, str] | None:
        """None when the orders that take a held pair from ``current`` to ``target`` pass both markets.

        A growth sends a spot buy and a perp sell of the difference, each held to its market's minimum
        quantity and notional (a small short increase below BTCUSDT's 100 USDT fails on Binance); a
        reduction sends a spot sell (spot's NOTIONAL applies) and a reduce-only perp buy (exempt from the
        perp's minimum notional)."""
        delta = target - current
        if delta == 0:
            return None
        legs = [(self.spot, self.spot_price)]
        if delta > 0:
            legs.append((self.perp, self.perp_price))
        size = abs(delta)
        for f, price in legs:
            if size < f.min_qty:
                return "skip_order_below_min_qty", f"the order of {size} is below {f.symbol} min qty {f.min_qty}"
            if size * price < f.min_notional:
                return (
                    "skip_order_below_min_notional",
                    f"the order of {size} x {price} = {size * price} USDT is below {f.symbol} min notional "
                    f"{f.min_notional}",
                )
        return None

    def violation(self, qty: Decimal) -> tuple[str, str] | None:
        """None when ``qty`` passes both markets, else (rule, sentence) naming the first filter missed."""
        if qty <= 0:
            return "skip_below_min_qty", f"the size rounds to 0 on the common step {self.step}"
        for f, price in ((self.spot, self.spot_price), (self.perp, self.perp_price)):
            if qty < f.min_qty:
                return "skip_below_min_qty", f"{qty} is below {f.symbol} min qty {f.min_qty}"
            if qty * price < f.min_notional:
                return (
                    "skip_below_min_notional",
                    f"{qty} x {price} = {qty * price} USDT is below {f.symbol} min notional {f.min_notional}",
                )
            if floor_to_step(qty, f.step_size) != qty:
                return "skip_off_step", f"{qty} is not a multiple of {f.symbol} step {f.step_size}"
        return None


def depth_qty(levels: tuple[Level, ...]) -> Decimal:
    return sum((q for _, q in levels), ZERO)


def liquidity_cap_qty(
    spot: LegMarket, perp: LegMarket, liquidity_fraction: Decimal, max_slippage_bps: Decimal
) -> Decimal | None:
    """Largest base quantity the books allow, or None when nothing limits it.

    With depth: ``liquidity_fraction`` of the thinnest of the four sides a round trip touches (spot asks
    and perp bids in, spot bids and perp asks out). With only a slippage model: the size whose modelled
    impact reaches ``max_slippage_bps``.
    """
    caps: list[Decimal] = []
    for leg in (spot, perp):
        if leg.has_depth:
            caps.append(liquidity_fraction * min(depth_qty(leg.bids), depth_qty(leg.asks)))
        elif leg.slippage is not None and leg.slippage.bps_at_reference > 0:
            notional = max_slippage_bps / leg.slippage.bps_at_reference * leg.slippage.reference_notional
            caps.append(notional / leg.mid)
    return min(caps) if caps else None


def capital_cap_qty(capital: Decimal, price: Decimal, capital_per_notional: Decimal) -> Decimal:
    """Base quantity whose pair uses at most ``capital`` (spot leg + perp collateral) at ``price``."""
    if capital <= 0:
        return ZERO
    return capital / (price * capital_per_notional)


def capital_used(qty: Decimal, price: Decimal, capital_per_notional: Decimal) -> Decimal:
    return qty * price * capital_per_notional


Number = TypeVar("Number", Decimal, float)


def resize_band(current: Number, tolerance: Number) -> tuple[Number, Number]:
    """The sizes a held pair of ``current`` keeps (a target inside moves nothing): within ``tolerance`` of
    it either way. The strategies decide with it in Decimal, their quiet-hours bounds in float."""
    return current - tolerance * current, current + tolerance * current
