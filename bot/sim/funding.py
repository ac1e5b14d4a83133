"""Funding payment arithmetic (Binance USD-M)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

_Q = Decimal("0.00000001")


def funding_payment(position_amt: Decimal, mark_price: Decimal, rate: Decimal) -> Decimal:
    """What the account receives at a settlement: ``-amt * mark * rate``.

    A positive rate makes longs pay and shorts receive; the position is the one held at the instant.
    """
    return (-position_amt * mark_price * rate).quantize(_Q, rounding=ROUND_HALF_EVEN)
