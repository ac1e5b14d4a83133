"""Spot REST endpoints (``/api/v3``) over ``SimExchange`` market "spot"."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.emulator import formats, trade_history
from bot.emulator.auth import ParsedRequest, Security
from bot.emulator.common import (
    client_order_id,
    decimal_param,
    generated_client_id,
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

MARKET = "spot"
SPOT_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]


def ping(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    return {}


def server_time(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """Simulated time (see SCENARIOS.md: do not enable ccxt's adjustForTimeDifference)."""
    return {"serverTime": emu.now_ms()}


def exchange_info(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    wanted = set(symbols_param(emu, req))
    rows = []
    for spec in emu.sim.markets(MARKET):
        if spec.symbol not in wanted:
            continue
        rows.append(
            {
                "symbol": spec.symbol,
                "status": listing(emu.sim, spec.symbol).spot_status,
                "baseAsset": spec.base,
                "baseAssetPrecision": 8,
                "quoteAsset": spec.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": SPOT_ORDER_TYPES,
                "icebergAllowed": False,
                "ocoAllowed": False,
                "otoAllowed": False,
                "opoAllowed": False,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": False,
                "cancelReplaceAllowed": False,
                "amendAllowed": False,
                "pegInstructionsAllowed": False,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": formats.spot_filters(spec),
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
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
                "limit": emu.limiter.limits.per_minute.get("api", 6000),
            },
        ],
        "exchangeFilters": [],
        "symbols": rows,
        "sors": [],  # no smart order routing here
    }


def ticker_24hr(emu: Emulator, req: ParsedRequest) -> Any:
    single = req.get("symbol") is not None
    rows = [formats.ticker_24hr(emu.sim.ticker(MARKET, s), spot=True) for s in symbols_param(emu, req)]
    return rows[0] if single else rows


def book_ticker(emu: Emulator, req: ParsedRequest) -> Any:
    single = req.get("symbol") is not None
    now = emu.now_ms()
    rows = [formats.book_ticker(emu.sim.ticker(MARKET, s), True, now) for s in symbols_param(emu, req)]
    return rows[0] if single else rows


def ticker_price(emu: Emulator, req: ParsedRequest) -> Any:
    single = req.get("symbol") is not None
    rows = [{"symbol": s, "price": formats.fmt(emu.sim.ticker(MARKET, s).last)} for s in symbols_param(emu, req)]
    return rows[0] if single else rows


def depth(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    return emu.depth.snapshot(MARKET, symbol, limit_param(req, 100, 5000))


def spot_klines(emu: Emulator, req: ParsedRequest) -> list[list[Any]]:
    return klines(emu, req, "spot", 500, 1000)


def account(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """GET /api/v3/account: every asset of the account's markets, zero balances included (Binance's
    ``omitZeroBalances`` defaults to false), numbers with 8 decimals."""
    acct = emu.sim.spot_account()
    assets = set(acct.balances) | {"USDT", "BNB"} | {s.base for s in emu.sim.markets(MARKET)}
    zero = (Decimal(0), Decimal(0))
    omit = (req.get("omitZeroBalances") or "false").lower() == "true"
    balances = [
        {"asset": asset, "free": formats.fmt8(free), "locked": formats.fmt8(locked)}
        for asset in sorted(assets)
        for free, locked in [acct.balances.get(asset, zero)]
        if not (omit and not free and not locked)
    ]
    cfg = emu.sim.config
    return {
        "makerCommission": int(cfg.spot_maker_fee * 10_000),
        "takerCommission": int(cfg.spot_taker_fee * 10_000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": formats.fmt8(cfg.spot_maker_fee),
            "taker": formats.fmt8(cfg.spot_taker_fee),
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": acct.update_ms or emu.now_ms(),
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 1,
    }


def account_commission(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    """GET /api/v3/account/commission: the account's rates on one symbol (Binance's shape: the standard
    commission, no special or tax commission here, and the BNB discount the account gets while
    ``spotBNBBurn`` is on)."""
    symbol = symbol_param(emu, req)
    cfg = emu.sim.config
    zero = formats.fmt8(Decimal(0))
    return {
        "symbol": symbol,
        "standardCommission": {
            "maker": formats.fmt8(cfg.spot_maker_fee),
            "taker": formats.fmt8(cfg.spot_taker_fee),
            "buyer": zero,
            "seller": zero,
        },
        "specialCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
        "taxCommission": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
        "discount": {
            "enabledForAccount": True,
            "enabledForSymbol": True,
            "discountAsset": "BNB",
            "discount": formats.fmt8(cfg.bnb_discount),
        },
    }


def new_order(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    side = req.require("side").upper()
    order_type = req.require("type").upper()
    client_id = client_order_id(req) or generated_client_id()
    quantity = decimal_param(req, "quantity")
    quote_qty = decimal_param(req, "quoteOrderQty")
    price = decimal_param(req, "price")
    if order_type in ("LIMIT", "LIMIT_MAKER"):
        if price is None:
            raise missing_param("price")
        if quantity is None:
            raise missing_param("quantity")
    elif order_type == "MARKET" and quantity is None and quote_qty is None:
        raise ApiError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
    tif = (req.get("timeInForce") or "GTC").upper()
    order = emu.sim.create_order(
        MARKET,
        symbol,
        side,
        order_type,
        quantity=quantity,
        price=price,
        time_in_force=tif,
        client_order_id=client_id,
        quote_order_qty=quote_qty,
    )
    resp_type = (req.get("newOrderRespType") or "FULL").upper()
    return formats.spot_order_response(order, emu.order_trades(MARKET, order), resp_type)


def _lookup(req: ParsedRequest) -> tuple[int | None, str | None]:
    order_id = req.int_or_none("orderId")
    orig = req.get("origClientOrderId")
    if order_id is None and orig is None:
        raise ApiError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    return order_id, orig


def get_order(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    order_id, orig = _lookup(req)
    return formats.spot_order(emu.sim.get_order(MARKET, symbol, order_id=order_id, client_order_id=orig))


def cancel_order(emu: Emulator, req: ParsedRequest) -> dict[str, Any]:
    symbol = symbol_param(emu, req)
    order_id, orig = _lookup(req)
    cancel_id = client_order_id(req) or generated_client_id()
    order = emu.sim.cancel_order(MARKET, symbol, order_id=order_id, client_order_id=orig)
    return formats.spot_cancel_response(order, cancel_id)


def open_orders(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    symbol = symbol_param(emu, req, required=False)
    return [formats.spot_order(o) for o in emu.sim.open_orders(MARKET, symbol)]


def cancel_open_orders(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    symbol = symbol_param(emu, req)
    out = []
    for o in emu.sim.open_orders(MARKET, symbol):
        done = emu.sim.cancel_order(MARKET, symbol, order_id=o.order_id)
        out.append(formats.spot_cancel_response(done, generated_client_id()))
    return out


def my_trades(emu: Emulator, req: ParsedRequest) -> list[dict[str, Any]]:
    return [formats.spot_trade(t) for t in trade_history.spot_trades(emu, req, MARKET)]


ROUTES = [
    Route("GET", "/api/v3/ping", ping),
    Route("GET", "/api/v3/time", server_time),
    Route("GET", "/api/v3/exchangeInfo", exchange_info),
    Route("GET", "/api/v3/ticker/24hr", ticker_24hr),
    Route("GET", "/api/v3/ticker/bookTicker", book_ticker),
    Route("GET", "/api/v3/ticker/price", ticker_price),
    Route("GET", "/api/v3/depth", depth),
    Route("GET", "/api/v3/klines", spot_klines),
    Route("GET", "/api/v3/account", account, Security.SIGNED),
    Route("GET", "/api/v3/account/commission", account_commission, Security.SIGNED),
    Route("POST", "/api/v3/order", new_order, Security.SIGNED),
    Route("GET", "/api/v3/order", get_order, Security.SIGNED),
    Route("DELETE", "/api/v3/order", cancel_order, Security.SIGNED),
    Route("GET", "/api/v3/openOrders", open_orders, Security.SIGNED),
    Route("DELETE", "/api/v3/openOrders", cancel_open_orders, Security.SIGNED),
    Route("GET", "/api/v3/myTrades", my_trades, Security.SIGNED),
]
