"""Collateral arithmetic of the futures wallet, kept pure so every rule is tested without a venue.

Definition used everywhere (and shown to operators):

    collateral ratio = futures margin balance / total short notional at mark price

The margin balance includes unrealised PnL, so a price rise (the short loses) lowers the ratio. With 3x
leverage the initial margin of a position is 1/3 = 0.33 of its notional; the default band
(low 0.35, target 0.5, high 0.7) keeps the wallet above that with room for a sharp move, and maintenance
margin (liquidation) is a few percent, far below the band.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from bot.domain import ZERO

USDT_STEP = Decimal("0.00000001")


class Direction(enum.StrEnum):
    TO_FUTURES = "to_futures"
    TO_SPOT = "to_spot"


@dataclass(frozen=True, slots=True)
class Band:
    target: Decimal
    low: Decimal
    high: Decimal
    min_transfer: Decimal


@dataclass(frozen=True, slots=True)
class TransferNeed:
    direction: Direction
    amount: Decimal


def floor_usdt(amount: Decimal) -> Decimal:
    """Transfers are sent with 8 decimals at most, rounded down (never ask for more than is there)."""
    return amount.quantize(USDT_STEP, rounding=ROUND_DOWN)


def ceil_usdt(amount: Decimal) -> Decimal:
    """Pre-funding rounds up to the transfer precision, so the margin reached is never a hair short."""
    return amount.quantize(USDT_STEP, rounding=ROUND_UP)


def collateral_ratio(margin_balance: Decimal, short_notional: Decimal) -> Decimal | None:
    """margin balance / short notional; None when there is no short (the ratio is undefined)."""
    if short_notional <= 0:
        return None
    return margin_balance / short_notional


def transfer_need(margin_balance: Decimal, short_notional: Decimal, band: Band) -> TransferNeed | None:
    """The transfer that brings the ratio back to the target when it left the band; None inside it.

    Without a short nothing is moved (an entry pre-funds what it needs). Needs below the minimum
    transfer are ignored.
    """
    ratio = collateral_ratio(margin_balance, short_notional)
    if ratio is None:
        return None
    wanted = band.target * short_notional
    if ratio < band.low:
        need = TransferNeed(Direction.TO_FUTURES, floor_usdt(wanted - margin_balance))
    elif ratio > band.high:
        need = TransferNeed(Direction.TO_SPOT, floor_usdt(margin_balance - wanted))
    else:
        return None
    return need if need.amount >= band.min_transfer else None


def reduction_fraction(
    margin_balance: Decimal, short_notional: Decimal, spot_free: Decimal, target_ratio: Decimal
) -> Decimal:
    """Share f of both legs to close so that margin + spot cash (incl. the sold spot) restores the target.

    After selling f of the spot leg (worth about f * N) and buying back f of the short, moving all spot
    cash to futures gives M + F + f*N >= t*N*(1 - f), so f = (t*N - M - F) / (N * (1 + t)), in [0, 1].
    """
    if short_notional <= 0:
        return ZERO
    f = (target_ratio * short_notional - margin_balance - spot_free) / (short_notional * (1 + target_ratio))
    return min(max(f, ZERO), Decimal(1))


def entry_notional_capacity(
    wanted_notional: Decimal,
    margin_balance: Decimal,
    short_notional: Decimal,
    spot_free: Decimal,
    target_ratio: Decimal,
    spot_cost_buffer: Decimal,
) -> Decimal:
    """Largest new notional <= wanted that spot cash can pay for after pre-funding the futures margin.

    Entering X needs X * (1 + buffer) in spot for the buy and t * (N + X) - M moved to futures, both from
    the same spot cash S: X <= (S + M - t*N) / (1 + buffer + t) when the margin is short, X <= S/(1+b)
    when the futures wallet already holds enough.
    """
    if wanted_notional <= 0:
        return ZERO
    shortfall = target_ratio * (short_notional + wanted_notional) - margin_balance
    if shortfall <= 0:
        return max(ZERO, min(wanted_notional, spot_free / (1 + spot_cost_buffer)))
    cap = (spot_free + margin_balance - target_ratio * short_notional) / (1 + spot_cost_buffer + target_ratio)
    return max(ZERO, min(wanted_notional, cap, spot_free / (1 + spot_cost_buffer)))
