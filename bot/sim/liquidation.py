"""Liquidation: the maintenance check over each interval's worst mark, and the forced close."""

from __future__ import annotations

from decimal import Decimal

from bot.sim.futures import SimPosition, q8
from bot.sim.markets import GENERIC_LIQUIDATION_FEE, maint_margin
from bot.sim.orders import OrderDesk
from bot.sim.records import IncomeRecord, SimEvent, SimOrder, SimTrade
from bot.sim.state import PX_Q, ZERO

D = Decimal


class LiquidationDesk(OrderDesk):
    def liquidation_fee_rate(self, symbol: str) -> Decimal:
        """The clearance fee rate charged on a liquidation: the one exchangeInfo publishes for the symbol."""
        if self.config.liquidation_fee_rate is not None:
            return self.config.liquidation_fee_rate
        return self._spec("perp", symbol).liquidation_fee or GENERIC_LIQUIDATION_FEE

    def _check_liquidations(self, a: int, b: int, events: list[SimEvent]) -> None:
        open_pos = self.futures.open_positions()
        if not open_pos:
            return
        worst: dict[str, Decimal] = {}
        for p in open_pos:
            r = self._range("mark", p.symbol, a, b)
            if r is None:
                worst[p.symbol] = self._mark(p.symbol)
            else:
                worst[p.symbol] = D(repr(r[1] if p.amt < 0 else r[0])).quantize(PX_Q)
        for p in open_pos:
            if p.isolated:
                m = worst[p.symbol]
                if p.isolated_wallet + p.unrealized(m) <= maint_margin(self._brackets[p.symbol], p.notional(m)):
                    self._liquidate([p], worst, events)
        cross = [p for p in self.futures.open_positions() if not p.isolated]
        if cross:
            fig = self.futures.cross_figures(worst, self._brackets, ZERO)
            if fig["maint_margin"] > 0 and fig["margin_balance"] <= fig["maint_margin"]:
                self._liquidate(cross, worst, events)

    def _liquidate(self, positions: list[SimPosition], prices: dict[str, Decimal], events: list[SimEvent]) -> None:
        for p in positions:
            for o in self._open_orders("perp", p.symbol):
                self._close_order(o, "CANCELED", events)
            price = prices[p.symbol]
            amt = p.amt
            side = "SELL" if amt > 0 else "BUY"
            oid = next(self._ids)
            order = SimOrder(
                "perp",
                p.symbol,
                oid,
                f"autoclose-{self._now}",
                side,
                "LIMIT",
                "IOC",
                abs(amt),
                price,
                False,
                self._now,
                self._now,
                orig_type="LIQUIDATION",
            )
            self._add_order(order)
            realized, _ = p.apply_fill(-amt, price)
            fee = q8(abs(amt) * price * self.liquidation_fee_rate(p.symbol))
            fee_taken = self._book_liquidation_loss(p, realized, fee)
            tid = next(self._ids)
            order.executed_qty, order.cum_quote, order.status = abs(amt), abs(amt) * price, "FILLED"
            order.trade_ids.append(tid)
            trade = SimTrade(
                "perp",
                p.symbol,
                tid,
                oid,
                side,
                price,
                abs(amt),
                abs(amt) * price,
                ZERO,
                "USDT",
                realized,
                False,
                self._now,
            )
            self._add_trade(trade)
            self._add_income(
                IncomeRecord(p.symbol, "REALIZED_PNL", q8(realized), "USDT", self._now, next(self._ids), str(tid))
            )
            if fee_taken:
                self._add_income(
                    IncomeRecord(p.symbol, "INSURANCE_CLEAR", -fee_taken, "USDT", self._now, next(self._ids), str(tid))
                )
            p.update_ms = self._now
            events.append(
                SimEvent(
                    "liquidation",
                    self._now,
                    "perp",
                    p.symbol,
                    {"order": order.snapshot(), "trade": trade, "fee": fee_taken, "price": price},
                )
            )
            events.append(SimEvent("order", self._now, "perp", p.symbol, {"order": order.snapshot(), "trade": trade}))
        events.append(self._account_event("ORDER"))

    def _book_liquidation_loss(self, p: SimPosition, realized: Decimal, fee: Decimal) -> Decimal:
        """Apply the realised PnL and the clearance fee; a deficit beyond the margin that backed the
        position (the isolated wallet, or the whole cross wallet) is absorbed by the insurance fund."""
        iso_left = p.isolated_wallet
        p.isolated_wallet = ZERO
        self.futures.wallet += realized
        remaining = (iso_left + realized) if p.isolated else self.futures.cross_wallet()
        fee_taken = min(fee, max(remaining, ZERO))
        self.futures.wallet -= fee_taken
        deficit = remaining - fee_taken
        if deficit < 0:
            self.futures.wallet -= deficit
        return fee_taken
