"""Accounts: the spot wallet, USD-M positions and margin figures, leverage and margin type, income and
funding settlement."""

from __future__ import annotations

import bisect
import itertools
from decimal import Decimal

from bot.domain import to_decimal
from bot.sim import errors as E
from bot.sim.funding import funding_payment
from bot.sim.futures import SimPosition, q8
from bot.sim.markets import maint_margin, max_notional_for_leverage
from bot.sim.prices import MarketView
from bot.sim.records import FuturesAccountInfo, IncomeRecord, MarginAdjustment, PositionRisk, SimEvent, SpotAccount
from bot.sim.source import SourceSettlement
from bot.sim.state import PX_Q, ZERO

D = Decimal


class AccountDesk(MarketView):
    def _settle(self, st: SourceSettlement, events: list[SimEvent]) -> None:
        rate = self._funding_override.get(st.symbol)
        if rate is not None:
            self._settled_override[(st.symbol, st.ts_ms)] = rate
        else:
            rate = st.rate
        pos = self.futures.positions.get(st.symbol)
        if pos is None or pos.amt == 0:
            return
        mark = self._px.get(("mark", st.symbol)) or st.mark_price or self._mark(st.symbol)
        pay = funding_payment(pos.amt, mark, rate)
        self.futures.wallet += pay
        if pos.isolated:
            pos.isolated_wallet += pay
        tran = next(self._ids)
        rec = IncomeRecord(st.symbol, "FUNDING_FEE", pay, "USDT", st.ts_ms, tran)
        self._add_income(rec)
        events.append(
            SimEvent(
                "funding",
                st.ts_ms,
                "perp",
                st.symbol,
                {
                    "rate": rate,
                    "mark_price": mark,
                    "payment": pay,
                    "position_amt": pos.amt,
                    "income": rec,
                    "interval_hours": st.interval_hours,
                },
            )
        )
        events.append(self._account_event("FUNDING_FEE"))

    def spot_account(self) -> SpotAccount:
        self._catch_up()
        return SpotAccount(self.spot.balances(), self._now)

    def _position(self, symbol: str) -> SimPosition:
        pos = self.futures.positions.get(symbol)
        if pos is None:
            pos = SimPosition(symbol, self.config.default_leverage)
            self.futures.positions[symbol] = pos
        return pos

    def _open_order_margin(self) -> Decimal:
        total = ZERO
        for o in self._live():
            if o.market == "perp" and not o.reduce_only:
                total += o.remaining * o.price / self._position(o.symbol).leverage
        return total

    def _risk(self, symbol: str, marks: dict[str, Decimal]) -> PositionRisk:
        p = self._position(symbol)
        mark = marks.get(symbol) or self._mark(symbol)
        notional = p.notional(mark)
        upnl = p.unrealized(mark)
        return PositionRisk(
            symbol,
            p.amt,
            p.entry_price,
            self._break_even(p),
            mark,
            q8(upnl),
            self.futures.liquidation_price(p, {**marks, symbol: mark}, self._brackets) if p.amt else ZERO,
            p.leverage,
            p.margin_type,
            q8(p.isolated_wallet + upnl) if p.isolated else ZERO,
            p.isolated_wallet,
            q8(notional),
            q8(p.initial_margin(mark)),
            q8(maint_margin(self._brackets[symbol], notional)) if p.amt else ZERO,
            p.update_ms,
        )

    def _break_even(self, p: SimPosition) -> Decimal:
        """Binance's breakEvenPrice: the entry moved by the taker fee the position paid to open (long
        0.009 BTC at 67,445.9 -> 67,479.62295 in ccxt's captured positionRisk: x (1 + 0.05%))."""
        if not p.amt:
            return ZERO
        fee = self.config.perp_taker_fee
        return q8(p.entry_price * (1 + fee if p.amt > 0 else 1 - fee))

    def position_risk(self, symbol: str | None = None) -> list[PositionRisk]:
        self._catch_up()
        if symbol is not None:
            self._spec("perp", symbol)
            syms = [symbol]
        else:  # as Binance: a contract without a price yet (not listed at this instant) is not in the answer
            syms = [s for s in self.symbols if ("perp", s) in self._specs and self._known_mark(s) is not None]
        marks = self._marks()
        return [self._risk(s, marks) for s in syms]

    def _figures(self) -> dict[str, Decimal]:
        return self.futures.cross_figures(self._marks(), self._brackets, self._open_order_margin())

    def futures_account(self) -> FuturesAccountInfo:
        self._catch_up()
        marks = self._marks()
        fig = self._figures()
        positions = [self._risk(p.symbol, marks) for p in self.futures.open_positions()]
        upnl_all = sum((r.unrealized_profit for r in positions), ZERO)
        pos_im = sum((r.initial_margin for r in positions), ZERO)
        ooim = self._open_order_margin()
        mm_all = sum((r.maint_margin for r in positions), ZERO)
        return FuturesAccountInfo(
            self.futures.wallet,
            upnl_all,
            self.futures.wallet + upnl_all,
            q8(pos_im + ooim),
            pos_im,
            q8(ooim),
            mm_all,
            q8(fig["available"]),
            q8(fig["max_withdraw"]),
            fig["cross_wallet"],
            q8(fig["unrealized"]),
            q8(fig["margin_ratio"]),
            dict(self.futures.other_assets),
            positions,
            self._now,
        )

    def _account_event(self, reason: str) -> SimEvent:
        marks = self._marks()
        # as position_risk: a contract with no price yet (not listed) has nothing to report
        priced = [p for p in self.futures.positions.values() if self._known_mark(p.symbol) is not None]
        positions = [self._risk(p.symbol, marks) for p in priced]
        return SimEvent(
            "account",
            self._now,
            "perp",
            None,
            {
                "reason": reason,
                "wallet": self.futures.wallet,
                "cross_wallet": self.futures.cross_wallet(),
                "positions": positions,
            },
        )

    def _balance_event(self, reason: str, assets: list[str]) -> SimEvent:
        return SimEvent(
            "balance",
            self._now,
            "spot",
            None,
            {"reason": reason, "balances": {a: (self.spot.free(a), self.spot.locked(a)) for a in assets}},
        )

    def set_leverage(self, symbol: str, leverage: int) -> dict[str, object]:
        self._catch_up()
        self._spec("perp", symbol)
        brackets = self._brackets[symbol]
        if not isinstance(leverage, int) or leverage < 1 or leverage > brackets[0].initial_leverage:
            raise E.invalid_leverage(leverage)
        pos = self._position(symbol)
        cap = max_notional_for_leverage(brackets, leverage)
        if pos.amt and abs(pos.notional(self._mark(symbol))) > cap:
            raise E.leverage_exceeds_position()
        pos.leverage = leverage
        return {"symbol": symbol, "leverage": leverage, "max_notional_value": cap}

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        self._catch_up()
        self._spec("perp", symbol)
        mt = {"CROSS": "CROSSED", "CROSSED": "CROSSED", "ISOLATED": "ISOLATED"}.get(margin_type.upper())
        if mt is None:
            raise E.bad_parameter("marginType")
        pos = self._position(symbol)
        if pos.margin_type == mt:
            raise E.margin_type_unchanged()
        if pos.amt != 0:
            raise E.margin_type_with_position()
        if self._open_orders("perp", symbol):
            raise E.margin_type_with_open_orders()
        pos.margin_type = mt

    # ------------------------------------------------------------------ isolated margin
    def max_isolated_reduction(self, symbol: str) -> Decimal:
        """What ``modify_isolated_margin(.., REDUCE)`` may take out: the isolated wallet less any unrealised
        loss less the position's initial margin (unrealised profit cannot leave, as with transfers)."""
        self._catch_up()
        pos = self._position(symbol)
        if not pos.isolated or pos.amt == 0:
            return ZERO
        mark = self._mark(symbol)
        return max(ZERO, q8(pos.isolated_wallet + min(pos.unrealized(mark), ZERO) - pos.initial_margin(mark)))

    def modify_isolated_margin(self, symbol: str, amount: Decimal | str, kind: int) -> MarginAdjustment:
        """POST /fapi/v1/positionMargin: ``kind`` 1 adds ``amount`` from the cross wallet's available
        balance to the isolated position, 2 returns it (at most ``max_isolated_reduction``)."""
        self._catch_up()
        self._spec("perp", symbol)
        amt = to_decimal(amount)
        if kind not in (1, 2):
            raise E.bad_parameter("type")
        if amt <= 0:
            raise E.amount_not_positive()
        if amt != amt.quantize(PX_Q):
            raise E.precision_over_max()
        pos = self._position(symbol)
        if pos.amt == 0:
            raise E.isolated_margin_no_position()
        if not pos.isolated:
            raise E.isolated_margin_on_cross()
        if kind == 1:
            if amt > self._figures()["available"]:
                raise E.cross_balance_insufficient()
            pos.isolated_wallet += amt
        else:
            if amt > self.max_isolated_reduction(symbol):
                raise E.isolated_balance_insufficient()
            pos.isolated_wallet -= amt
        pos.update_ms = self._now
        rec = MarginAdjustment(symbol, kind, amt, "USDT", self._now)
        self._margin_adjustments.append(rec)
        self._publish([self._account_event("MARGIN_TRANSFER")])
        return rec

    def margin_adjustments(
        self, symbol: str, kind: int | None = None, start: int | None = None, end: int | None = None, limit: int = 500
    ) -> list[MarginAdjustment]:
        """GET /fapi/v1/positionMargin/history, oldest first."""
        self._catch_up()
        self._spec("perp", symbol)
        rows = [
            r
            for r in self._margin_adjustments
            if r.symbol == symbol
            and (kind is None or r.kind == kind)
            and (start is None or r.time_ms >= start)
            and (end is None or r.time_ms <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    def income(
        self,
        symbol: str | None = None,
        income_type: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = 100,
    ) -> list[IncomeRecord]:
        self._catch_up()
        first = bisect.bisect_left(self._income_times, start) if start is not None and self._income_sorted else 0
        rows = [
            r
            for r in itertools.islice(self._income, first, None)
            if (symbol is None or r.symbol == symbol)
            and (income_type is None or r.income_type == income_type)
            and (start is None or r.time_ms >= start)
            and (end is None or r.time_ms <= end)
        ]
        if limit is not None:
            rows = rows[:limit] if start is not None else rows[-limit:]
        return rows
