"""Binance error codes and exact messages, so the emulator and SimVenue fail the way Binance does.

The messages matter: ccxt maps some errors by exact message before looking at the code
(see docs/ccxt-binance.md §4).
"""

from __future__ import annotations

from decimal import Decimal


class SimError(Exception):
    """An exchange-side rejection carrying Binance's ``code``, exact ``msg`` and HTTP status."""

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status

    def body(self) -> dict[str, object]:
        """The JSON body Binance sends for this error."""
        return {"code": self.code, "msg": self.msg}


def spot_insufficient_balance() -> SimError:
    return SimError(-2010, "Account has insufficient balance for requested action.")


def spot_would_take() -> SimError:
    """Spot LIMIT_MAKER that would cross the book."""
    return SimError(-2010, "Order would immediately match and take.")


def margin_insufficient() -> SimError:
    return SimError(-2019, "Margin is insufficient.")


def balance_insufficient() -> SimError:
    return SimError(-2018, "Balance is insufficient.")


def transfer_insufficient() -> SimError:
    return SimError(-5013, "Asset transfer failed: insufficient balance")


def filter_failure(name: str) -> SimError:
    """Spot filter rejection, e.g. ``filter_failure("NOTIONAL")`` or ``"LOT_SIZE"``, ``"PRICE_FILTER"``."""
    return SimError(-1013, f"Filter failure: {name}")


def perp_min_notional(min_notional: Decimal) -> SimError:
    return SimError(
        -4164, f"Order's notional must be no smaller than {_plain(min_notional)} (unless you choose reduce only)."
    )


def quantity_not_positive() -> SimError:
    return SimError(-4003, "Quantity less than or equal to zero.")


def quantity_below_min() -> SimError:
    return SimError(-4004, "Quantity less than min quantity.")


def qty_not_on_step() -> SimError:
    return SimError(-4023, "Qty not increased by step size.")


def quantity_above_max() -> SimError:
    """LOT_SIZE maxQty, or MARKET_LOT_SIZE maxQty for a market order (Binance answers -4005 for both)."""
    return SimError(-4005, "Quantity greater than max quantity.")


def price_below_min() -> SimError:
    return SimError(-4013, "Price less than min price.")


def price_above_max() -> SimError:
    return SimError(-4002, "Price greater than max price.")


def price_above_multiplier() -> SimError:
    """PERCENT_PRICE: a limit price above ``mark * multiplierUp``."""
    return SimError(-4016, "Price is higher than mark price multiplier cap.")


def price_below_multiplier() -> SimError:
    """PERCENT_PRICE: a limit price below ``mark * multiplierDown``."""
    return SimError(-4024, "Price is lower than mark price multiplier floor.")


def market_outside_percent_price() -> SimError:
    return SimError(-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit")


def price_not_tick() -> SimError:
    return SimError(-4014, "Price not increased by tick size.")


def precision_over_max() -> SimError:
    return SimError(-1111, "Precision is over the maximum defined for this asset.")


def reduce_only_rejected() -> SimError:
    return SimError(-2022, "ReduceOnly Order is rejected.")


def unknown_order() -> SimError:
    """Cancel of an order the exchange does not know (or no longer has open)."""
    return SimError(-2011, "Unknown order sent.")


def order_does_not_exist() -> SimError:
    """Fetch of an order id the exchange never saw."""
    return SimError(-2013, "Order does not exist.")


def margin_type_unchanged() -> SimError:
    return SimError(-4046, "No need to change margin type.")


def margin_type_with_position() -> SimError:
    return SimError(-4048, "Margin type cannot be changed if there exists position.")


def margin_type_with_open_orders() -> SimError:
    return SimError(-4047, "Margin type cannot be changed if there exists open orders.")


def amount_not_positive() -> SimError:
    return SimError(-4055, "Amount must be positive.")


def isolated_margin_no_position() -> SimError:
    return SimError(-4054, "Cannot add position margin: position is 0.")


def isolated_margin_on_cross() -> SimError:
    """positionMargin on a cross position: Binance's exact answer is not documented (code assumed)."""
    return SimError(-4053, "Position margin can only be modified on an isolated position.")


def cross_balance_insufficient() -> SimError:
    return SimError(-4050, "Cross balance insufficient.")


def isolated_balance_insufficient() -> SimError:
    return SimError(-4051, "Isolated balance insufficient.")


def invalid_leverage(leverage: object) -> SimError:
    return SimError(-4028, f"Leverage {leverage} is not valid")


def leverage_exceeds_position() -> SimError:
    return SimError(-2027, "Exceeded the maximum allowable position at current leverage.")


def post_only_rejected() -> SimError:
    """USD-M GTX order that would take liquidity."""
    return SimError(
        -5022,
        "Due to the order could not be executed as maker, the Post Only order will be rejected. "
        "The order will not be recorded in the order book",
    )


def invalid_symbol() -> SimError:
    return SimError(-1121, "Invalid symbol.")


def bad_parameter(name: str) -> SimError:
    """A mandatory parameter missing or malformed (e.g. a zero or dust transfer amount)."""
    return SimError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def invalid_order_type() -> SimError:
    return SimError(-1116, "Invalid orderType.")


def invalid_side() -> SimError:
    return SimError(-1117, "Invalid side.")


def invalid_time_in_force() -> SimError:
    return SimError(-1115, "Invalid timeInForce.")


def duplicate_client_order_id() -> SimError:
    return SimError(-4116, "ClientOrderId is duplicated.")


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
