"""USD-M futures REST endpoints (``/fapi``) over ``SimExchange`` market "perp"."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.emulator import formats, trade_history
from bot.emulator.auth import ParsedRequest, Security
from bot.emulator.common import (
    client_order_id,
    decimal_param,
    limit_param,
    symbol_param,
    symbols_param,
)
from bot.emulator.errors import ApiError, missing_param
from bot.emulator.klines import klines
from bot.emulator.routing import Route
from bot.sim.listing import listing

if TYPE_CHECKING:
    from bot.emulator.app import Emulator

MARKET = "perp"
FAPI_ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]


def ping(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    return {}


def server_time(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    return {"serverTime": emu.now_ms()}


def _digits(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # 'n', 'N', 'F': NaN or infinity has no number of digits
        raise ValueError(f"a step must be a finite number, got {step}")
    return max(-exponent, 0)


def exchange_info(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    rows = []
    for spec in emu.sim.markets(MARKET):
        state = listing(emu.sim, spec.symbol)  # a delisting notice moves deliveryDate; status changes
        rows.append(
            {
                "symbol": spec.symbol,
                "pair": spec.symbol,
                "contractType": "PERPETUAL",
                "deliveryDate": state.delivery_ms,
                "onboardDate": state.onboard_ms,
                "status": state.status,
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": spec.base,
                "quoteAsset": spec.quote,
                "marginAsset": spec.quote,
                "pricePrecision": _digits(spec.tick_size),
                "quantityPrecision": _digits(spec.step_size),
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "triggerProtect": "0.0500",
                "liquidationFee": formats.fmt(spec.liquidation_fee),
                "marketTakeBound": "0.05",
                "settlePlan": 0,
                "filters": formats.perp_filters(spec),
                "orderTypes": FAPI_ORDER_TYPES,
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }
        )
    return {
        "timezone": "UTC",
        "serverTime": emu.now_ms(),
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": emu.limiter.limits.per_minute.get("fapi", 2400),
            },
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": rows,
    }


def _single_or_all(emu: Emulator, req: ParsedRequest, row) -> Any:
    symbol = symbol_param(emu, req, required=False)
    if symbol is not None:
        return row(symbol)
    return [row(s) for s in emu.symbols]


def premium_index(emu: Emulator, req: ParsedRequest) -> Any:
    return _single_or_all(emu, req, lambda s: formats.premium_index(emu.sim.premium_index(s)))


def funding_info(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    """GET /fapi/v1/fundingInfo: only symbols whose cap, floor or interval was adjusted (as Binance)."""
    return [
        {
            "symbol": s,
            "adjustedFundingRateCap": formats.fmt(cap),
            "adjustedFundingRateFloor": formats.fmt(floor),
            "fundingIntervalHours": hours,
            "disclaimer": False,
        }
        for s, cap, floor, hours in emu.sim.funding_info()
        if s in emu.symbols
    ]


def funding_rate(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    symbols = symbols_param(emu, req)
    limit = limit_param(req, 100, 1000)
    start, end = req.int_or_none("startTime"), req.int_or_none("endTime")
    rows = []
    for s in symbols:
        for r in emu.sim.funding_history(s, start, end, limit):
            row = {"symbol": r.symbol, "fundingRate": formats.fmt(r.funding_rate), "fundingTime": r.funding_time}
            row["markPrice"] = formats.fmt(r.mark_price) if r.mark_price is not None else ""
            rows.append(row)
    rows.sort(key=lambda r: (r["fundingTime"], r["symbol"]))
    return rows[:limit] if start is not None else rows[-limit:]


def ticker_24hr(emu: Emulator, req: ParsedRequest) -> Any:
    return _single_or_all(emu, req, lambda s: formats.ticker_24hr(emu.sim.ticker(MARKET, s), spot=False))


def book_ticker(emu: Emulator, req: ParsedRequest) -> Any:
    now = emu.now_ms()
    return _single_or_all(emu, req, lambda s: formats.book_ticker(emu.sim.ticker(MARKET, s), False, now))


def ticker_price(emu: Emulator, req: ParsedRequest) -> Any:
    now = emu.now_ms()
    return _single_or_all(
        emu, req, lambda s: {"symbol": s, "price": formats.fmt(emu.sim.ticker(MARKET, s).last), "time": now}
    )


def depth(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    snap = emu.depth.snapshot(MARKET, symbol, limit_param(req, 500, 1000))
    now = emu.now_ms()
    return {"lastUpdateId": snap["lastUpdateId"], "E": now, "T": now, "bids": snap["bids"], "asks": snap["asks"]}


def perp_klines(emu: Emulator, req: ParsedRequest) -> list[list[Any]]:
    return klines(emu, req, "perp", 500, 1500)


def mark_klines(emu: Emulator, req: ParsedRequest) -> list[list[Any]]:
    rows = klines(emu, req, "mark", 500, 1500)
    for row in rows:  # mark-price klines carry no volume
        row[5], row[7] = "0", "0"
    return rows


# ---- account -----------------------------------------------------------------------------------


def _position_v3(p: Any) -> dict[str, Any]:
    return {
        "symbol": p.symbol,
        "positionSide": "BOTH",
        "positionAmt": formats.fmt(p.position_amt),
        "entryPrice": formats.fmt(p.entry_price),
        "breakEvenPrice": formats.fmt(p.break_even_price),
        "markPrice": formats.fmt(p.mark_price),
        "unRealizedProfit": formats.fmt(p.unrealized_profit),
        "liquidationPrice": formats.fmt(p.liquidation_price),
        "isolatedMargin": formats.fmt(p.isolated_margin),
        "notional": formats.fmt(p.notional),
        "marginAsset": "USDT",
        "isolatedWallet": formats.fmt(p.isolated_wallet),
        "initialMargin": formats.fmt(p.initial_margin),
        "maintMargin": formats.fmt(p.maint_margin),
        "positionInitialMargin": formats.fmt(p.initial_margin),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": p.update_ms,
    }


def _position_v2(p: Any, max_notional: Any) -> dict[str, Any]:
    """GET /fapi/v2/positionRisk row (its own shape: leverage, marginType, maxNotionalValue; no margins)."""
    return {
        "entryPrice": formats.fmt(p.entry_price),
        "breakEvenPrice": formats.fmt(p.break_even_price),
        "marginType": "isolated" if p.margin_type == "ISOLATED" else "cross",
        "isAutoAddMargin": "false",
        "isolatedMargin": formats.fmt(p.isolated_margin),
        "leverage": str(p.leverage),
        "liquidationPrice": formats.fmt(p.liquidation_price),
        "markPrice": formats.fmt(p.mark_price),
        "maxNotionalValue": formats.fmt(max_notional),
        "positionAmt": formats.fmt(p.position_amt),
        "notional": formats.fmt(p.notional),
        "isolatedWallet": formats.fmt(p.isolated_wallet),
        "symbol": p.symbol,
        "unRealizedProfit": formats.fmt(p.unrealized_profit),
        "positionSide": "BOTH",
        "updateTime": p.update_ms,
    }


def _account(emu: Emulator, v2: bool) -> dict[str, Any]:
    """GET /fapi/v3/account, or its older /fapi/v2 shape (fee tier and flags, ``marginAvailable`` per
    asset, every symbol's position row with leverage and max notional)."""
    a = emu.sim.futures_account()
    updated = a.update_ms or emu.now_ms()  # docs/ccxt-binance.md §3: ccxt skips assets with updateTime 0
    usdt: dict[str, Any] = {
        "asset": "USDT",
        "walletBalance": formats.fmt(a.total_wallet_balance),
        "unrealizedProfit": formats.fmt(a.total_unrealized_profit),
        "marginBalance": formats.fmt(a.total_margin_balance),
        "maintMargin": formats.fmt(a.total_maint_margin),
        "initialMargin": formats.fmt(a.total_initial_margin),
        "positionInitialMargin": formats.fmt(a.total_position_initial_margin),
        "openOrderInitialMargin": formats.fmt(a.total_open_order_initial_margin),
        "crossWalletBalance": formats.fmt(a.cross_wallet_balance),
        "crossUnPnl": formats.fmt(a.cross_unrealized_pnl),
        "availableBalance": formats.fmt(a.available_balance),
        "maxWithdrawAmount": formats.fmt(a.max_withdraw_amount),
    }
    if v2:
        usdt["marginAvailable"] = True
    usdt["updateTime"] = updated
    assets = [usdt]
    for asset, amount in sorted(a.other_assets.items()):
        text = formats.fmt(amount)
        row: dict[str, Any] = {
            "asset": asset,
            "walletBalance": text,
            "unrealizedProfit": "0",
            "marginBalance": text,
            "maintMargin": "0",
            "initialMargin": "0",
            "positionInitialMargin": "0",
            "openOrderInitialMargin": "0",
            "crossWalletBalance": text,
            "crossUnPnl": "0",
            "availableBalance": text,
            "maxWithdrawAmount": text,
        }
        if v2:
            row["marginAvailable"] = False
        row["updateTime"] = updated
        assets.append(row)
    totals = {
        "totalInitialMargin": formats.fmt(a.total_initial_margin),
        "totalMaintMargin": formats.fmt(a.total_maint_margin),
        "totalWalletBalance": formats.fmt(a.total_wallet_balance),
        "totalUnrealizedProfit": formats.fmt(a.total_unrealized_profit),
        "totalMarginBalance": formats.fmt(a.total_margin_balance),
        "totalPositionInitialMargin": formats.fmt(a.total_position_initial_margin),
        "totalOpenOrderInitialMargin": formats.fmt(a.total_open_order_initial_margin),
        "totalCrossWalletBalance": formats.fmt(a.cross_wallet_balance),
        "totalCrossUnPnl": formats.fmt(a.cross_unrealized_pnl),
        "availableBalance": formats.fmt(a.available_balance),
        "maxWithdrawAmount": formats.fmt(a.max_withdraw_amount),
    }
    if not v2:
        positions = [
            {
                "symbol": p.symbol,
                "positionSide": "BOTH",
                "positionAmt": formats.fmt(p.position_amt),
                "unrealizedProfit": formats.fmt(p.unrealized_profit),
                "isolatedMargin": formats.fmt(p.isolated_margin),
                "notional": formats.fmt(p.notional),
                "isolatedWallet": formats.fmt(p.isolated_wallet),
                "initialMargin": formats.fmt(p.initial_margin),
                "maintMargin": formats.fmt(p.maint_margin),
                "updateTime": p.update_ms,
            }
            for p in a.positions
        ]
        return {**totals, "assets": assets, "positions": positions}
    positions = [
        {
            "symbol": p.symbol,
            "initialMargin": formats.fmt(p.initial_margin),
            "maintMargin": formats.fmt(p.maint_margin),
            "unrealizedProfit": formats.fmt(p.unrealized_profit),
            "positionInitialMargin": formats.fmt(p.initial_margin),
            "openOrderInitialMargin": "0",
            "leverage": str(p.leverage),
            "isolated": p.margin_type == "ISOLATED",
            "entryPrice": formats.fmt(p.entry_price),
            "maxNotional": formats.fmt(_max_notional(emu, p.symbol, p.leverage)),
            "bidNotional": "0",
            "askNotional": "0",
            "positionSide": "BOTH",
            "positionAmt": formats.fmt(p.position_amt),
            "updateTime": p.update_ms,
        }
        for p in emu.sim.position_risk()
    ]
    head = {
        "feeTier": 0,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
    }
    return {**head, **totals, "assets": assets, "positions": positions}


def account(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    return _account(emu, v2=False)


def account_v2(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    return _account(emu, v2=True)


def position_risk_v3(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    """v3 lists only symbols with a position or open orders (v2 lists every symbol)."""
    symbol = symbol_param(emu, req, required=False)
    with_orders = {o.symbol for o in emu.sim.open_orders(MARKET, symbol)}
    return [_position_v3(p) for p in emu.sim.position_risk(symbol) if p.position_amt or p.symbol in with_orders]


def position_risk_v2(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    symbol = symbol_param(emu, req, required=False)
    return [_position_v2(p, _max_notional(emu, p.symbol, p.leverage)) for p in emu.sim.position_risk(symbol)]


def _max_notional(emu: Emulator, symbol: str, leverage: int) -> Any:
    brackets = emu.sim.leverage_brackets(symbol)[symbol]
    return max((b.notional_cap for b in brackets if b.initial_leverage >= leverage), default=0)


def leverage_bracket(emu: Emulator, req: ParsedRequest) -> Any:
    symbol = symbol_param(emu, req, required=False)
    out = []
    for sym, brackets in emu.sim.leverage_brackets(symbol).items():
        out.append(
            {
                "symbol": sym,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": b.bracket,
                        "initialLeverage": b.initial_leverage,
                        "notionalCap": int(b.notional_cap),
                        "notionalFloor": int(b.notional_floor),
                        "maintMarginRatio": float(b.maint_margin_ratio),
                        "cum": float(b.cum),
                    }
                    for b in brackets
                ],
            }
        )
    return out[0] if symbol is not None else out


def income(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    symbol = symbol_param(emu, req, required=False)
    rows = emu.sim.income(
        symbol,
        req.get("incomeType"),
        req.int_or_none("startTime"),
        req.int_or_none("endTime"),
        limit_param(req, 100, 1000),
    )
    return [
        {
            "symbol": r.symbol,
            "incomeType": r.income_type,
            "income": formats.fmt(r.income),
            "asset": r.asset,
            "info": r.info or r.income_type,
            "time": r.time_ms,
            "tranId": r.tran_id,
            "tradeId": r.trade_id,
        }
        for r in rows
    ]


def set_leverage(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    leverage = req.int_or_none("leverage")
    if leverage is None:
        raise missing_param("leverage")
    result = emu.sim.set_leverage(symbol, leverage)
    return {
        "leverage": int(result["leverage"]),
        "maxNotionalValue": formats.fmt(result["max_notional_value"]),
        "symbol": symbol,
    }


def set_margin_type(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    emu.sim.set_margin_type(symbol, req.require("marginType"))
    return {"code": 200, "msg": "success"}


def position_margin(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """POST /fapi/v1/positionMargin: type 1 adds margin to an isolated position, 2 reduces it."""
    symbol = symbol_param(emu, req)
    if (req.get("positionSide") or "BOTH").upper() != "BOTH":
        raise ApiError(-4061, "Order's position side does not match user's setting.")
    kind = req.int_or_none("type")
    amount = decimal_param(req, "amount", required=True)
    if kind is None:
        raise missing_param("type")
    rec = emu.sim.modify_isolated_margin(symbol, amount, kind)
    return {"amount": float(rec.amount), "code": 200, "msg": "Successfully modify position margin.", "type": rec.kind}


def position_margin_history(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    """GET /fapi/v1/positionMargin/history (Binance: default 500 rows, newest window of 30 days)."""
    symbol = symbol_param(emu, req)
    rows = emu.sim.margin_adjustments(
        symbol,
        req.int_or_none("type"),
        req.int_or_none("startTime"),
        req.int_or_none("endTime"),
        limit_param(req, 500, 500),
    )
    return [
        {
            "symbol": r.symbol,
            "type": r.kind,
            "deltaType": r.delta_type,
            "amount": formats.fmt(r.amount),
            "asset": r.asset,
            "time": r.time_ms,
            "positionSide": "BOTH",
            "clientTranId": "",
        }
        for r in rows
    ]


def commission_rate(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """GET /fapi/v1/commissionRate: the account's maker and taker rates on one perp (``symbol`` required)."""
    symbol = symbol_param(emu, req)
    cfg = emu.sim.config
    return {
        "symbol": symbol,
        "makerCommissionRate": formats.fmt(cfg.perp_maker_fee),
        "takerCommissionRate": formats.fmt(cfg.perp_taker_fee),
        "rpiCommissionRate": formats.fmt(cfg.perp_maker_fee),
    }


def symbol_config(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    symbol = symbol_param(emu, req, required=False)
    brackets = emu.sim.leverage_brackets(symbol)
    out = []
    for p in emu.sim.position_risk(symbol):
        cap = max((b.notional_cap for b in brackets[p.symbol] if b.initial_leverage >= p.leverage), default=0)
        out.append(
            {
                "symbol": p.symbol,
                "marginType": p.margin_type,
                "isAutoAddMargin": False,
                "leverage": p.leverage,
                "maxNotionalValue": formats.fmt(cap),
            }
        )
    return out


def position_mode(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    return {"dualSidePosition": False}


def set_position_mode(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    dual = req.require("dualSidePosition").lower()
    if dual == "false":
        raise ApiError(-4059, "No need to change position side.")
    raise ApiError(-1000, "Hedge mode (dualSidePosition=true) is not supported by the emulator.")


# ---- orders ------------------------------------------------------------------------------------


def new_order(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    side = req.require("side").upper()
    order_type = req.require("type").upper()
    position_side = (req.get("positionSide") or "BOTH").upper()
    if position_side != "BOTH":
        raise ApiError(-4061, "Order's position side does not match user's setting.")
    quantity = decimal_param(req, "quantity")
    price = decimal_param(req, "price")
    if order_type == "LIMIT" and price is None:
        raise missing_param("price")
    reduce_only = (req.get("reduceOnly") or "false").lower() == "true"
    tif = (req.get("timeInForce") or "GTC").upper()
    order = emu.sim.create_order(
        MARKET,
        symbol,
        side,
        order_type,
        quantity=quantity,
        price=price,
        time_in_force=tif,
        reduce_only=reduce_only,
        client_order_id=client_order_id(req),
    )
    return formats.futures_order(order, with_time=False)


def _lookup(req: ParsedRequest) -> tuple[int | None, str | None]:
    order_id = req.int_or_none("orderId")
    orig = req.get("origClientOrderId")
    if order_id is None and orig is None:
        raise ApiError(-1102, "Either orderId or origClientOrderId must be sent.")
    return order_id, orig


def get_order(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    order_id, orig = _lookup(req)
    return formats.futures_order(emu.sim.get_order(MARKET, symbol, order_id=order_id, client_order_id=orig))


def cancel_order(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    order_id, orig = _lookup(req)
    order = emu.sim.cancel_order(MARKET, symbol, order_id=order_id, client_order_id=orig)
    return formats.futures_order(order, with_time=False)


def open_orders(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    symbol = symbol_param(emu, req, required=False)
    return [formats.futures_order(o) for o in emu.sim.open_orders(MARKET, symbol)]


def cancel_all_open_orders(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    for o in emu.sim.open_orders(MARKET, symbol):
        emu.sim.cancel_order(MARKET, symbol, order_id=o.order_id)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def user_trades(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    return [formats.futures_trade(t) for t in trade_history.futures_trades(emu, req, MARKET)]


# ---- user stream -------------------------------------------------------------------------------


def create_listen_key(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    return {"listenKey": emu.hub.listen_keys.create()}


def keepalive_listen_key(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    keys = emu.hub.listen_keys
    key = req.get("listenKey")
    if key is None:  # USD-M keepalive needs no key parameter: it extends the account's active key
        active = [k for k in list(keys._expiry) if keys.is_active(k)]
        if not active:
            raise ApiError(-1125, "This listenKey does not exist.")
        key = active[0]
    keys.keepalive(key)
    return {"listenKey": key}


def close_listen_key(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    keys = emu.hub.listen_keys
    key = req.get("listenKey")
    for k in [key] if key else [k for k in list(keys._expiry) if keys.is_active(k)]:
        keys.close(k)
    return {}


ROUTES = [
    Route("GET", "/fapi/v1/ping", ping),
    Route("GET", "/fapi/v1/time", server_time),
    Route("GET", "/fapi/v1/exchangeInfo", exchange_info),
    Route("GET", "/fapi/v1/premiumIndex", premium_index),
    Route("GET", "/fapi/v1/fundingRate", funding_rate),
    Route("GET", "/fapi/v1/fundingInfo", funding_info),
    Route("GET", "/fapi/v1/ticker/24hr", ticker_24hr),
    Route("GET", "/fapi/v1/ticker/bookTicker", book_ticker),
    Route("GET", "/fapi/v1/ticker/price", ticker_price),
    Route("GET", "/fapi/v2/ticker/price", ticker_price),
    Route("GET", "/fapi/v1/depth", depth),
    Route("GET", "/fapi/v1/klines", perp_klines),
    Route("GET", "/fapi/v1/markPriceKlines", mark_klines),
    Route("GET", "/fapi/v3/account", account, Security.SIGNED),
    Route("GET", "/fapi/v2/account", account_v2, Security.SIGNED),
    Route("GET", "/fapi/v3/positionRisk", position_risk_v3, Security.SIGNED),
    Route("GET", "/fapi/v2/positionRisk", position_risk_v2, Security.SIGNED),
    Route("GET", "/fapi/v1/leverageBracket", leverage_bracket, Security.SIGNED),
    Route("GET", "/fapi/v1/income", income, Security.SIGNED),
    Route("POST", "/fapi/v1/leverage", set_leverage, Security.SIGNED),
    Route("POST", "/fapi/v1/marginType", set_margin_type, Security.SIGNED),
    Route("GET", "/fapi/v1/symbolConfig", symbol_config, Security.SIGNED),
    Route("GET", "/fapi/v1/commissionRate", commission_rate, Security.SIGNED),
    Route("POST", "/fapi/v1/positionMargin", position_margin, Security.SIGNED),
    Route("GET", "/fapi/v1/positionMargin/history", position_margin_history, Security.SIGNED),
    Route("GET", "/fapi/v1/positionSide/dual", position_mode, Security.SIGNED),
    Route("POST", "/fapi/v1/positionSide/dual", set_position_mode, Security.SIGNED),
    Route("POST", "/fapi/v1/order", new_order, Security.SIGNED),
    Route("GET", "/fapi/v1/order", get_order, Security.SIGNED),
    Route("DELETE", "/fapi/v1/order", cancel_order, Security.SIGNED),
    Route("GET", "/fapi/v1/openOrders", open_orders, Security.SIGNED),
    Route("DELETE", "/fapi/v1/allOpenOrders", cancel_all_open_orders, Security.SIGNED),
    Route("GET", "/fapi/v1/userTrades", user_trades, Security.SIGNED),
    Route("POST", "/fapi/v1/listenKey", create_listen_key, Security.USER_STREAM),
    Route("PUT", "/fapi/v1/listenKey", keepalive_listen_key, Security.USER_STREAM),
    Route("DELETE", "/fapi/v1/listenKey", close_listen_key, Security.USER_STREAM),
]
