"""Binance JSON shapes built from simulation objects (numbers as strings, ids and times as ints)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any


def fmt(value: Any) -> str:
    """Plain decimal text, no exponent: Decimal('1E-5') -> '0.00001'."""
    if value is None:
        return "0"
    return format(value if isinstance(value, Decimal) else Decimal(str(value)), "f")


def fmt8(value: Any) -> str:
    """Spot's number text: always 8 decimals ('0.00000000', '241.00000000'), as /api/v3 sends them."""
    d = value if isinstance(value, Decimal) else Decimal(str(value or 0))
    return format(d.quantize(Decimal("0.00000001")), "f")


def get(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute or key access, so sim results may be dataclasses or dicts."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _pairs(side: Iterable[Any]) -> list[tuple[Decimal, Decimal]]:
    out = []
    for level in side:
        if isinstance(level, list | tuple):
            price, qty = level[0], level[1]
        else:
            price, qty = get(level, "price"), get(level, "qty", get(level, "quantity"))
        out.append((Decimal(str(price)), Decimal(str(qty))))
    return out


def book_levels(book: Any) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """(bids, asks) as Decimal pairs from whatever the sim's ``order_book`` returns."""
    return _pairs(get(book, "bids", [])), _pairs(get(book, "asks", []))


# ---- orders and trades -----------------------------------------------------------------------


def _order_common(o: Any) -> dict[str, Any]:
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "clientOrderId": o.client_order_id,
        "price": fmt(o.price),
        "origQty": fmt(o.orig_qty),
        "executedQty": fmt(o.executed_qty),
    }


def _spot_common(o: Any) -> dict[str, Any]:
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "clientOrderId": o.client_order_id,
        "price": fmt8(o.price),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
    }


def spot_order(o: Any) -> dict[str, Any]:
    """GET /api/v3/order (and openOrders rows)."""
    out = _spot_common(o)
    out.update(
        {
            "orderListId": -1,
            "cummulativeQuoteQty": fmt8(o.cum_quote),
            "status": o.status,
            "timeInForce": o.time_in_force,
            "type": o.type,
            "side": o.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": o.time_ms,
            "updateTime": o.update_ms,
            "isWorking": True,
            "workingTime": o.time_ms,
            "origQuoteOrderQty": fmt8(o.quote_order_qty),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
    )
    return out


def spot_order_response(o: Any, trades: list[Any], resp_type: str) -> dict[str, Any]:
    """POST /api/v3/order with newOrderRespType ACK, RESULT or FULL (ccxt sends FULL)."""
    ack = {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "transactTime": o.time_ms,
    }
    if resp_type == "ACK":
        return ack
    out = {
        **ack,
        "price": fmt8(o.price),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
        "origQuoteOrderQty": fmt8(o.quote_order_qty),
        "cummulativeQuoteQty": fmt8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "workingTime": o.time_ms,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    if resp_type == "FULL":
        out["fills"] = [
            {
                "price": fmt8(t.price),
                "qty": fmt8(t.qty),
                "commission": fmt8(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.trade_id,
            }
            for t in trades
        ]
    return out


def spot_cancel_response(o: Any, cancel_client_id: str) -> dict[str, Any]:
    """DELETE /api/v3/order: Binance gives the cancel its own clientOrderId."""
    return {
        "symbol": o.symbol,
        "origClientOrderId": o.client_order_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": o.update_ms,
        "price": fmt8(o.price),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
        "origQuoteOrderQty": fmt8(o.quote_order_qty),
        "cummulativeQuoteQty": fmt8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def futures_order(o: Any, with_time: bool = True) -> dict[str, Any]:
    """USD-M order (POST RESULT, GET, DELETE, openOrders): carries positionSide and cumQuote.

    See docs/ccxt-binance.md §3.
    """
    out = _order_common(o)
    out.update(
        {
            "status": o.status,
            "timeInForce": o.time_in_force,
            "type": o.type,
            "side": o.side,
            "avgPrice": fmt(o.avg_price),
            "cumQuote": fmt(o.cum_quote),
            "reduceOnly": bool(o.reduce_only),
            "closePosition": False,
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": o.orig_type or o.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "updateTime": o.update_ms,
        }
    )
    if with_time:  # GET order / openOrders carry the placement time; POST and DELETE answers carry cumQty
        out["time"] = o.time_ms
    else:
        out["cumQty"] = fmt(o.executed_qty)
    return out


def spot_trade(t: Any) -> dict[str, Any]:
    return {
        "symbol": t.symbol,
        "id": t.trade_id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": fmt8(t.price),
        "qty": fmt8(t.qty),
        "quoteQty": fmt8(t.quote_qty),
        "commission": fmt8(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time_ms,
        "isBuyer": t.side == "BUY",
        "isMaker": bool(t.maker),
        "isBestMatch": True,
    }


def futures_trade(t: Any) -> dict[str, Any]:
    """/fapi/v1/userTrades row: ``buyer``/``maker``, never ``isMaker`` (ccxt would take it for spot)."""
    return {
        "symbol": t.symbol,
        "id": t.trade_id,
        "orderId": t.order_id,
        "side": t.side,
        "price": fmt(t.price),
        "qty": fmt(t.qty),
        "realizedPnl": fmt(t.realized_pnl),
        "quoteQty": fmt(t.quote_qty),
        "commission": fmt(t.commission),
        "commissionAsset": t.commission_asset,
        "marginAsset": "USDT",
        "time": t.time_ms,
        "positionSide": "BOTH",
        "buyer": t.side == "BUY",
        "maker": bool(t.maker),
    }


# ---- market data -----------------------------------------------------------------------------


def _change(t: Any) -> tuple[str, str]:
    change = t.last - t.open
    pct = (change / t.open * 100).quantize(Decimal("0.001")) if t.open else Decimal(0)
    return fmt(change), fmt(pct)


Q8 = Decimal("0.00000001")
_Q8 = Q8


def qty8(value: Decimal) -> str:
    """Volumes rounded to 8 decimals (the sim sums float candle volumes)."""
    return fmt(Decimal(value).quantize(_Q8).normalize()) if value else "0"


def _vwap(t: Any) -> str:
    return fmt((t.quote_volume / t.volume).quantize(Decimal("0.00000001"))) if t.volume else fmt(t.last)


def ticker_24hr(t: Any, spot: bool) -> dict[str, Any]:
    """Spot rows carry ``bidQty`` (ccxt drops spot rows without it); fapi rows have no book fields.

    See docs/ccxt-binance.md §3.
    """
    change, pct = _change(t)
    out: dict[str, Any] = {
        "symbol": t.symbol,
        "priceChange": change,
        "priceChangePercent": pct,
        "weightedAvgPrice": _vwap(t),
    }
    if spot:
        out["prevClosePrice"] = fmt(t.open)
    out.update({"lastPrice": fmt(t.last), "lastQty": "0"})
    if spot:
        out.update({"bidPrice": fmt(t.bid), "bidQty": fmt(t.bid_qty), "askPrice": fmt(t.ask), "askQty": fmt(t.ask_qty)})
    out.update(
        {
            "openPrice": fmt(t.open),
            "highPrice": fmt(t.high),
            "lowPrice": fmt(t.low),
            "volume": qty8(t.volume),
            "quoteVolume": qty8(t.quote_volume),
            "openTime": t.open_ms,
            "closeTime": t.close_ms,
            "firstId": 1,
            "lastId": 1,
            "count": 1,
        }
    )
    return out


def book_ticker(t: Any, spot: bool, now_ms: int) -> dict[str, Any]:
    out = {
        "symbol": t.symbol,
        "bidPrice": fmt(t.bid),
        "bidQty": fmt(t.bid_qty),
        "askPrice": fmt(t.ask),
        "askQty": fmt(t.ask_qty),
    }
    if not spot:
        out["time"] = now_ms  # docs/ccxt-binance.md §3: "time" marks a contract ticker
    return out


def premium_index(p: Any) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "markPrice": fmt(p.mark_price),
        "indexPrice": fmt(p.index_price),
        "estimatedSettlePrice": fmt(p.estimated_settle_price),
        "lastFundingRate": fmt(p.last_funding_rate),
        "interestRate": fmt(p.interest_rate),
        "nextFundingTime": p.next_funding_time,
        "time": p.time_ms,
    }


def kline_row(k: Any) -> list[Any]:
    quote = k.volume * k.close
    return [
        k.open_ms,
        fmt(k.open),
        fmt(k.high),
        fmt(k.low),
        fmt(k.close),
        fmt(k.volume),
        k.close_ms,
        fmt(quote),
        0,
        "0",
        "0",
        "0",
    ]


# ---- exchange info -----------------------------------------------------------------------------


def spot_filters(spec: Any) -> list[dict[str, Any]]:
    """The spot symbol's ``filters`` in Binance's order (GET /api/v3/exchangeInfo)."""
    side_up = spec.bid_up if spec.bid_up is not None else Decimal(5)
    side_down = spec.bid_down if spec.bid_down is not None else Decimal("0.2")
    ask_up = spec.ask_up if spec.ask_up is not None else Decimal(5)
    ask_down = spec.ask_down if spec.ask_down is not None else Decimal("0.2")
    market_max = spec.market_max_qty if spec.market_max_qty is not None else spec.max_qty
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": fmt(spec.min_price),
            "maxPrice": fmt(spec.max_price),
            "tickSize": fmt(spec.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": fmt(spec.min_qty),
            "maxQty": fmt(spec.max_qty),
            "stepSize": fmt(spec.step_size),
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": fmt(market_max), "stepSize": "0.00000000"},
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": fmt(side_up),
            "bidMultiplierDown": fmt(side_down),
            "askMultiplierUp": fmt(ask_up),
            "askMultiplierDown": fmt(ask_down),
            "avgPriceMins": 5,
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": fmt(spec.min_notional),
            "applyMinToMarket": bool(spec.min_notional_on_market),
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ]


def perp_filters(spec: Any) -> list[dict[str, Any]]:
    """The USD-M symbol's ``filters`` in Binance's order (GET /fapi/v1/exchangeInfo)."""
    up = spec.bid_up if spec.bid_up is not None else Decimal("1.0500")
    down = spec.bid_down if spec.bid_down is not None else Decimal("0.9500")
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": fmt(spec.min_price),
            "maxPrice": fmt(spec.max_price),
            "tickSize": fmt(spec.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": fmt(spec.min_qty),
            "maxQty": fmt(spec.max_qty),
            "stepSize": fmt(spec.step_size),
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": fmt(spec.min_qty),
            "maxQty": fmt(spec.market_order_max_qty),
            "stepSize": fmt(spec.step_size),
        },
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": fmt(spec.min_notional)},
        {"filterType": "PERCENT_PRICE", "multiplierUp": fmt(up), "multiplierDown": fmt(down), "multiplierDecimal": "4"},
    ]
