"""``SimVenue``: the Venue protocol straight over an in-process ``SimExchange`` (no HTTP).

Backtests call it on their hot path, so it converts records directly (no JSON, no ccxt parsing). Its
errors are the very ccxt classes production raises: a ``SimError`` is mapped through ccxt's own Binance
error table with the production URL of the family the call would use (spot/sapi or fapi), so callers
cannot tell it from ``CcxtVenue`` by the exceptions they catch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, TypeVar

from bot.domain import ZERO, Leg, Side, exchange_id, funding_interval_hours, unified_symbol
from bot.sim.errors import SimError
from bot.sim.exchange import SimExchange
from bot.sim.listing import listing
from bot.sim.records import SimEvent, SimOrder, SimTrade
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
    PairMarkets,
    Position,
    TransferResult,
    VenueFill,
    Wallet,
    WalletBalance,
    order_status,
)
from bot.venues.ccxt_venue import TRANSFER_STATUS, TRANSFER_WALLETS
from bot.venues.errors import exchange_error

T = TypeVar("T")

_TRANSFER_KIND = {("spot", "futures"): "MAIN_UMFUTURE", ("futures", "spot"): "UMFUTURE_MAIN"}


def sim_transfer_history(sim: SimExchange, since_ms: int, until_ms: int | None = None) -> list[TransferResult]:
    """The simulator's spot <-> USD-M transfers in [since_ms, until_ms], oldest first (coin-M ones are not
    the bot's: it never moves money there)."""
    return [
        TransferResult(
            str(t.tran_id), t.asset, t.amount, *TRANSFER_WALLETS[t.kind], t.time_ms, TRANSFER_STATUS[t.status]
        )
        for t in sorted(sim.transfer_history(), key=lambda t: (t.time_ms, t.tran_id))
        if t.kind in TRANSFER_WALLETS and t.time_ms >= since_ms and (until_ms is None or t.time_ms <= until_ms)
    ]


class SimVenue:
    """Venue over ``SimExchange``; ``symbols`` use unified names, the sim uses Binance ids."""

    def __init__(self, sim: SimExchange, account: str = "sim", *, mark_poll_interval_s: float = 1.0) -> None:
        self.sim = sim
        self.name = "sim"
        self.account = account
        self._mark_poll_interval_s = mark_poll_interval_s
        self._unified: dict[str, str] = {}  # Binance id -> spot symbol, filled by load_markets / first use
        self._capture: list[SimTrade] | None = None
        sim.subscribe(self._on_event)

    # ----------------------------------------------------------------- helpers

    def _on_event(self, event: SimEvent) -> None:
        if self._capture is not None and event.kind == "order":
            trade = event.data.get("trade")
            if trade is not None:
                self._capture.append(trade)

    def _id(self, symbol: str) -> str:
        sid = exchange_id(symbol)
        self._unified.setdefault(sid, symbol.split(":")[0])
        return sid

    @staticmethod
    def _call(perp: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a sim call, turning a SimError into the ccxt exception production would raise."""
        try:
            return fn(*args, **kwargs)
        except SimError as err:
            raise exchange_error(err.code, err.msg, err.http_status, perp=perp) from None

    # ----------------------------------------------------------------- markets and funding

    async def now_ms(self) -> int:
        return self.sim.clock.now_ms()

    async def load_markets(self, symbols: list[str]) -> dict[str, PairMarkets]:
        spots = {s.symbol: s for s in self.sim.markets("spot")}
        perps = {s.symbol: s for s in self.sim.markets("perp")}
        out: dict[str, PairMarkets] = {}
        for symbol in symbols:
            sid = self._id(symbol)
            spot, perp = spots.get(sid), perps.get(sid)
            if spot is None or perp is None:
                continue
            interval = self._call(True, self.sim.funding_interval, sid)
            out[symbol] = PairMarkets(spot.filters(), perp.filters(), spot.base, spot.quote, interval or None)
        return out

    async def fetch_funding(self, symbols: list[str]) -> dict[str, FundingInfo]:
        out: dict[str, FundingInfo] = {}
        for symbol in symbols:
            p = self._call(True, self.sim.premium_index, self._id(symbol))
            out[symbol] = FundingInfo(
                symbol=symbol,
                predicted_rate=p.last_funding_rate,
                next_funding_ms=p.next_funding_time,
                interval_hours=p.interval_hours or None,
                mark_price=p.mark_price,
                index_price=p.index_price,
                ts_ms=p.time_ms,
            )
        return out

    async def fetch_funding_history(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[FundingSettlement]:
        rows = self._call(True, self.sim.funding_history, self._id(symbol), since_ms, None, limit or 100)
        out: list[FundingSettlement] = []
        prev: int | None = None
        for r in rows:
            out.append(
                FundingSettlement(
                    symbol=symbol,
                    funding_time_ms=r.funding_time,
                    rate=r.funding_rate,
                    interval_hours=funding_interval_hours(prev, r.funding_time) if prev is not None else None,
                    mark_price=r.mark_price,
                )
            )
            prev = r.funding_time
        return out

    async def fetch_order_book(self, symbol: str, leg: Leg, depth: int = 20) -> OrderBook:
        book = self._call(leg is Leg.PERP, self.sim.order_book, leg.value, self._id(symbol), depth)
        return OrderBook(symbol, leg, tuple(book.bids), tuple(book.asks), book.time_ms)

    # ----------------------------------------------------------------- account

    async def fetch_balances(self) -> list[WalletBalance]:
        spot = self._call(False, self.sim.spot_account)
        out = [
            WalletBalance("spot", asset, free, locked, free + locked)
            for asset, (free, locked) in sorted(spot.balances.items())
            if free or locked
        ]
        fut = self._call(True, self.sim.futures_account)
        if fut.total_margin_balance or fut.total_wallet_balance:
            out.append(
                WalletBalance(
                    "futures", "USDT", fut.available_balance, fut.total_initial_margin, fut.total_margin_balance
                )
            )
        for asset, amount in sorted(fut.other_assets.items()):
            if amount:
                out.append(WalletBalance("futures", asset, amount, ZERO, amount))
        return out

    async def fetch_futures_account(self) -> FuturesAccount:
        a = self._call(True, self.sim.futures_account)
        return FuturesAccount(
            wallet_balance=a.total_wallet_balance,
            unrealized_pnl=a.total_unrealized_profit,
            margin_balance=a.total_margin_balance,
            available_balance=a.available_balance,
            max_withdrawable=a.max_withdraw_amount,
            initial_margin=a.total_initial_margin,
            maint_margin=a.total_maint_margin,
            ts_ms=a.update_ms,
        )

    async def fetch_positions(self, symbols: list[str]) -> dict[str, Position]:
        wanted = {self._id(s): s for s in symbols}
        out: dict[str, Position] = {}
        for r in self._call(True, self.sim.position_risk):
            symbol = wanted.get(r.symbol)
            if symbol is None or not r.position_amt:
                continue
            out[symbol] = Position(
                symbol=symbol,
                qty=r.position_amt,
                entry_price=r.entry_price,
                mark_price=r.mark_price,
                unrealized_pnl=r.unrealized_profit,
                liquidation_price=r.liquidation_price or None,
                margin_mode="isolated" if r.margin_type == "ISOLATED" else "cross",
                maint_margin=r.maint_margin,
                ts_ms=r.update_ms,
                isolated_wallet=r.isolated_wallet,
                initial_margin=r.initial_margin,
            )
        return out

    async def modify_isolated_margin(self, symbol: str, amount: Decimal, add: bool) -> MarginChange:
        rec = self._call(True, self.sim.modify_isolated_margin, self._id(symbol), amount, 1 if add else 2)
        return MarginChange(symbol, add, rec.amount, rec.time_ms)

    async def fetch_margin_changes(self, symbol: str, since_ms: int | None = None) -> list[MarginChange]:
        rows = self._call(True, self.sim.margin_adjustments, self._id(symbol), None, since_ms)
        return [MarginChange(symbol, r.kind == 1, r.amount, r.time_ms) for r in rows]

    # ----------------------------------------------------------------- orders

    def _fill(self, t: SimTrade, symbol: str, leg: Leg, client_order_id: str | None) -> VenueFill:
        return VenueFill(
            venue_trade_id=str(t.trade_id),
            venue_order_id=str(t.order_id),
            client_order_id=client_order_id,
            symbol=symbol,
            leg=leg,
            side=Side.BUY if t.side == "BUY" else Side.SELL,
            qty=t.qty,
            price=t.price,
            fee=t.commission,
            fee_asset=t.commission_asset,
            is_maker=t.maker,
            ts_ms=t.time_ms,
        )

    def _state(self, o: SimOrder, symbol: str, leg: Leg, fills: tuple[VenueFill, ...] = ()) -> OrderState:
        return OrderState(
            client_order_id=o.client_order_id,
            venue_order_id=str(o.order_id),
            symbol=symbol,
            leg=leg,
            side=Side.BUY if o.side == "BUY" else Side.SELL,
            type="market" if o.type == "MARKET" else "limit",
            qty=o.orig_qty,
            price=o.price or None,
            filled=o.executed_qty,
            average=o.cum_quote / o.executed_qty if o.executed_qty else None,
            status=order_status(o.status),
            reduce_only=o.reduce_only,
            ts_ms=o.update_ms,
            fills=fills,
        )

    async def create_order(self, req: OrderRequest) -> OrderState:
        perp = req.leg is Leg.PERP
        if req.reduce_only and not perp:
            raise ValueError("reduce_only applies to the perp leg only")
        if req.type == "limit" and req.price is None:
            raise ValueError(f"limit order {req.client_order_id} needs a price")
        otype, tif = req.type.upper(), str(req.time_in_force)  # str: a post-only perp order goes as GTX
        if req.post_only and req.type == "limit":
            otype, tif = ("LIMIT", "GTX") if perp else ("LIMIT_MAKER", "GTC")
        captured: list[SimTrade] = []
        self._capture = captured
        try:
            order = self._call(
                perp,
                self.sim.create_order,
                req.leg.value,
                self._id(req.symbol),
                req.side.value.upper(),
                otype,
                quantity=req.qty,
                price=req.price if req.type == "limit" else None,
                time_in_force=tif,
                reduce_only=req.reduce_only,
                client_order_id=req.client_order_id,
            )
        finally:
            self._capture = None
        fills = tuple(
            self._fill(t, req.symbol, req.leg, req.client_order_id) for t in captured if t.order_id == order.order_id
        )
        return self._state(order, req.symbol, req.leg, fills)

    async def fetch_order(self, symbol: str, leg: Leg, client_order_id: str) -> OrderState | None:
        try:
            order = self.sim.get_order(leg.value, self._id(symbol), client_order_id=client_order_id)
        except SimError as err:
            if err.code == -2013:
                return None
            raise exchange_error(err.code, err.msg, err.http_status, perp=leg is Leg.PERP) from None
        return self._state(order, symbol, leg)

    async def cancel_order(self, symbol: str, leg: Leg, client_order_id: str) -> OrderState:
        order = self._call(
            leg is Leg.PERP, self.sim.cancel_order, leg.value, self._id(symbol), client_order_id=client_order_id
        )
        return self._state(order, symbol, leg)

    async def fetch_open_orders(self, symbol: str, leg: Leg) -> list[OrderState]:
        orders = self._call(leg is Leg.PERP, self.sim.open_orders, leg.value, self._id(symbol))
        return [self._state(o, symbol, leg) for o in orders]

    async def fetch_fills(self, symbol: str, leg: Leg, since_ms: int | None = None) -> list[VenueFill]:
        trades = self._call(leg is Leg.PERP, self.sim.my_trades, leg.value, self._id(symbol), since_ms, None, None)
        return [self._fill(t, symbol, leg, None) for t in trades]

    # ----------------------------------------------------------------- wallets

    async def transfer(self, asset: str, amount: Decimal, from_wallet: Wallet, to_wallet: Wallet) -> TransferResult:
        kind = _TRANSFER_KIND.get((from_wallet, to_wallet))
        if kind is None:
            raise ValueError(f"transfer must be between spot and futures, got {from_wallet}->{to_wallet}")
        if amount <= 0:
            raise ValueError(f"transfer amount must be positive, got {amount}")
        tran = self._call(False, self.sim.transfer, asset, amount, kind)
        return TransferResult(str(tran), asset, amount, from_wallet, to_wallet, self.sim.now_ms())

    async def max_transferable(self, asset: str, from_wallet: Wallet) -> Decimal:
        kind = "MAIN_UMFUTURE" if from_wallet == "spot" else "UMFUTURE_MAIN"
        return max(self._call(False, self.sim.max_transferable, asset, kind), ZERO)

    async def fetch_transfers(self, since_ms: int, until_ms: int | None = None) -> list[TransferResult]:
        return sim_transfer_history(self.sim, since_ms, until_ms)

    async def fetch_funding_income(self, symbol: str | None = None, since_ms: int | None = None) -> list[FundingIncome]:
        sid = self._id(symbol) if symbol else None
        rows = self._call(True, self.sim.income, sid, "FUNDING_FEE", since_ms, None, None)
        return [
            FundingIncome(
                symbol=self._unified.get(r.symbol) or unified_symbol(r.symbol),
                amount=r.income,
                asset=r.asset,
                funding_time_ms=r.time_ms,
                tran_id=str(r.tran_id),
            )
            for r in rows
        ]

    async def setup_symbol(self, symbol: str, leverage: int, margin_mode: MarginMode) -> None:
        sid = self._id(symbol)
        try:
            self.sim.set_margin_type(sid, "ISOLATED" if margin_mode == "isolated" else "CROSSED")
        except SimError as err:
            if err.code != -4046:  # already in that mode
                raise exchange_error(err.code, err.msg, err.http_status, perp=True) from None
        self._call(True, self.sim.set_leverage, sid, leverage)

    async def fetch_commission(self, symbols: list[str]) -> dict[str, CommissionRates]:
        """The simulated account's rates (``bot.sim.fees``: one schedule for every symbol it lists)."""
        cfg = self.sim.config
        spots = {s.symbol for s in self.sim.markets("spot")}
        perps = {s.symbol for s in self.sim.markets("perp")}
        return {
            symbol: CommissionRates(
                symbol,
                cfg.spot_maker_fee,
                cfg.spot_taker_fee,
                cfg.perp_maker_fee,
                cfg.perp_taker_fee,
                cfg.spot_maker_fee * cfg.bnb_discount,
                cfg.spot_taker_fee * cfg.bnb_discount,
            )
            for symbol in symbols
            if self._id(symbol) in spots and self._id(symbol) in perps
        }

    async def fetch_listings(self, symbols: list[str] | None = None) -> dict[str, MarketListing]:
        """The simulator's listing state (``bot.sim.listing``) and its 24 h perp quote volume."""
        spots = {s.symbol: s for s in self.sim.markets("spot")}
        perps = {s.symbol: s for s in self.sim.markets("perp")}
        wanted = (
            symbols
            if symbols is not None
            else sorted(f"{p.base}/{p.quote}" for p in perps.values() if p.quote == "USDT")
        )
        out: dict[str, MarketListing] = {}
        for symbol in wanted:
            sid = self._id(symbol)
            if sid not in spots or sid not in perps:
                continue
            state = listing(self.sim, sid)
            try:
                volume: Decimal | None = self.sim.ticker("perp", sid).quote_volume
            except SimError:  # no price yet (not listed at this instant)
                volume = None
            out[symbol] = MarketListing(
                symbol, state.status, state.spot_status, state.onboard_ms, state.delivery_ms, volume
            )
        return out

    async def fetch_bnb_burn(self) -> bool:
        return bool(self.sim.bnb_burn)

    async def set_bnb_burn(self, on: bool) -> bool:
        self.sim.bnb_burn = bool(on)
        return self.sim.bnb_burn

    # ----------------------------------------------------------------- streams

    async def watch_marks(self, symbols: list[str]) -> AsyncIterator[MarkUpdate]:
        """Polls the simulation: one update per symbol each time simulated time has moved."""
        last_ts: int | None = None
        while True:
            now = self.sim.clock.now_ms()
            if now != last_ts:
                last_ts = now
                for symbol in symbols:
                    p = self._call(True, self.sim.premium_index, self._id(symbol))
                    yield MarkUpdate(symbol, p.mark_price, p.last_funding_rate, p.next_funding_time or None, p.time_ms)
            await asyncio.sleep(self._mark_poll_interval_s)

    async def close(self) -> None:
        return None
