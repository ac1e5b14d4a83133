"""Orders: placement with Binance's filters, matching against the simulated book, resting orders,
fills and their effect on the wallets."""

from __future__ import annotations

from decimal import Decimal

from bot.domain import floor_to_step, to_decimal
from bot.sim import errors as E
from bot.sim import fees
from bot.sim.accounts import AccountDesk
from bot.sim.filters import check_perp, check_spot
from bot.sim.futures import q8
from bot.sim.markets import MarketSpec
from bot.sim.matching import cap_fills, crosses, fee_amount, filled_qty, filled_quote, walk, walk_quote
from bot.sim.records import IncomeRecord, SimEvent, SimOrder, SimTrade
from bot.sim.state import ZERO

D = Decimal


class OrderDesk(AccountDesk):
    def _match_resting(self, a: int, b: int, events: list[SimEvent]) -> None:
        for order in [o for o in self._live() if o.type != "MARKET"]:
            r = self._range(order.market, order.symbol, a, b)
            if r is None or not _traded_through(order, r, self._spec(order.market, order.symbol).tick_size):
                continue
            qty = order.remaining
            if self._partial_rest:  # fault hook: this trade-through fills only part of what rests
                step = self._spec(order.market, order.symbol).step_size
                qty = floor_to_step(qty * self._partial_rest.pop(0), step)
                if qty <= 0:
                    continue
            if order.market == "perp" and order.reduce_only:
                pos = self._position(order.symbol)
                sign = 1 if order.side == "BUY" else -1
                if pos.amt == 0 or (pos.amt > 0) == (sign > 0):
                    order.status, order.update_ms = "EXPIRED", self._now
                    events.append(
                        SimEvent(
                            "order", self._now, order.market, order.symbol, {"order": order.snapshot(), "trade": None}
                        )
                    )
                    continue
                qty = min(qty, abs(pos.amt))
            self._fill(order, [(order.price, qty)], maker=True, events=events)
            if order.is_open and order.reduce_only and order.market == "perp" and not self._position(order.symbol).amt:
                self._close_order(order, "EXPIRED", events)  # nothing left to reduce

    def open_orders(self, market: str, symbol: str | None = None) -> list[SimOrder]:
        self._catch_up()
        if symbol is not None:
            self._spec(market, symbol)
        return [o.snapshot() for o in self._open_orders(market, symbol)]

    def _find(self, market: str, symbol: str, order_id: int | None, client_order_id: str | None) -> SimOrder | None:
        self._spec(market, symbol)
        if order_id is not None:
            o = self._orders.get((market, int(order_id)))
            return o if o is not None and o.symbol == symbol else None
        if client_order_id is not None:
            return self._by_client.get((market, symbol, client_order_id))
        raise E.bad_parameter("orderId")

    def get_order(
        self, market: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> SimOrder:
        self._catch_up()
        o = self._find(market, symbol, order_id, client_order_id)
        if o is None:
            raise E.order_does_not_exist()
        return o.snapshot()

    def cancel_order(
        self, market: str, symbol: str, order_id: int | None = None, client_order_id: str | None = None
    ) -> SimOrder:
        self._catch_up()
        o = self._find(market, symbol, order_id, client_order_id)
        if o is None or not o.is_open:
            raise E.unknown_order()
        events: list[SimEvent] = []
        self._close_order(o, "CANCELED", events)
        self._publish(events)
        return o.snapshot()

    def _close_order(self, o: SimOrder, status: str, events: list[SimEvent]) -> None:
        spec = self._spec(o.market, o.symbol)
        if o.market == "spot" and o.reserved > 0:
            self.spot.unlock(spec.quote if o.side == "BUY" else spec.base, o.reserved)
            o.reserved = ZERO
            events.append(self._balance_event("ORDER", [spec.base, spec.quote]))
        o.status, o.update_ms = status, self._now
        events.append(SimEvent("order", self._now, o.market, o.symbol, {"order": o.snapshot(), "trade": None}))

    def my_trades(
        self, market: str, symbol: str, start: int | None = None, end: int | None = None, limit: int | None = 500
    ) -> list[SimTrade]:
        self._catch_up()
        self._spec(market, symbol)
        rows = [
            t
            for t in self._trades_by.get((market, symbol), ())
            if (start is None or t.time_ms >= start) and (end is None or t.time_ms <= end)
        ]
        if limit is not None:
            rows = rows[:limit] if start is not None else rows[-limit:]
        return rows

    def create_order(
        self,
        market: str,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
        time_in_force: str = "GTC",
        reduce_only: bool = False,
        client_order_id: str | None = None,
        quote_order_qty: Decimal | str | None = None,
    ) -> SimOrder:
        self._catch_up()
        spec = self._spec(market, symbol)
        side, otype, tif = side.upper(), type.upper(), (time_in_force or "GTC").upper()
        if side not in ("BUY", "SELL"):
            raise E.invalid_side()
        allowed = ("MARKET", "LIMIT", "LIMIT_MAKER") if market == "spot" else ("MARKET", "LIMIT")
        if otype not in allowed:
            raise E.invalid_order_type()
        if tif not in (("GTC", "IOC", "FOK") if market == "spot" else ("GTC", "IOC", "FOK", "GTX")):
            raise E.invalid_time_in_force()
        qty = None if quantity is None else to_decimal(quantity)
        px = None if price is None else to_decimal(price)
        qoq = None if quote_order_qty is None else to_decimal(quote_order_qty)
        if client_order_id is not None and any(
            o.client_order_id == client_order_id for o in self._open_orders(market, symbol)
        ):
            raise E.duplicate_client_order_id() if market == "perp" else E.SimError(-2010, "Duplicate order sent.")
        if market == "spot":
            self._validate_spot(spec, otype, side, qty, px, qoq)
        else:
            qty = self._validate_perp(spec, otype, side, qty, px, reduce_only)
        oid = next(self._ids)
        order = SimOrder(
            market,
            symbol,
            oid,
            client_order_id or f"sim-{oid}",
            side,
            otype,
            tif if otype != "MARKET" else "GTC",
            qty or ZERO,
            px or ZERO,
            reduce_only,
            self._now,
            self._now,
            quote_order_qty=qoq or ZERO,
            orig_type=otype,
        )
        events: list[SimEvent] = []
        if market == "spot":
            self._spot_order(order, spec, events)
        else:
            self._perp_order(order, spec, events)
        self._add_order(order)
        self._publish(events)
        return order.snapshot()

    def _validate_spot(
        self, spec: MarketSpec, otype: str, side: str, qty: Decimal | None, px: Decimal | None, qoq: Decimal | None
    ) -> None:
        check_spot(spec, otype, side, qty, px, qoq, self._mid("spot", spec.symbol))

    def _validate_perp(
        self, spec: MarketSpec, otype: str, side: str, qty: Decimal | None, px: Decimal | None, reduce_only: bool
    ) -> Decimal:
        if reduce_only and qty is not None and qty > 0:
            pos = self._position(spec.symbol)
            if pos.amt == 0 or (pos.amt > 0) == (side == "BUY"):
                raise E.reduce_only_rejected()
        reference = self._mid("perp", spec.symbol)
        best = None
        if otype == "MARKET":
            levels = self._levels("perp", spec.symbol, "asks" if side == "BUY" else "bids")
            best = levels[0].price if levels else None
        return check_perp(spec, otype, side, qty, px, reduce_only, self._mark(spec.symbol), best, reference)

    def _take_partial(
        self, fills: list[tuple[Decimal, Decimal]], qty: Decimal, step: Decimal
    ) -> list[tuple[Decimal, Decimal]]:
        if not self._partial:
            return fills
        frac = self._partial.pop(0)
        return cap_fills(fills, floor_to_step(qty * frac, step))

    def _consume(self, market: str, symbol: str, side: str, fills: list[tuple[Decimal, Decimal]]) -> None:
        book_side = "asks" if side == "BUY" else "bids"
        key = (market, symbol, book_side)
        self._consumed[key] = self._consumed.get(key, ZERO) + filled_qty(fills)
        self._book_ids[(market, symbol)] = next(self._update_ids)

    def _spot_order(self, o: SimOrder, spec: MarketSpec, events: list[SimEvent]) -> None:
        cfg = self.config
        asks, bids = self._levels("spot", o.symbol, "asks"), self._levels("spot", o.symbol, "bids")
        book = asks if o.side == "BUY" else bids
        if o.type == "MARKET":
            if o.quote_order_qty:
                budget = o.quote_order_qty
                if cfg.spot_fee_in_quote:
                    budget = budget / (1 + cfg.spot_taker_fee)
                fills = walk_quote(book, budget, spec.step_size)
                o.orig_qty = filled_qty(fills)
                need = o.quote_order_qty
            else:
                fills = walk(book, o.orig_qty, None, o.side)
                need = filled_quote(fills) * (1 + cfg.spot_taker_fee if cfg.spot_fee_in_quote else 1)
            if o.side == "BUY" and self.spot.free(spec.quote) < need:
                raise E.spot_insufficient_balance()
            if o.side == "SELL" and self.spot.free(spec.base) < o.orig_qty:
                raise E.spot_insufficient_balance()
            fills = self._take_partial(fills, o.orig_qty, spec.step_size)
            self._fill(o, fills, maker=False, events=events)
            if o.remaining > 0 or not fills:
                o.status = "EXPIRED" if o.executed_qty < o.orig_qty else "FILLED"
                events.append(SimEvent("order", self._now, "spot", o.symbol, {"order": o.snapshot(), "trade": None}))
            return
        best_bid = bids[0].price if bids else None
        best_ask = asks[0].price if asks else None
        takes = crosses(o.side, o.price, best_bid, best_ask)
        if o.type == "LIMIT_MAKER" and takes:
            raise E.spot_would_take()
        fills = walk(book, o.orig_qty, o.price, o.side) if takes else []
        if o.time_in_force == "FOK" and filled_qty(fills) < o.orig_qty:
            o.status = "EXPIRED"
            events.append(SimEvent("order", self._now, "spot", o.symbol, {"order": o.snapshot(), "trade": None}))
            return
        if o.side == "BUY":
            reserve = o.orig_qty * o.price * (1 + cfg.spot_taker_fee if cfg.spot_fee_in_quote else 1)
            self.spot.lock(spec.quote, reserve)
        else:
            reserve = o.orig_qty
            self.spot.lock(spec.base, reserve)
        o.reserved = reserve
        events.append(SimEvent("order", self._now, "spot", o.symbol, {"order": o.snapshot(), "trade": None}))
        events.append(self._balance_event("ORDER", [spec.base, spec.quote]))
        if fills:
            fills = self._take_partial(fills, o.orig_qty, spec.step_size)
            self._fill(o, fills, maker=False, events=events)
        if o.is_open and o.time_in_force == "IOC":
            self._close_order(o, "EXPIRED", events)

    def _perp_order(self, o: SimOrder, spec: MarketSpec, events: list[SimEvent]) -> None:
        cfg = self.config
        pos = self._position(o.symbol)
        asks, bids = self._levels("perp", o.symbol, "asks"), self._levels("perp", o.symbol, "bids")
        book = asks if o.side == "BUY" else bids
        sign = D(1) if o.side == "BUY" else D(-1)
        if o.reduce_only:
            o.orig_qty = min(o.orig_qty, abs(pos.amt))
        if o.type == "MARKET":
            fills = walk(book, o.orig_qty, None, o.side)
            takes = True
        else:
            takes = crosses(o.side, o.price, bids[0].price if bids else None, asks[0].price if asks else None)
            if o.time_in_force == "GTX" and takes:
                raise E.post_only_rejected()
            fills = walk(book, o.orig_qty, o.price, o.side) if takes else []
            if o.time_in_force == "FOK" and filled_qty(fills) < o.orig_qty:
                o.status = "EXPIRED"
                events.append(SimEvent("order", self._now, "perp", o.symbol, {"order": o.snapshot(), "trade": None}))
                return
        if not o.reduce_only:
            fig = self._figures()
            avg = filled_quote(fills) / filled_qty(fills) if fills else (o.price or self._mid("perp", o.symbol))
            new_amt = pos.amt + sign * o.orig_qty
            increase = max(abs(new_amt) - abs(pos.amt), ZERO)
            need = increase * avg / pos.leverage + fee_amount(filled_quote(fills), cfg.perp_taker_fee)
            if need > fig["available"]:
                raise E.margin_insufficient()
        if o.type == "LIMIT":
            events.append(SimEvent("order", self._now, "perp", o.symbol, {"order": o.snapshot(), "trade": None}))
        if fills:
            fills = self._take_partial(fills, o.orig_qty, spec.step_size)
            self._fill(o, fills, maker=False, events=events)
        if (o.is_open and (o.type == "MARKET" or o.time_in_force == "IOC")) or (o.type == "MARKET" and not fills):
            self._close_order(o, "EXPIRED", events)

    def _fill(self, o: SimOrder, fills: list[tuple[Decimal, Decimal]], maker: bool, events: list[SimEvent]) -> None:
        """Apply fills to the order and the wallets, recording trades (and perp income)."""
        spec = self._spec(o.market, o.symbol)
        cfg = self.config
        for price, qty in fills:
            if qty <= 0:
                continue
            quote = price * qty
            tid = next(self._ids)
            realized = ZERO
            if o.market == "spot":
                charged = fees.spot_fee(self, spec, o.side, price, qty, maker)  # BNB while the burn pays
                fee, fee_asset = charged.amount, charged.asset
                if o.side == "BUY":
                    fee_in_quote = cfg.spot_fee_in_quote
                    if o.type != "MARKET":
                        release = qty * o.price * (1 + cfg.spot_taker_fee if fee_in_quote else 1)
                        release = min(release, o.reserved)
                        self.spot.unlock(spec.quote, release)
                        o.reserved -= release
                    self.spot.debit(spec.quote, quote + (fee if fee_asset == spec.quote else ZERO))
                    self.spot.credit(spec.base, qty - (fee if fee_asset == spec.base else ZERO))
                else:
                    if o.type != "MARKET":
                        self.spot.unlock(spec.base, qty)
                        o.reserved -= qty
                    self.spot.debit(spec.base, qty)
                    self.spot.credit(spec.quote, quote - (fee if fee_asset == spec.quote else ZERO))
                if fee_asset not in (spec.base, spec.quote):
                    self.spot.debit(fee_asset, fee)
            else:
                fee = fee_amount(quote, fees.rate(self, "perp", maker))
                fee_asset = "USDT"
                pos = self._position(o.symbol)
                sign = D(1) if o.side == "BUY" else D(-1)
                old_amt = pos.amt
                realized, closed = pos.apply_fill(sign * qty, price)
                if pos.isolated:
                    if closed and old_amt:
                        release = q8(pos.isolated_wallet * closed / abs(old_amt))
                        pos.isolated_wallet -= release
                    opened = qty - closed
                    if opened > 0:
                        pos.isolated_wallet += q8(opened * price / pos.leverage)
                self.futures.wallet += q8(realized) - fee
                pos.update_ms = self._now
                if closed:
                    self._add_income(
                        IncomeRecord(
                            o.symbol, "REALIZED_PNL", q8(realized), "USDT", self._now, next(self._ids), str(tid)
                        )
                    )
                if fee:
                    self._add_income(
                        IncomeRecord(o.symbol, "COMMISSION", -fee, "USDT", self._now, next(self._ids), str(tid))
                    )
            o.executed_qty += qty
            o.cum_quote += quote
            o.trade_ids.append(tid)
            o.status = "FILLED" if o.executed_qty >= o.orig_qty else "PARTIALLY_FILLED"
            o.update_ms = self._now
            trade = SimTrade(
                o.market,
                o.symbol,
                tid,
                o.order_id,
                o.side,
                price,
                qty,
                quote,
                fee,
                fee_asset,
                q8(realized),
                maker,
                self._now,
            )
            self._add_trade(trade)
            events.append(SimEvent("order", self._now, o.market, o.symbol, {"order": o.snapshot(), "trade": trade}))
        if not maker:
            self._consume(o.market, o.symbol, o.side, fills)
        if o.market == "spot" and o.status == "FILLED" and o.reserved > 0:
            self.spot.unlock(spec.quote if o.side == "BUY" else spec.base, o.reserved)
            o.reserved = ZERO
        if fills:
            if o.market == "spot":
                events.append(self._balance_event("ORDER", [spec.base, spec.quote]))
            else:
                events.append(self._account_event("ORDER"))


def _traded_through(order: SimOrder, price_range: tuple[float, float], tick: Decimal) -> bool:
    """A resting limit fills only when the replayed path went at least one tick beyond it (a buy: down to
    limit - tick; a sell: up to limit + tick). A touch is no fill: the queue ahead at the limit may have
    taken all the volume traded there, so a backtest that filled on touches would flatter maker orders."""
    lo, hi = price_range
    if order.side == "BUY":
        return lo <= float(order.price - tick)
    return hi >= float(order.price + tick)
