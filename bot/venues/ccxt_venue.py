"""``CcxtVenue``: the Venue protocol over one mixed ccxt.pro ``binance`` instance (spot + USD-M linear).

Every call follows the verified surface map (docs/ccxt-binance.md). Amounts that matter
are read from the raw Binance strings in ``info`` so no float ever reaches a balance or an order size.
Works the same against Binance and against the emulator (``bot.venues.ccxt_factory.build_client``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import ccxt

from bot.domain import (
    HOUR_MS,
    ZERO,
    Leg,
    MarketFilters,
    Side,
    funding_interval_hours,
    perp_symbol,
    spot_symbol,
    to_decimal,
)
from bot.venues.base import (
    CommissionRates,
    FundingIncome,
    FundingInfo,
    FundingSettlement,
    FuturesAccount,
    MarginChange,
    MarginMode,
    MarketListing,
    MarkUpdate,
    OrderBook,
    OrderRequest,
    OrderState,
    OrderType,
    PairMarkets,
    Position,
    TransferResult,
    TransferStatus,
    UserEvent,
    VenueFill,
    Wallet,
    WalletBalance,
    order_status,
)
from bot.venues.ccxt_user_stream import CcxtUserStream
from bot.venues.errors import Backoff, RefusedBeforeSending, banned_until_ms, safe_error_text

log = logging.getLogger(__name__)

# ccxt account names: 'swap' resolves to USD-M (MAIN_UMFUTURE / UMFUTURE_MAIN); never 'future'
# (docs/ccxt-binance.md §7.1).
_CCXT_ACCOUNT: dict[str, str] = {"spot": "spot", "futures": "swap"}
_FAPI_DEPTHS = (5, 10, 20, 50, 100, 500, 1000)
_PAGE = 1000
# GET /sapi/v1/asset/transfer: one call per type, pages of at most 100 rows (`size`, `current`)
TRANSFER_WALLETS: dict[str, tuple[Wallet, Wallet]] = {
    "MAIN_UMFUTURE": ("spot", "futures"),
    "UMFUTURE_MAIN": ("futures", "spot"),
}
TRANSFER_STATUS: dict[str, TransferStatus] = {"CONFIRMED": "done", "PENDING": "pending", "FAILED": "failed"}
_TRANSFER_PAGE = 100
_LINEAR_SPAN_MS = 7 * 24 * HOUR_MS  # USD-M userTrades: startTime..endTime at most 7 days


def dec(value: object, default: Decimal | None = None) -> Decimal | None:
    """Decimal from a Binance string (or number); ``default`` for None/empty."""
    if value is None or value == "":
        return default
    return to_decimal(value)


def _req(value: object) -> Decimal:
    """Decimal from a field that must be present."""
    if value is None or value == "":
        raise ccxt.BadResponse(f"missing numeric field in venue response: {value!r}")
    return to_decimal(value)


@contextlib.contextmanager
def parsing(what: str) -> Iterator[None]:
    """An answer without the fields it must have is ``ccxt.BadResponse``: a read to retry, a write whose
    outcome is unknown. ccxt hands a truncated or garbled body back as text, so reading it fails deep
    inside with TypeError/KeyError/ValueError, which would otherwise pass for a programming error."""
    try:
        yield
    except ccxt.BadResponse as exc:  # a missing field (``_req``): name the answer it was missing from
        raise ccxt.BadResponse(f"{what}: the venue's answer did not parse ({exc})") from exc
    except ccxt.BaseError:
        raise
    except (TypeError, KeyError, ValueError, ArithmeticError, AttributeError, IndexError) as exc:
        raise ccxt.BadResponse(f"{what}: the venue's answer did not parse ({type(exc).__name__}: {exc})") from exc


def filters_from_market(market: dict[str, Any]) -> MarketFilters:
    """Binance filters from ``market['info']['filters']`` strings (never ccxt's float precision)."""
    by_type = {f.get("filterType"): f for f in market.get("info", {}).get("filters", [])}
    price = by_type.get("PRICE_FILTER", {})
    lot = by_type.get("LOT_SIZE", {})
    notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL") or {}
    tick = dec(price.get("tickSize"))
    step = dec(lot.get("stepSize"))
    if tick is None or step is None:
        raise ccxt.BadResponse(f"{market.get('symbol')}: exchangeInfo lacks PRICE_FILTER/LOT_SIZE")
    min_notional = dec(notional.get("minNotional"), None) or dec(notional.get("notional"), ZERO)
    market_max = dec(by_type.get("MARKET_LOT_SIZE", {}).get("maxQty"), None)
    return MarketFilters(
        symbol=market["symbol"],
        tick_size=tick.normalize(),
        step_size=step.normalize(),
        min_qty=(dec(lot.get("minQty"), ZERO) or ZERO).normalize(),
        min_notional=(min_notional or ZERO).normalize(),
        max_market_qty=market_max.normalize() if market_max else None,
    )


def _order_type(raw: str) -> OrderType:
    return "market" if raw.upper() == "MARKET" else "limit"


_POLL_BACKOFF = Backoff(base_s=5.0, cap_s=120.0)  # rate-limited mark polls in a row without a named ban


def _flag(value: object) -> bool:
    """A JSON boolean (Binance sends true/false; a string 'true'/'false' is read the same way)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"not a boolean: {value!r}")
    return text == "true"


def _commission_part(raw: dict[str, Any], part: str, side: str) -> Decimal:
    return dec((raw.get(part) or {}).get(side), ZERO) or ZERO


def commission_from(symbol: str, spot_raw: dict[str, Any], perp_raw: dict[str, Any]) -> CommissionRates:
    """``CommissionRates`` from the raw answers of GET /api/v3/account/commission and /fapi/v1/commissionRate.

    Spot pays standard + special + tax; paying in BNB multiplies the standard part by ``discount``
    (0.75 on Binance) when the discount is enabled for the account and the symbol."""
    with parsing(f"commission of {symbol}"):
        return _commission(symbol, spot_raw, perp_raw)


def _commission(symbol: str, spot_raw: dict[str, Any], perp_raw: dict[str, Any]) -> CommissionRates:
    rates = {}
    for side in ("maker", "taker"):
        standard = _req((spot_raw["standardCommission"])[side])
        extra = _commission_part(spot_raw, "specialCommission", side) + _commission_part(
            spot_raw, "taxCommission", side
        )
        disc = spot_raw.get("discount") or {}
        enabled = bool(disc.get("enabledForAccount")) and bool(disc.get("enabledForSymbol"))
        factor = dec(disc.get("discount"), Decimal(1)) if enabled and disc.get("discountAsset") == "BNB" else Decimal(1)
        rates[side] = (standard + extra, standard * (factor or Decimal(1)) + extra)
    return CommissionRates(
        symbol=symbol,
        spot_maker=rates["maker"][0],
        spot_taker=rates["taker"][0],
        perp_maker=_req(perp_raw["makerCommissionRate"]),
        perp_taker=_req(perp_raw["takerCommissionRate"]),
        spot_maker_bnb=rates["maker"][1],
        spot_taker_bnb=rates["taker"][1],
    )


DEFAULT_INTERVAL_HOURS = 8  # a perp fundingInfo does not list settles every 8 h (Binance's default)


class CcxtVenue:
    """The Venue protocol over ccxt; ``client`` is a ccxt.pro ``binance`` with spot and linear markets."""

    def __init__(
        self,
        client: Any,
        account: str = "main",
        *,
        time_resync_s: float | None = 600.0,
        mark_poll_interval_s: float = 5.0,
        stream_retry_s: float = 60.0,
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        self.client = client
        self.name = str(getattr(client, "id", "binance"))
        self.account = account
        self._time_resync_s = time_resync_s
        self._mark_poll_interval_s = mark_poll_interval_s
        self._stream_retry_s = stream_retry_s
        self._poll_strikes = 0  # consecutive rate-limited mark polls
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self._offset_ms: int | None = None
        self._offset_at_ms = 0
        self._intervals: dict[str, tuple[int | None, int]] = {}  # perp -> (hours, next funding it was read for)
        self._keepalive_task: asyncio.Task[None] | None = None
        self.keepalives_sent = 0
        self.user_stream: CcxtUserStream | None = None

    # ----------------------------------------------------------------- helpers

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (getattr(self.client, "apiKey", ""), getattr(self.client, "secret", "")) if s)

    def safe_text(self, exc: BaseException) -> str:
        """``safe_error_text`` that also redacts this client's own key and secret."""
        return safe_error_text(exc, self._secrets())

    @staticmethod
    def _market_symbol(symbol: str, leg: Leg) -> str:
        return perp_symbol(symbol) if leg is Leg.PERP else symbol

    # ----------------------------------------------------------------- time

    async def resync_time(self) -> int:
        """Read the server clock once and keep the offset to the local clock."""
        server = int(await self.client.fetch_time())
        local = self._wall_ms()
        self._offset_ms = server - local
        self._offset_at_ms = local
        return server

    async def now_ms(self) -> int:
        local = self._wall_ms()
        stale = self._time_resync_s is not None and local - self._offset_at_ms >= self._time_resync_s * 1000
        if self._offset_ms is None or stale:
            return await self.resync_time()
        return local + self._offset_ms

    # ----------------------------------------------------------------- markets and funding

    async def load_markets(self, symbols: list[str]) -> dict[str, PairMarkets]:
        markets = await self.client.load_markets()
        pairs: dict[str, PairMarkets] = {}
        for symbol in symbols:
            spot = markets.get(symbol)
            perp = markets.get(perp_symbol(symbol))
            if not spot or not perp or not spot.get("spot") or not (perp.get("swap") and perp.get("linear")):
                continue
            if spot.get("active") is False or perp.get("active") is False:
                continue
            pairs[symbol] = PairMarkets(
                spot=filters_from_market(spot),
                perp=filters_from_market(perp),
                base=spot["base"],
                quote=spot["quote"],
            )
        if pairs:
            funding = await self.fetch_funding(list(pairs))
            for symbol, info in funding.items():
                p = pairs[symbol]
                pairs[symbol] = PairMarkets(p.spot, p.perp, p.base, p.quote, info.interval_hours)
        return pairs

    async def _interval_hours(self, perp: str, next_funding_ms: int) -> int | None:
        """The perp's current funding interval: next funding time minus the last settlement.

        Never assumed to be 8h. Cached until the next funding time moves (one history call per
        settlement). Falls back to the spacing of the last two settlements, then to fundingInfo.
        """
        cached = self._intervals.get(perp)
        if cached is not None and cached[1] == next_funding_ms:
            return cached[0]
        rows = await self.client.fetch_funding_rate_history(perp, None, 3)
        times = sorted(int(r["info"]["fundingTime"]) for r in rows if r.get("info", {}).get("fundingTime"))
        hours: int | None = None
        if times and next_funding_ms > times[-1]:
            hours = funding_interval_hours(times[-1], next_funding_ms)
        if hours is None and len(times) >= 2:
            hours = funding_interval_hours(times[-2], times[-1])
        if hours is None:
            hours = await self._funding_info_hours(perp)
        self._intervals[perp] = (hours, next_funding_ms)
        return hours

    async def _funding_info_hours(self, perp: str) -> int | None:
        """``fundingIntervalHours`` from /fapi/v1/fundingInfo. Binance lists only symbols whose cap, floor
        or interval was adjusted, so a symbol absent from a good answer settles on the default 8 h."""
        try:
            rows = await self.client.fapiPublicGetFundingInfo()
        except (ccxt.ExchangeNotAvailable, ccxt.BadRequest) as exc:
            log.info("fundingInfo unavailable: %s", self.safe_text(exc))
            return None
        market_id = self.client.market(perp)["id"]
        row = next((r for r in rows if r.get("symbol") == market_id), None)
        if row is None:
            return DEFAULT_INTERVAL_HOURS if isinstance(rows, list) else None
        value = row.get("fundingIntervalHours")
        return int(value) if value else None

    async def fetch_funding(self, symbols: list[str]) -> dict[str, FundingInfo]:
        perps = [perp_symbol(s) for s in symbols]
        rates = await self.client.fetch_funding_rates(perps)
        out: dict[str, FundingInfo] = {}
        for perp in perps:
            row = rates.get(perp)
            if row is None:
                continue
            info = row["info"]
            next_ms = int(info["nextFundingTime"])
            out[spot_symbol(perp)] = FundingInfo(
                symbol=spot_symbol(perp),
                predicted_rate=_req(info.get("lastFundingRate")),
                next_funding_ms=next_ms,
                interval_hours=await self._interval_hours(perp, next_ms),
                mark_price=_req(info.get("markPrice")),
                index_price=_req(info.get("indexPrice")),
                ts_ms=int(info.get("time") or row.get("timestamp") or 0),
            )
        return out

    async def fetch_funding_history(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[FundingSettlement]:
        rows = await self.client.fetch_funding_rate_history(perp_symbol(symbol), since_ms, limit)
        out: list[FundingSettlement] = []
        prev_ms: int | None = None
        for r in sorted(rows, key=lambda r: int(r["info"]["fundingTime"])):
            info = r["info"]
            t = int(info["fundingTime"])
            out.append(
                FundingSettlement(
                    symbol=symbol,
                    funding_time_ms=t,
                    rate=_req(info.get("fundingRate")),
                    interval_hours=funding_interval_hours(prev_ms, t) if prev_ms is not None else None,
                    mark_price=dec(info.get("markPrice")) or None,
                )
            )
            prev_ms = t
        return out

    async def fetch_order_book(self, symbol: str, leg: Leg, depth: int = 20) -> OrderBook:
        limit = depth
        if leg is Leg.PERP:
            limit = next((d for d in _FAPI_DEPTHS if d >= depth), _FAPI_DEPTHS[-1])
        book = await self.client.fetch_order_book(self._market_symbol(symbol, leg), limit)
        ts = book.get("timestamp") or await self.now_ms()
        return OrderBook(
            symbol=symbol,
            leg=leg,
            bids=tuple((to_decimal(p), to_decimal(q)) for p, q, *_ in book["bids"][:depth]),
            asks=tuple((to_decimal(p), to_decimal(q)) for p, q, *_ in book["asks"][:depth]),
            ts_ms=int(ts),
        )

    # ----------------------------------------------------------------- account

    async def fetch_balances(self) -> list[WalletBalance]:
        spot, fut = await asyncio.gather(self.client.fetch_balance(), self.client.fetch_balance({"type": "future"}))
        out: list[WalletBalance] = []
        for row in spot["info"].get("balances", []):
            free, locked = _req(row["free"]), _req(row["locked"])
            if free or locked:
                out.append(WalletBalance("spot", row["asset"], free, locked, free + locked))
        for row in fut["info"].get("assets", []):
            # ccxt's own reading: free = availableBalance, used = initialMargin, total = marginBalance
            total = _req(row.get("marginBalance"))
            wallet = _req(row.get("walletBalance"))
            if total or wallet:
                out.append(
                    WalletBalance(
                        "futures", row["asset"], _req(row["availableBalance"]), _req(row["initialMargin"]), total
                    )
                )
        return out

    async def _futures_raw(self) -> dict[str, Any]:
        return await self.client.fapiPrivateV3GetAccount()

    async def fetch_futures_account(self) -> FuturesAccount:
        raw = await self._futures_raw()
        ts = max((int(a.get("updateTime") or 0) for a in raw.get("assets", [])), default=0)
        return FuturesAccount(
            wallet_balance=_req(raw["totalWalletBalance"]),
            unrealized_pnl=_req(raw["totalUnrealizedProfit"]),
            margin_balance=_req(raw["totalMarginBalance"]),
            available_balance=_req(raw["availableBalance"]),
            max_withdrawable=_req(raw["maxWithdrawAmount"]),
            initial_margin=_req(raw["totalInitialMargin"]),
            maint_margin=_req(raw["totalMaintMargin"]),
            ts_ms=ts or await self.now_ms(),
        )

    async def fetch_positions(self, symbols: list[str]) -> dict[str, Position]:
        """The raw ``GET /fapi/v3/positionRisk`` rows, each checked: ccxt's ``fetch_positions`` silently
        drops a row whose ``entryPrice`` is null, so a garbled answer would read as "no position"."""
        await self.client.load_markets()  # cached by ccxt after the first call; ids need the markets
        by_id = {self.client.market(perp_symbol(s))["id"]: s for s in symbols}
        rows = await self.client.fapiPrivateV3GetPositionRisk()
        out: dict[str, Position] = {}
        with parsing("positionRisk"):
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise TypeError(f"expected a list of rows, got {type(rows).__name__}")
            for info in rows:
                symbol = by_id.get(info["symbol"])
                qty = _req(info["positionAmt"])
                if symbol is None or not qty:
                    continue
                out[symbol] = self._position(symbol, qty, info)
        return out

    @staticmethod
    def _position(symbol: str, qty: Decimal, info: dict[str, Any]) -> Position:
        liq = dec(info.get("liquidationPrice"))
        margin_type = info.get("marginType")  # v2 names it; v3 tells by a non-zero isolated margin, as ccxt does
        isolated = margin_type == "isolated" if margin_type else bool(_req(info["isolatedMargin"]))
        return Position(
            symbol=symbol,
            qty=qty,
            entry_price=_req(info["entryPrice"]),
            mark_price=_req(info["markPrice"]),
            unrealized_pnl=_req(info["unRealizedProfit"]),
            liquidation_price=liq if liq else None,
            margin_mode="isolated" if isolated else "cross",
            maint_margin=dec(info.get("maintMargin"), ZERO) or ZERO,
            ts_ms=int(_req(info["updateTime"])),
            isolated_wallet=dec(info.get("isolatedWallet"), ZERO) or ZERO,
            initial_margin=dec(info.get("initialMargin"), ZERO) or ZERO,
        )

    async def modify_isolated_margin(self, symbol: str, amount: Decimal, add: bool) -> MarginChange:
        """POST /fapi/v1/positionMargin (type 1 add, 2 reduce) with the amount as exact text."""
        market = self.client.market(perp_symbol(symbol))
        await self.client.fapiPrivatePostPositionMargin(
            {"symbol": market["id"], "type": 1 if add else 2, "amount": format(amount, "f")}
        )
        return MarginChange(symbol, add, amount, await self.now_ms())

    async def fetch_margin_changes(self, symbol: str, since_ms: int | None = None) -> list[MarginChange]:
        market = self.client.market(perp_symbol(symbol))
        params: dict[str, Any] = {"symbol": market["id"], "limit": 500}
        if since_ms is not None:
            params["startTime"] = since_ms
        rows = await self.client.fapiPrivateGetPositionMarginHistory(params)
        return [
            MarginChange(symbol, int(r["type"]) == 1, _req(r.get("amount")), int(r["time"]))
            for r in rows
            if r.get("deltaType", "USER_ADJUST") == "USER_ADJUST"
        ]

    # ----------------------------------------------------------------- orders

    def _order_state(self, raw: dict[str, Any], symbol: str, leg: Leg) -> OrderState:
        """OrderState from Binance's raw order (spot FULL/ack or fapi RESULT) strings."""
        qty = _req(raw["origQty"])
        filled = _req(raw.get("executedQty", "0"))
        price = dec(raw.get("price"))
        average: Decimal | None = None
        avg_raw = dec(raw.get("avgPrice"))
        if avg_raw:
            average = avg_raw
        elif filled:
            quote = dec(raw.get("cummulativeQuoteQty")) or dec(raw.get("cumQuote"))
            if quote:
                average = quote / filled
        ts = next((int(raw[k]) for k in ("updateTime", "transactTime", "workingTime", "time") if raw.get(k)), 0)
        side = Side(raw["side"].lower())
        fills = tuple(self._fill_from_order_fill(f, raw, symbol, leg, side, ts) for f in raw.get("fills") or ())
        return OrderState(
            client_order_id=str(raw.get("clientOrderId") or ""),
            venue_order_id=str(raw["orderId"]),
            symbol=symbol,
            leg=leg,
            side=side,
            type=_order_type(str(raw.get("type", ""))),
            qty=qty,
            price=price if price else None,
            filled=filled,
            average=average,
            status=order_status(raw.get("status")),
            reduce_only=bool(raw.get("reduceOnly", False)),
            ts_ms=ts,
            fills=fills,
        )

    def _fill_from_order_fill(
        self, f: dict[str, Any], raw: dict[str, Any], symbol: str, leg: Leg, side: Side, ts: int
    ) -> VenueFill:
        return VenueFill(
            venue_trade_id=str(f["tradeId"]),
            venue_order_id=str(raw["orderId"]),
            client_order_id=raw.get("clientOrderId"),
            symbol=symbol,
            leg=leg,
            side=side,
            qty=_req(f["qty"]),
            price=_req(f["price"]),
            fee=_req(f.get("commission", "0")),
            fee_asset=str(f.get("commissionAsset") or ""),
            is_maker=False,  # immediate fills of a new order take liquidity
            ts_ms=ts,
        )

    def _fill_from_trade(self, trade: dict[str, Any], symbol: str, leg: Leg) -> VenueFill:
        info = trade["info"]
        buyer = str(info["side"]).upper() == "BUY" if "side" in info else bool(info.get("isBuyer"))
        side = Side.BUY if buyer else Side.SELL
        maker = info.get("maker") if "maker" in info else info.get("isMaker")
        return VenueFill(
            venue_trade_id=str(info["id"]),
            venue_order_id=str(info["orderId"]),
            client_order_id=trade.get("clientOrderId"),
            symbol=symbol,
            leg=leg,
            side=side,
            qty=_req(info["qty"]),
            price=_req(info["price"]),
            fee=_req(info.get("commission", "0")),
            fee_asset=str(info.get("commissionAsset") or ""),
            is_maker=bool(maker),
            ts_ms=int(info["time"]),
        )

    async def create_order(self, req: OrderRequest) -> OrderState:
        market = self._market_symbol(req.symbol, req.leg)
        params: dict[str, Any] = {"newClientOrderId": req.client_order_id}
        price: float | None = None
        if req.type == "limit":
            if req.price is None:
                raise RefusedBeforeSending(f"limit order {req.client_order_id} needs a price")
            price = float(req.price)
            if req.post_only:
                params["postOnly"] = True
            elif req.time_in_force != "GTC":
                params["timeInForce"] = req.time_in_force
        if req.reduce_only:
            if req.leg is not Leg.PERP:
                raise RefusedBeforeSending("reduce_only applies to the perp leg only")
            params["reduceOnly"] = True
        # Spot market buys pass no price, so ccxt sends `quantity`, not quoteOrderQty (docs/ccxt-binance.md §7.7).
        order = await self.client.create_order(market, req.type, req.side.value, float(req.qty), price, params)
        with parsing(f"order {req.client_order_id}"):
            state = self._order_state(order["info"], req.symbol, req.leg)
        if req.leg is Leg.PERP and state.filled and not state.fills:
            state = await self._with_perp_fills(state)
        return state

    async def _with_perp_fills(self, state: OrderState) -> OrderState:
        """fapi order responses carry no fills: read the order's trades (a failure leaves fills empty)."""
        try:
            trades = await self.client.fetch_my_trades(
                perp_symbol(state.symbol), None, None, {"orderId": state.venue_order_id}
            )
            with parsing(f"trades of order {state.client_order_id}"):
                fills = tuple(
                    replace(self._fill_from_trade(t, state.symbol, Leg.PERP), client_order_id=state.client_order_id)
                    for t in trades
                    if str(t["info"].get("orderId")) == state.venue_order_id
                )
        except ccxt.BaseError as exc:
            log.warning("fills of order %s not read yet: %s", state.client_order_id, self.safe_text(exc))
            return state
        return replace(state, fills=fills)

    async def fetch_order(self, symbol: str, leg: Leg, client_order_id: str) -> OrderState | None:
        try:
            order = await self.client.fetch_order(
                None, self._market_symbol(symbol, leg), {"origClientOrderId": client_order_id}
            )
        except ccxt.OrderNotFound:
            return None
        with parsing(f"order {client_order_id}"):
            return self._order_state(order["info"], symbol, leg)

    async def cancel_order(self, symbol: str, leg: Leg, client_order_id: str) -> OrderState:
        order = await self.client.cancel_order(
            None, self._market_symbol(symbol, leg), {"origClientOrderId": client_order_id}
        )
        with parsing(f"cancel of {client_order_id}"):
            return self._order_state(order["info"], symbol, leg)

    async def fetch_open_orders(self, symbol: str, leg: Leg) -> list[OrderState]:
        orders = await self.client.fetch_open_orders(self._market_symbol(symbol, leg))
        with parsing(f"open orders of {symbol}"):
            return [self._order_state(o["info"], symbol, leg) for o in orders]

    async def fetch_fills(self, symbol: str, leg: Leg, since_ms: int | None = None) -> list[VenueFill]:
        """Every trade of ``symbol``'s ``leg`` from ``since_ms`` (None: all the venue keeps) to now.

        Binance pages trade lists by id (``fromId``, oldest first), which cannot be combined with a time;
        a time query on USD-M spans at most 7 days (ccxt 4.5.90 caps ``endTime`` at since + 7 days on its
        own). So: find the first trade at or after ``since_ms`` (USD-M: in 7-day windows up to the venue's
        now; spot: one ``startTime`` query), then page by id from it until the history is exhausted.
        """
        market = self._market_symbol(symbol, leg)
        first: int | None = 0 if since_ms is None else await self._first_trade_id(market, leg, since_ms)
        seen: dict[str, VenueFill] = {}
        while first is not None:
            trades = await self.client.fetch_my_trades(market, None, _PAGE, {"fromId": first})
            with parsing(f"trades of {market}"):
                for t in trades:
                    fill = self._fill_from_trade(t, symbol, leg)
                    seen.setdefault(fill.venue_trade_id, fill)
                ids = [int(t["info"]["id"]) for t in trades]
            first = max(ids) + 1 if len(trades) >= _PAGE and max(ids) >= first else None
        return sorted(seen.values(), key=lambda f: (f.ts_ms, f.venue_trade_id))

    async def _first_trade_id(self, market: str, leg: Leg, since_ms: int) -> int | None:
        """The id of the oldest trade at or after ``since_ms``, or None when there is none yet."""
        if leg is Leg.SPOT:  # spot caps only a startTime..endTime span (24 h); startTime alone is open-ended
            trades = await self.client.fetch_my_trades(market, since_ms, 1)
            with parsing(f"trades of {market}"):
                return min((int(t["info"]["id"]) for t in trades), default=None)
        now = await self.now_ms()
        start = since_ms
        while start <= now:
            end = start + _LINEAR_SPAN_MS - 1
            trades = await self.client.fetch_my_trades(market, start, 1, {"endTime": end})
            if trades:
                with parsing(f"trades of {market}"):
                    return min(int(t["info"]["id"]) for t in trades)
            start = end + 1
        return None

    # ----------------------------------------------------------------- wallets

    async def transfer(self, asset: str, amount: Decimal, from_wallet: Wallet, to_wallet: Wallet) -> TransferResult:
        if {from_wallet, to_wallet} != {"spot", "futures"}:
            raise RefusedBeforeSending(f"transfer must be between spot and futures, got {from_wallet}->{to_wallet}")
        if amount <= 0:
            raise RefusedBeforeSending(f"transfer amount must be positive, got {amount}")
        result = await self.client.transfer(asset, float(amount), _CCXT_ACCOUNT[from_wallet], _CCXT_ACCOUNT[to_wallet])
        tran_id = result.get("id") or (result.get("info") or {}).get("tranId")
        if tran_id is None:
            raise ccxt.BadResponse("transfer response has no tranId")
        return TransferResult(
            tran_id=str(tran_id),
            asset=asset,
            amount=amount,
            from_wallet=from_wallet,
            to_wallet=to_wallet,
            ts_ms=int(result.get("timestamp") or await self.now_ms()),
        )

    async def fetch_transfers(self, since_ms: int, until_ms: int | None = None) -> list[TransferResult]:
        """Both directions of the universal-transfer history through ccxt's ``fetch_transfers``, every page.
        ``endTime`` is always sent: Binance answers the last 7 days when neither bound is given, and a
        fixed end keeps the newest-first pages from shifting while a new transfer lands."""
        until = until_ms if until_ms is not None else await self.now_ms()
        out: dict[str, TransferResult] = {}
        for kind, (from_wallet, to_wallet) in TRANSFER_WALLETS.items():
            page = 1
            while True:
                params = {"type": kind, "until": until, "current": page}
                rows = await self.client.fetch_transfers(None, since_ms, _TRANSFER_PAGE, params)
                for row in rows:
                    t = self._transfer_row(row.get("info") or {}, from_wallet, to_wallet)
                    out[t.tran_id] = t
                if len(rows) < _TRANSFER_PAGE:
                    break
                page += 1
        return sorted(out.values(), key=lambda t: (t.ts_ms, t.tran_id))

    @staticmethod
    def _transfer_row(info: dict[str, Any], from_wallet: Wallet, to_wallet: Wallet) -> TransferResult:
        status = TRANSFER_STATUS.get(str(info.get("status")))
        if status is None or info.get("tranId") is None or info.get("timestamp") is None:
            raise ccxt.BadResponse(f"transfer history row not understood: {info!r}")
        return TransferResult(
            tran_id=str(info["tranId"]),
            asset=str(info.get("asset") or ""),
            amount=_req(info.get("amount")),
            from_wallet=from_wallet,
            to_wallet=to_wallet,
            ts_ms=int(info["timestamp"]),
            status=status,
        )

    async def max_transferable(self, asset: str, from_wallet: Wallet) -> Decimal:
        if from_wallet == "spot":
            bal = await self.client.fetch_balance()
            row = next((b for b in bal["info"].get("balances", []) if b["asset"] == asset), None)
            return _req(row["free"]) if row else ZERO
        raw = await self._futures_raw()
        row = next((a for a in raw.get("assets", []) if a.get("asset") == asset), None)
        if row is not None and row.get("maxWithdrawAmount") not in (None, ""):
            return max(_req(row["maxWithdrawAmount"]), ZERO)
        return max(_req(raw["maxWithdrawAmount"]), ZERO) if asset == "USDT" else ZERO

    async def fetch_funding_income(self, symbol: str | None = None, since_ms: int | None = None) -> list[FundingIncome]:
        market = perp_symbol(symbol) if symbol else None
        seen: dict[str, FundingIncome] = {}
        since = since_ms
        while True:
            rows = await self.client.fetch_funding_history(market, since, _PAGE)
            new = 0
            for r in rows:
                info = r["info"]
                tran_id = str(info.get("tranId") or r.get("id"))
                if tran_id in seen:
                    continue
                seen[tran_id] = FundingIncome(
                    symbol=spot_symbol(r["symbol"]) if r.get("symbol") else "",
                    amount=_req(info["income"]),
                    asset=str(info.get("asset") or r.get("code") or ""),
                    funding_time_ms=int(info["time"]),
                    tran_id=tran_id,
                )
                new += 1
            if len(rows) < _PAGE or not new:
                break
            since = max(i.funding_time_ms for i in seen.values())
        return sorted(seen.values(), key=lambda i: (i.funding_time_ms, i.tran_id))

    async def fetch_commission(self, symbols: list[str]) -> dict[str, CommissionRates]:
        """Per symbol: ``privateGetAccountCommission`` (GET /api/v3/account/commission) for spot and
        ``fapiPrivateGetCommissionRate`` (GET /fapi/v1/commissionRate) for the perp. ccxt's unified
        ``fetch_trading_fee(s)`` is not used: for spot it reads /sapi/v1/asset/tradeFee, and for USD-M
        ``fetch_trading_fees`` maps the account's fee tier onto ccxt's own table, not the account's rates."""
        markets = await self.client.load_markets()
        out: dict[str, CommissionRates] = {}
        for symbol in symbols:
            spot, perp = markets.get(symbol), markets.get(perp_symbol(symbol))
            if not spot or not perp:
                continue
            spot_raw = await self.client.privateGetAccountCommission({"symbol": spot["id"]})
            perp_raw = await self.client.fapiPrivateGetCommissionRate({"symbol": perp["id"]})
            out[symbol] = commission_from(symbol, spot_raw, perp_raw)
        return out

    async def fetch_listings(self, symbols: list[str] | None = None) -> dict[str, MarketListing]:
        """exchangeInfo re-read (``load_markets(reload=True)``: status, onboardDate, deliveryDate of each
        market) and the USD-M 24 h tickers (quote volume) in one call."""
        markets = await self.client.load_markets(True)
        wanted = (
            symbols
            if symbols is not None
            else sorted(
                spot_symbol(m["symbol"])
                for m in markets.values()
                if m.get("swap")
                and m.get("linear")
                and m.get("quote") == "USDT"
                and m.get("settle") == "USDT"
                and (m.get("info") or {}).get("contractType", "PERPETUAL") == "PERPETUAL"
                and spot_symbol(m["symbol"]) in markets
            )
        )
        pairs = [(s, markets.get(s), markets.get(perp_symbol(s))) for s in wanted]
        pairs = [(s, spot, perp) for s, spot, perp in pairs if spot and perp and spot.get("spot")]
        if not pairs:
            return {}
        tickers = await self.client.fetch_tickers([perp_symbol(s) for s, _, _ in pairs])
        out: dict[str, MarketListing] = {}
        with parsing("exchangeInfo / ticker 24hr"):
            for symbol, spot, perp in pairs:
                info = perp.get("info") or {}
                ticker = (tickers.get(perp_symbol(symbol)) or {}).get("info") or {}
                out[symbol] = MarketListing(
                    symbol=symbol,
                    status=str(info.get("status") or "TRADING"),
                    spot_status=str((spot.get("info") or {}).get("status") or "TRADING"),
                    onboard_ms=int(info["onboardDate"]) if info.get("onboardDate") else None,
                    delivery_ms=int(info["deliveryDate"]) if info.get("deliveryDate") else None,
                    quote_volume_24h=dec(ticker.get("quoteVolume")),
                )
        return out

    async def fetch_bnb_burn(self) -> bool:
        raw = await self.client.sapiGetBnbBurn()
        with parsing("bnbBurn"):
            return _flag(raw["spotBNBBurn"])

    async def set_bnb_burn(self, on: bool) -> bool:
        raw = await self.client.sapiPostBnbBurn({"spotBNBBurn": "true" if on else "false"})
        with parsing("bnbBurn"):
            return _flag(raw["spotBNBBurn"])

    async def setup_symbol(self, symbol: str, leverage: int, margin_mode: MarginMode) -> None:
        perp = perp_symbol(symbol)
        with contextlib.suppress(ccxt.MarginModeAlreadySet):
            await self.client.set_margin_mode(margin_mode, perp)
        await self.client.set_leverage(leverage, perp)

    # ----------------------------------------------------------------- streams

    @staticmethod
    def _mark_from_ticker(ticker: dict[str, Any]) -> MarkUpdate | None:
        info = ticker.get("info") or {}
        mark = dec(info.get("p")) or dec(info.get("markPrice"))
        symbol = ticker.get("symbol")
        if mark is None or not symbol:
            return None
        rate = dec(info.get("r")) if "r" in info else dec(info.get("lastFundingRate"))
        next_ms = info.get("T") or info.get("nextFundingTime")
        ts = info.get("E") or info.get("time") or ticker.get("timestamp") or 0
        return MarkUpdate(
            symbol=spot_symbol(symbol),
            mark_price=mark,
            predicted_rate=rate,
            next_funding_ms=int(next_ms) if next_ms else None,
            ts_ms=int(ts),
        )

    async def watch_marks(self, symbols: list[str]) -> AsyncIterator[MarkUpdate]:
        """Mark prices from ``watch_mark_prices``; while the stream fails, poll premiumIndex instead."""
        perps = [perp_symbol(s) for s in symbols]
        loop = asyncio.get_running_loop()
        while True:
            try:
                tickers = await self.client.watch_mark_prices(perps)
            except (ccxt.NotSupported, ccxt.AuthenticationError):
                raise
            except Exception as exc:
                log.warning("mark stream failed, polling for %.0fs: %s", self._stream_retry_s, self.safe_text(exc))
                until = loop.time() + self._stream_retry_s
                while loop.time() < until:
                    updates, pause_s = await self._poll_marks(perps)
                    for update in updates:
                        yield update
                    await asyncio.sleep(max(self._mark_poll_interval_s, pause_s))
                continue
            for ticker in tickers.values():
                mark = self._mark_from_ticker(ticker)
                if mark is not None:
                    yield mark

    async def _poll_marks(self, perps: list[str]) -> tuple[list[MarkUpdate], float]:
        """One premiumIndex poll: the updates, and how long to wait before the next one. After a 429 or
        418 the poll waits out the ban (or a growing backoff), as every other venue call does: polling
        through a ban extends it."""
        try:
            rates = await self.client.fetch_funding_rates(perps)
        except ccxt.DDoSProtection as exc:
            ban_ms = banned_until_ms(exc)
            self._poll_strikes += 1
            pause = (ban_ms / 1000 - time.time() + 1) if ban_ms else _POLL_BACKOFF.delay(self._poll_strikes)
            log.warning("mark poll rate limited, next poll in %.0fs: %s", pause, self.safe_text(exc))
            return [], max(pause, 0.0)
        except ccxt.NetworkError as exc:
            log.warning("mark poll failed: %s", self.safe_text(exc))
            return [], 0.0
        self._poll_strikes = 0
        out = []
        for perp in perps:
            row = rates.get(perp)
            update = self._mark_from_ticker(row) if row else None
            if update is not None:
                out.append(update)
        return out, 0.0

    def watch_user_events(self, retry_s: float = 1.0) -> AsyncIterator[UserEvent]:
        """Fills, liquidations and ADL of this account as the venue pushes them (``bot.venues.ccxt_user_stream``);
        pair it with ``start_user_stream_keepalive``, which ccxt does not do itself."""
        if self.user_stream is None:
            self.user_stream = CcxtUserStream(self.client, self.safe_text, retry_s=retry_s)
        return self.user_stream.events()

    def start_user_stream_keepalive(self, interval_s: float = 1800.0) -> asyncio.Task[None]:
        """Refresh the USD-M listenKey every ``interval_s``.

        ccxt 4.5.90 never does on a mixed spot+perp instance (docs/ccxt-binance.md §5.4).
        """
        if self._keepalive_task is None or self._keepalive_task.done():
            self._keepalive_task = asyncio.create_task(self._keepalive_loop(interval_s), name="listenkey-keepalive")
        return self._keepalive_task

    async def _keepalive_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if not (self.client.options.get("linear") or {}).get("listenKey"):
                continue  # no USD-M user stream open yet: nothing to keep alive
            try:
                await self.client.keep_alive_listen_key({"type": "future"})
                self.keepalives_sent += 1
            except Exception as exc:
                log.warning("listenKey keepalive failed (next try in %.0fs): %s", interval_s, self.safe_text(exc))

    async def close(self) -> None:
        task, self._keepalive_task = self._keepalive_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.close()
