"""Book walking and fee arithmetic shared by spot and perp order handling."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from bot.domain import floor_to_step
from bot.sim.book import Level

ZERO = Decimal(0)
_FEE_Q = Decimal("0.00000001")


def fee_amount(amount: Decimal, rate: Decimal) -> Decimal:
    """Commission rounded to 8 decimals, as Binance reports it."""
    return (amount * rate).quantize(_FEE_Q, rounding=ROUND_HALF_EVEN)


def crosses(side: str, limit: Decimal, best_bid: Decimal | None, best_ask: Decimal | None) -> bool:
    """Would a limit order at ``limit`` take liquidity right now?"""
    if side == "BUY":
        return best_ask is not None and limit >= best_ask
    return best_bid is not None and limit <= best_bid


def walk(levels: list[Level], qty: Decimal, limit: Decimal | None, side: str) -> list[tuple[Decimal, Decimal]]:
    """Fills (price, qty) taking up to ``qty`` from ``levels`` (best first), not beyond ``limit``."""
    fills: list[tuple[Decimal, Decimal]] = []
    left = qty
    for lvl in levels:
        if left <= 0:
            break
        if limit is not None and ((side == "BUY" and lvl.price > limit) or (side == "SELL" and lvl.price < limit)):
            break
        take = min(left, lvl.qty)
        fills.append((lvl.price, take))
        left -= take
    return fills


def walk_quote(levels: list[Level], quote: Decimal, step: Decimal) -> list[tuple[Decimal, Decimal]]:
    """Fills buying with a quote budget (spot quoteOrderQty), quantities floored to ``step``."""
    fills: list[tuple[Decimal, Decimal]] = []
    left = quote
    for lvl in levels:
        take = min(lvl.qty, floor_to_step(left / lvl.price, step))
        if take <= 0:
            break
        fills.append((lvl.price, take))
        left -= take * lvl.price
    return fills


def filled_qty(fills: list[tuple[Decimal, Decimal]]) -> Decimal:
    return sum((q for _, q in fills), ZERO)


def filled_quote(fills: list[tuple[Decimal, Decimal]]) -> Decimal:
    return sum((p * q for p, q in fills), ZERO)


def cap_fills(fills: list[tuple[Decimal, Decimal]], max_qty: Decimal) -> list[tuple[Decimal, Decimal]]:
    """Keep fills up to ``max_qty`` in total (a forced partial fill)."""
    out: list[tuple[Decimal, Decimal]] = []
    left = max_qty
    for p, q in fills:
        if left <= 0:
            break
        take = min(q, left)
        out.append((p, take))
        left -= take
    return out
