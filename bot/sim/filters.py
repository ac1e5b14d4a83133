"""Binance's order filters, checked before an order reaches the book, with Binance's codes and messages.

USD-M (/fapi/v1/order): LOT_SIZE and, for MARKET orders, MARKET_LOT_SIZE (-4003 zero, -4004 below min,
-4005 above max, -1111 finer than the step's precision, -4023 off the step); PRICE_FILTER (-4013, -4002,
-4014); PERCENT_PRICE for limit prices against the mark (-4016 above ``mark * multiplierUp``, -4024 below
``mark * multiplierDown``) and for market orders against the counterparty's best price (-4131);
MIN_NOTIONAL (-4164), which reduce-only orders are exempt from ("unless you choose reduce only").

Spot (/api/v3/order): -1013 "Filter failure: <NAME>" for PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE,
PERCENT_PRICE_BY_SIDE (limit buys against ``bidMultiplier*``, sells against ``askMultiplier*``, of the
reference price; Binance uses the average price of the last ``avgPriceMins`` minutes, the simulator its
current price) and NOTIONAL (market orders only when ``applyMinToMarket``).
"""

from __future__ import annotations

from decimal import Decimal

from bot.sim import errors as E
from bot.sim.markets import MarketSpec


def _finer_than(value: Decimal, step: Decimal) -> bool:
    """More decimals than the step's own precision (Binance answers -1111 for those)."""
    mine, theirs = value.normalize().as_tuple().exponent, step.normalize().as_tuple().exponent
    if isinstance(mine, str) or isinstance(theirs, str):  # 'n', 'N', 'F': NaN or infinity
        raise ValueError(f"{value} against the step {step}: not a finite number")
    return mine < theirs


def check_perp(
    spec: MarketSpec,
    order_type: str,
    side: str,
    qty: Decimal | None,
    price: Decimal | None,
    reduce_only: bool,
    mark: Decimal,
    best_counter: Decimal | None,
    reference: Decimal,
) -> Decimal:
    """The order's quantity when it passes every USD-M filter; else the ``SimError`` Binance sends.

    ``best_counter`` is the best price on the side a market order takes from; ``reference`` the price a
    market order's notional is valued at."""
    if qty is None or qty <= 0:
        raise E.quantity_not_positive()
    if _finer_than(qty, spec.step_size):
        raise E.precision_over_max()
    if qty % spec.step_size:
        raise E.qty_not_on_step()
    is_market = order_type == "MARKET"
    if qty < spec.min_qty:
        raise E.quantity_below_min()
    if qty > (spec.market_order_max_qty if is_market else spec.max_qty):
        raise E.quantity_above_max()
    if not is_market:
        if price is None or price <= 0:
            raise E.bad_parameter("price")
        if price < spec.min_price:
            raise E.price_below_min()
        if price > spec.max_price:
            raise E.price_above_max()
        if _finer_than(price, spec.tick_size) or price % spec.tick_size:
            raise E.price_not_tick()
        up, down = (spec.bid_up, spec.bid_down) if side == "BUY" else (spec.ask_up, spec.ask_down)
        if up is not None and price > mark * up:
            raise E.price_above_multiplier()
        if down is not None and price < mark * down:
            raise E.price_below_multiplier()
    elif best_counter is not None:
        up, down = (spec.bid_up, spec.bid_down) if side == "BUY" else (spec.ask_up, spec.ask_down)
        if (side == "BUY" and up is not None and best_counter > mark * up) or (
            side == "SELL" and down is not None and best_counter < mark * down
        ):
            raise E.market_outside_percent_price()
    if not reduce_only and qty * (price if price is not None else reference) < spec.min_notional:
        raise E.perp_min_notional(spec.min_notional)
    return qty


def check_spot(
    spec: MarketSpec,
    order_type: str,
    side: str,
    qty: Decimal | None,
    price: Decimal | None,
    quote_qty: Decimal | None,
    reference: Decimal,
) -> None:
    """Raises the ``SimError`` Binance sends when a spot order fails a filter; returns when it passes.

    ``reference`` is the price filters are checked against (the market's current price)."""
    is_market = order_type == "MARKET"
    if not is_market:
        if price is None or price <= 0 or price < spec.min_price or price > spec.max_price or price % spec.tick_size:
            raise E.filter_failure("PRICE_FILTER")
        up, down = (spec.bid_up, spec.bid_down) if side == "BUY" else (spec.ask_up, spec.ask_down)
        if (up is not None and price > reference * up) or (down is not None and price < reference * down):
            raise E.filter_failure("PERCENT_PRICE_BY_SIDE")
    if is_market and quote_qty is not None:
        if qty is not None or side != "BUY":
            raise E.bad_parameter("quoteOrderQty")
        if spec.min_notional_on_market and quote_qty < spec.min_notional:
            raise E.filter_failure("NOTIONAL")
        return
    if qty is None or qty < spec.min_qty or qty > spec.max_qty or qty % spec.step_size:
        raise E.filter_failure("LOT_SIZE")
    if is_market and spec.market_max_qty is not None and qty > spec.market_max_qty:
        raise E.filter_failure("MARKET_LOT_SIZE")
    if (not is_market or spec.min_notional_on_market) and qty * (price or reference) < spec.min_notional:
        raise E.filter_failure("NOTIONAL")
