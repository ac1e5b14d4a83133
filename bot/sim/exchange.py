"""SimExchange: a deterministic Binance spot + USD-M simulator over a MarketDataSource.

Time only moves through ``step`` (or implicitly to ``clock.now_ms()`` before each call). A step splits
at every funding settlement instant it passes, so for each sub-interval, in time order: prices are
updated, resting limit orders that the price path crossed are filled, liquidations are checked at the
worst mark of the interval, then funding is settled on the positions held at the instant.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bot.domain import HOUR_MS, floor_to_step, to_decimal
from bot.sim import errors as E
from bot.sim.book import BookConfig, Level, full_side, trim
from bot.sim.clock import Clock
from bot.sim.funding import funding_payment
from bot.sim.futures import FuturesWallet, Position, q8
from bot.sim.markets import (
    Bracket,
    MarketSpec,
    default_brackets,
    default_spec,
    maint_margin,
    max_notional_for_leverage,
)
from bot.sim.matching import cap_fills, crosses, fee_amount, filled_qty, filled_quote, walk, walk_quote
from bot.sim.records import (
    FundingRecord,
    FuturesAccount,
    IncomeRecord,
    KlineRow,
    OrderBook,
    PositionRisk,
    PremiumIndex,
    SimEvent,
    SimOrder,
    SimTrade,
    SpotAccount,
    Ticker,
    TransferRecord,
)
from bot.sim.source import FundingSettlement, MarketDataSource
from bot.sim.wallet import SpotWallet

D = Decimal
ZERO = D(0)
_PX_Q = D("0.00000001")
TRANSFER_KINDS = ("MAIN_UMFUTURE", "UMFUTURE_MAIN")


_SPOT_FEE = D("0.001")
_PERP_MAKER_FEE = D("0.0002")
_PERP_TAKER_FEE = D("0.0005")
_LIQ_FEE = D("0.01")
_MIN_TRANSFER = D("0.000001")
_INTEREST = D("0.0001")


@dataclass(frozen=True)
class SimConfig:
    """Fees, book shape, filters and margin parameters. Defaults follow Binance's regular tier."""

    spot_maker_fee: Decimal = _SPOT_FEE
    spot_taker_fee: Decimal = _SPOT_FEE
    perp_maker_fee: Decimal = _PERP_MAKER_FEE
    perp_taker_fee: Decimal = _PERP_TAKER_FEE
    spot_fee_in_quote: bool = False  # Binance charges spot buys in the base asset (no BNB)
    book: BookConfig = field(default_factory=BookConfig)
    book_overrides: dict[str, BookConfig] = field(default_factory=dict)
    specs: dict[tuple[str, str], MarketSpec] = field(default_factory=dict)
    brackets: dict[str, tuple[Bracket, ...]] = field(default_factory=dict)
    default_leverage: int = 20
    liquidation_fee_rate: Decimal = _LIQ_FEE  # clearance fee on the liquidated notional
    min_transfer: Decimal = _MIN_TRANSFER  # smaller (dust) transfers are rejected
    interest_rate: Decimal = _INTEREST


Listener = Callable[[SimEvent], None]


class SimExchange:
    def __init__(
        self,
        source: MarketDataSource,
        clock: Clock,
        config: SimConfig | None = None,
        symbols: list[str] | None = None,
        balances: dict[str, Decimal] | None = None,
        futures_balances: dict[str, Decimal] | None = None,
    ) -> None:
        self.source = source
        self.clock = clock
        self.config = config or SimConfig()
        self.symbols = tuple(symbols or source.symbols)
        self._now = clock.now_ms()
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        self.spot = SpotWallet(
            {"USDT": D(100_000)} if balances is None else {k: to_decimal(v) for k, v in balances.items()}
        )
        self.futures = FuturesWallet()
        for asset, amount in (futures_balances or {}).items():
            if asset == "USDT":
                self.futures.wallet += to_decimal(amount)
            else:
                self.futures.other_assets[asset] = to_decimal(amount)
        self._listeners: list[Listener] = []
        self._orders: dict[tuple[str, int], SimOrder] = {}
        # Indexes over _orders/_trades/_income so reads cost what they return, not the whole history.
        self._live_orders: dict[tuple[str, int], SimOrder] = {}  # may hold closed ones; pruned on read
        self._by_client: dict[tuple[str, str, str], SimOrder] = {}  # latest order per client id
        self._trades: list[SimTrade] = []
        self._trades_by: dict[tuple[str, str], list[SimTrade]] = {}
        self._income: list[IncomeRecord] = []
        self._income_times: list[int] = []
        self._income_sorted = True  # appended in time order (bisect on start); else scanned
        self._transfers: list[TransferRecord] = []
        self._shocks: list[tuple[str, int, int, float]] = []
        self._funding_override: dict[str, Decimal] = {}
        self._settled_override: dict[tuple[str, int], Decimal] = {}
        self._partial: list[Decimal] = []
        self._consumed: dict[tuple[str, str, str], Decimal] = {}
        self._book_ids: dict[tuple[str, str], int] = {}
        self._book_cache: dict[tuple[str, str, str], tuple[Decimal, BookConfig, MarketSpec, tuple[Level, ...]]] = {}
        self._px: dict[tuple[str, str], Decimal | None] = {}
        self._last_good: dict[tuple[str, str], Decimal] = {}
        self._specs: dict[tuple[str, str], MarketSpec] = {}
        self._brackets: dict[str, tuple[Bracket, ...]] = {}
        for s in self.symbols:
            if s not in source.symbols:
                raise ValueError(f"symbol {s} not in the market data source")
            ref = source.price("perp", s, self._now) or source.price("spot", s, self._now)
            for market in ("spot", "perp"):
                if source.has(market, s):
                    self._specs[(market, s)] = self.config.specs.get((market, s)) or default_spec(market, s, ref)
            self._brackets[s] = self.config.brackets.get(s) or default_brackets(s)
        self._update_prices()

    # ------------------------------------------------------------------ time
    def now_ms(self) -> int:
        return self._now

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Register a listener for every event; returns a function that unsubscribes it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def step(self, now_ms: int | None = None) -> list[SimEvent]:
        target = self.clock.now_ms() if now_ms is None else int(now_ms)
        if target <= self._now:
            return []
        events: list[SimEvent] = []
        due = sorted(
            (st.ts_ms, st.symbol, st)
            for sym in self.symbols
            for st in self.source.settlements_between(sym, self._now, target)
        )
        for ts, group in itertools.groupby(due, key=lambda x: x[0]):
            if ts > self._now:
                self._advance(ts, events)
            for _, _, st in group:
                self._settle(st, events)
        if target > self._now:
            self._advance(target, events)
        self._publish(events)
        return events

    def _catch_up(self) -> None:
        t = self.clock.now_ms()
        if t > self._now:
            self.step(t)

    def _publish(self, events: list[SimEvent]) -> None:
        for ev in events:
            for cb in list(self._listeners):
                cb(ev)

    # ------------------------------------------------------------------ prices
    def _mult(self, symbol: str, t: int) -> float:
        m = 1.0
        for sym, start, dur, pct in self._shocks:
            if sym == symbol and t > start:
                m *= 1.0 + pct * min(1.0, (t - start) / dur)
        return m

    def _raw(self, kind: str, symbol: str, t: int) -> float | None:
        p = self.source.price(kind, symbol, t)
        return None if p is None else p * self._mult(symbol, t)

    def _range(self, kind: str, symbol: str, a: int, b: int) -> tuple[float, float] | None:
        r = self.source.price_range(kind, symbol, a, b)
        if r is None:
            return None
        ma, mb = self._mult(symbol, a), self._mult(symbol, b)
        return (r[0] * min(ma, mb), r[1] * max(ma, mb))

    def _update_prices(self) -> None:
        for s in self.symbols:
            for kind in ("spot", "perp", "mark", "index"):
                p = self._raw(kind, s, self._now)
                val = None if p is None else D(repr(p)).quantize(_PX_Q)
                self._px[(kind, s)] = val
                if val is not None:
                    self._last_good[(kind, s)] = val
            for market in ("spot", "perp"):
                self._book_ids[(market, s)] = next(self._update_ids)
        self._consumed.clear()

    def price(self, kind: str, symbol: str) -> Decimal | None:
        """Current spot/perp/mark/index price (None inside a data gap)."""
        return self._px.get((kind, symbol))

    def _mark(self, symbol: str) -> Decimal:
        """Mark for margin: the current one, or the last known through a gap."""
        m = self._known_mark(symbol)
        if m is None:
            raise E.SimError(-1121, f"No mark price for {symbol}.")
        return m

    def _known_mark(self, symbol: str) -> Decimal | None:
        """The mark (else the perp price) now or last known; None before the contract has any price."""
        m = self._px.get(("mark", symbol)) or self._last_good.get(("mark", symbol))
        if m is None:
            m = self._px.get(("perp", symbol)) or self._last_good.get(("perp", symbol))
        return m

    def _marks(self) -> dict[str, Decimal]:
        return {p.symbol: self._mark(p.symbol) for p in self.futures.open_positions()}

    def _mid(self, market: str, symbol: str) -> Decimal:
        p = self._px.get((market, symbol))
        if p is None:
            raise E.SimError(-1013, f"Market is closed (no {market} price for {symbol}).")
        return p

    # ------------------------------------------------------------------ advance
    def _advance(self, t: int, events: list[SimEvent]) -> None:
        prev = self._now
        self._now = t
        self._update_prices()
        self._match_resting(prev, t, events)
        self._check_liquidations(prev, t, events)
        events.append(SimEvent("prices", t, data={"symbols": self.symbols}))

    def _match_resting(self, a: int, b: int, events: list[SimEvent]) -> None:
        for order in [o for o in self._live() if o.type != "MARKET"]:
            r = self._range(order.market, order.symbol, a, b)
            if r is None:
                continue
            lo, hi = r
            hit = (order.side == "BUY" and lo <= float(order.price)) or (
                order.side == "SELL" and hi >= float(order.price)
            )
            if not hit:
                continue
            qty = order.remaining
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
            if order.is_open and order.remaining > 0 and order.reduce_only and order.market == "perp":
                self._close_order(order, "EXPIRED", events)

    # ------------------------------------------------------------------ funding
    def _settle(self, st: FundingSettlement, events: list[SimEvent]) -> None:
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

    # ------------------------------------------------------------------ liquidation
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
                worst[p.symbol] = D(repr(r[1] if p.amt < 0 else r[0])).quantize(_PX_Q)
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

    def _liquidate(self, positions: list[Position], prices: dict[str, Decimal], events: list[SimEvent]) -> None:
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
            fee = q8(abs(amt) * price * self.config.liquidation_fee_rate)
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

    def _book_liquidation_loss(self, p: Position, realized: Decimal, fee: Decimal) -> Decimal:
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

    # ------------------------------------------------------------------ fault hooks
    def apply_price_shock(self, symbol: str, pct: float, duration_ms: int) -> None:
        """Move spot, perp, mark and index of ``symbol`` by ``pct`` (0.35 = +35 %), ramping linearly
        from now over ``duration_ms``; the shifted level persists afterwards."""
        self._spec("perp", symbol) if ("perp", symbol) in self._specs else self._spec("spot", symbol)
        self._shocks.append((symbol, self._now, max(int(duration_ms), 1), float(pct)))

    def override_funding_rate(self, symbol: str, rate: Decimal | str | float | None) -> None:
        """Settle (and predict) ``rate`` for ``symbol`` from now on; None restores the data's rates."""
        self._spec("perp", symbol)
        if rate is None:
            self._funding_override.pop(symbol, None)
        else:
            self._funding_override[symbol] = to_decimal(rate)

    def force_partial_fill(self, fraction: Decimal | str | float, orders: int = 1) -> None:
        """The next ``orders`` orders fill only ``fraction`` of their quantity when they take."""
        f = to_decimal(fraction)
        if not ZERO <= f <= 1:
            raise ValueError(f"fraction must be in [0, 1], got {f}")
        self._partial.extend([f] * orders)

    # ------------------------------------------------------------------ market info
    def _spec(self, market: str, symbol: str) -> MarketSpec:
        spec = self._specs.get((market, symbol))
        if spec is None:
            raise E.invalid_symbol()
        return spec

    def markets(self, market: str) -> list[MarketSpec]:
        return [spec for (m, _), spec in self._specs.items() if m == market]

    def leverage_brackets(self, symbol: str | None = None) -> dict[str, tuple[Bracket, ...]]:
        if symbol is not None:
            self._spec("perp", symbol)
            return {symbol: self._brackets[symbol]}
        return {s: self._brackets[s] for s in self.symbols if ("perp", s) in self._specs}

    def _book_cfg(self, symbol: str) -> BookConfig:
        return self.config.book_overrides.get(symbol, self.config.book)

    def _levels(self, market: str, symbol: str, side: str) -> list[Level]:
        spec = self._spec(market, symbol)
        mid = self._mid(market, symbol)
        cfg = self._book_cfg(symbol)
        key = (market, symbol, side)
        hit = self._book_cache.get(key)
        if hit is not None and hit[0] == mid and hit[1] is cfg and hit[2] is spec:
            levels = hit[3]
        else:  # the untouched side depends only on (mid, spec, cfg): rebuilt when the price moves
            levels = full_side(mid, side, spec.tick_size, spec.step_size, cfg)
            self._book_cache[key] = (mid, cfg, spec, levels)
        return trim(levels, self._consumed.get(key, ZERO))

    def order_book(self, market: str, symbol: str, limit: int = 100) -> OrderBook:
        self._catch_up()
        bids = self._levels(market, symbol, "bids")[:limit]
        asks = self._levels(market, symbol, "asks")[:limit]
        return OrderBook(
            symbol,
            [(lv.price, lv.qty) for lv in bids],
            [(lv.price, lv.qty) for lv in asks],
            self._book_ids[(market, symbol)],
            self._now,
        )

    def ticker(self, market: str, symbol: str) -> Ticker:
        self._catch_up()
        self._spec(market, symbol)
        bids, asks = self._levels(market, symbol, "bids"), self._levels(market, symbol, "asks")
        start = self._now - 24 * HOUR_MS
        r = self._range(market, symbol, start, self._now)
        first = self._raw(market, symbol, start)
        last = self._mid(market, symbol)
        rows = self.source.klines(market, symbol, start, self._now)
        vol = D(repr(sum(k.volume for k in rows if k.volume == k.volume)))
        qvol = D(repr(sum(k.volume * k.close for k in rows if k.volume == k.volume)))
        spec = self._spec(market, symbol)

        def dq(x: float | None) -> Decimal:
            return last if x is None else D(repr(x)).quantize(spec.tick_size)

        return Ticker(
            symbol,
            last.quantize(spec.tick_size),
            bids[0].price if bids else ZERO,
            bids[0].qty if bids else ZERO,
            asks[0].price if asks else ZERO,
            asks[0].qty if asks else ZERO,
            dq(first),
            dq(r[1] if r else None),
            dq(r[0] if r else None),
            vol,
            qvol.quantize(_PX_Q),
            start,
            self._now,
        )

    def funding_interval(self, symbol: str) -> int:
        """Hours between the settlements around now (the premium index's figure); needs no price, so
        a symbol whose candles have not started yet still has one."""
        self._catch_up()
        return _interval(self.source.next_settlement(symbol, self._now), self.source.last_settlement(symbol, self._now))

    def premium_index(self, symbol: str) -> PremiumIndex:
        self._catch_up()
        self._spec("perp", symbol)
        nxt = self.source.next_settlement(symbol, self._now)
        rate = self._funding_override.get(symbol)
        if rate is None:
            rate = self.source.predicted_rate(symbol, self._now) or ZERO
        interval = _interval(nxt, self.source.last_settlement(symbol, self._now))
        mark = self._mark(symbol)
        index = self._px.get(("index", symbol)) or mark
        return PremiumIndex(
            symbol,
            mark,
            index,
            mark,
            rate,
            self.config.interest_rate,
            nxt.ts_ms if nxt is not None else 0,
            interval,
            self._now,
        )

    def funding_history(
        self, symbol: str, start: int | None = None, end: int | None = None, limit: int | None = 100
    ) -> list[FundingRecord]:
        """Settled rates (ts <= now), oldest first; without ``start`` the most recent ``limit``."""
        self._catch_up()
        self._spec("perp", symbol)
        hi = self._now if end is None else min(end, self._now)
        lo = -1 if start is None else start - 1
        rows = [
            FundingRecord(symbol, self._settled_override.get((symbol, s.ts_ms), s.rate), s.ts_ms, s.mark_price)
            for s in self.source.settlements_between(symbol, lo, hi)
        ]
        if limit is not None:
            rows = rows[:limit] if start is not None else rows[-limit:]
        return rows

    def klines(
        self, kind: str, symbol: str, start: int | None = None, end: int | None = None, limit: int | None = 500
    ) -> list[KlineRow]:
        """1h candles up to now; the current hour is a partial candle built from the path so far."""
        self._catch_up()
        self._spec("spot" if kind == "spot" else "perp", symbol)
        hi = self._now if end is None else min(end, self._now)
        cur = (self._now // HOUR_MS) * HOUR_MS
        lo = start if start is not None else hi - (limit or 500) * HOUR_MS
        rows = [
            KlineRow(
                k.open_ms,
                _d(k.open),
                _d(k.high),
                _d(k.low),
                _d(k.close),
                _d(k.volume) if k.volume == k.volume else ZERO,
                k.open_ms + HOUR_MS - 1,
            )
            for k in self.source.klines(kind, symbol, lo, min(hi + 1, cur))
        ]
        if lo <= cur <= hi:
            o = self.source.price(kind, symbol, cur)
            r = self._range(kind, symbol, cur, self._now)
            c = self._raw(kind, symbol, self._now)
            if o is not None and r is not None and c is not None:
                rows.append(KlineRow(cur, _d(o), _d(r[1]), _d(r[0]), _d(c), ZERO, cur + HOUR_MS - 1))
        if limit is not None:
            rows = rows[:limit] if start is not None else rows[-limit:]
        return rows

    # ------------------------------------------------------------------ accounts
    def spot_account(self) -> SpotAccount:
        self._catch_up()
        return SpotAccount(self.spot.balances(), self._now)

    def _position(self, symbol: str) -> Position:
        pos = self.futures.positions.get(symbol)
        if pos is None:
            pos = Position(symbol, self.config.default_leverage)
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
            p.entry_price,
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

    def futures_account(self) -> FuturesAccount:
        self._catch_up()
        marks = self._marks()
        fig = self._figures()
        positions = [self._risk(p.symbol, marks) for p in self.futures.open_positions()]
        upnl_all = sum((r.unrealized_profit for r in positions), ZERO)
        pos_im = sum((r.initial_margin for r in positions), ZERO)
        ooim = self._open_order_margin()
        mm_all = sum((r.maint_margin for r in positions), ZERO)
        return FuturesAccount(
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
        if pos.amt != 0 or self._open_orders("perp", symbol):
            raise E.margin_type_with_position()
        pos.margin_type = mt

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

    # ------------------------------------------------------------------ restored state
    def restore_account(
        self,
        *,
        spot: dict[str, Decimal],
        futures_wallet: Decimal,
        positions: Sequence[Position] = (),
        orders: Sequence[SimOrder] = (),
        trades: Sequence[SimTrade] = (),
        transfers: Sequence[TransferRecord] = (),
        next_id: int = 0,
    ) -> None:
        """Replace this fresh account with one rebuilt elsewhere (the dry-run's paper account, from the
        ledger): spot balances before open orders lock their reserve, the USDT futures wallet (isolated
        wallets included), one-way positions with their entry, leverage and margin type, the orders and
        trades the account knows (open orders rest again), its transfers, and the next id to hand out.
        Prices, books and the clock are left alone."""
        if self._orders or self._trades or self._transfers:
            raise ValueError("restore_account needs a fresh account (this one has already traded)")
        self.spot = SpotWallet({k: to_decimal(v) for k, v in spot.items() if v})
        self.futures = FuturesWallet(wallet=to_decimal(futures_wallet))
        for pos in positions:
            self._spec("perp", pos.symbol)
            self.futures.positions[pos.symbol] = pos
        for order in orders:
            spec = self._spec(order.market, order.symbol)
            if order.is_open and order.market == "spot" and order.type != "MARKET":
                if order.side == "BUY":  # as placing it reserved (the fee too when it is taken in quote)
                    fee = 1 + self.config.spot_taker_fee if self.config.spot_fee_in_quote else 1
                    asset, order.reserved = spec.quote, order.remaining * order.price * fee
                else:
                    asset, order.reserved = spec.base, order.remaining
                self.spot.lock(asset, order.reserved)
            self._add_order(order)
        for trade in sorted(trades, key=lambda t: (t.time_ms, t.trade_id)):
            self._add_trade(trade)
        self._transfers.extend(sorted(transfers, key=lambda t: (t.time_ms, t.tran_id)))
        self._ids = itertools.count(max(next(self._ids), next_id))

    # ------------------------------------------------------------------ transfers
    def max_transferable(self, asset: str, kind: str) -> Decimal:
        self._catch_up()
        if kind == "MAIN_UMFUTURE":
            return self.spot.free(asset)
        if kind == "UMFUTURE_MAIN":
            if asset == "USDT":
                return q8(self._figures()["max_withdraw"])
            return self.futures.other_assets.get(asset, ZERO)
        raise E.bad_parameter("type")

    def transfer(self, asset: str, amount: Decimal | str, kind: str) -> int:
        """Move free funds between the spot and USD-M wallets; returns the tranId."""
        self._catch_up()
        amt = to_decimal(amount)
        if kind not in TRANSFER_KINDS:
            raise E.bad_parameter("type")
        if amt <= 0 or amt < self.config.min_transfer:
            raise E.bad_parameter("amount")
        if amt != amt.quantize(_PX_Q):
            raise E.precision_over_max()
        if kind == "MAIN_UMFUTURE":
            self.spot.debit(asset, amt, error=E.transfer_insufficient)
            if asset == "USDT":
                self.futures.wallet += amt
            else:
                self.futures.other_assets[asset] = self.futures.other_assets.get(asset, ZERO) + amt
        else:
            if amt > self.max_transferable(asset, kind):
                raise E.transfer_insufficient()
            if asset == "USDT":
                self.futures.wallet -= amt
            else:
                self.futures.other_assets[asset] -= amt
            self.spot.credit(asset, amt)
        tran = next(self._ids)
        rec = TransferRecord(tran, asset, amt, kind, self._now)
        self._transfers.append(rec)
        self._add_income(
            IncomeRecord("", "TRANSFER", amt if kind == "MAIN_UMFUTURE" else -amt, asset, self._now, tran)
        )
        events = [
            SimEvent("transfer", self._now, None, None, {"record": rec}),
            self._balance_event("TRANSFER", [asset]),
            self._account_event("DEPOSIT" if kind == "MAIN_UMFUTURE" else "WITHDRAW"),
        ]
        self._publish(events)
        return tran

    def transfer_history(self) -> list[TransferRecord]:
        return list(self._transfers)

    # ------------------------------------------------------------------ orders
    def _add_order(self, order: SimOrder) -> None:
        key = (order.market, order.order_id)
        self._orders[key] = order
        self._by_client[(order.market, order.symbol, order.client_order_id)] = order
        if order.is_open:
            self._live_orders[key] = order

    def _add_trade(self, trade: SimTrade) -> None:
        self._trades.append(trade)
        self._trades_by.setdefault((trade.market, trade.symbol), []).append(trade)

    def _add_income(self, rec: IncomeRecord) -> None:
        if self._income_times and rec.time_ms < self._income_times[-1]:
            self._income_sorted = False
        self._income.append(rec)
        self._income_times.append(rec.time_ms)

    def _live(self) -> list[SimOrder]:
        """Open orders in placement order (orders never reopen, so closed ones are dropped for good)."""
        closed = [k for k, o in self._live_orders.items() if not o.is_open]
        for k in closed:
            del self._live_orders[k]
        return list(self._live_orders.values())

    def _open_orders(self, market: str, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self._live() if o.market == market and (symbol is None or o.symbol == symbol)]

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
            if (start is None or t.time_ms >= start)
            and (end is None or t.time_ms <= end)
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
        if otype != "MARKET" and (
            px is None or px <= 0 or px < spec.min_price or px > spec.max_price or px % spec.tick_size
        ):
            raise E.filter_failure("PRICE_FILTER")
        if otype == "MARKET" and qoq is not None:
            if qty is not None or side != "BUY":
                raise E.bad_parameter("quoteOrderQty")
            if qoq < spec.min_notional:
                raise E.filter_failure("NOTIONAL")
            return
        if qty is None or qty < spec.min_qty or qty > spec.max_qty or qty % spec.step_size:
            raise E.filter_failure("LOT_SIZE")
        ref = px if px is not None else self._mid("spot", spec.symbol)
        if qty * ref < spec.min_notional:
            raise E.filter_failure("NOTIONAL")

    def _validate_perp(
        self, spec: MarketSpec, otype: str, side: str, qty: Decimal | None, px: Decimal | None, reduce_only: bool
    ) -> Decimal:
        if qty is None or qty <= 0:
            raise E.quantity_not_positive()
        if qty % spec.step_size:
            raise E.precision_over_max()
        if qty < spec.min_qty:
            raise E.quantity_below_min()
        if otype == "LIMIT":
            if px is None or px <= 0:
                raise E.bad_parameter("price")
            if px % spec.tick_size:
                raise E.price_not_tick()
        if reduce_only:
            pos = self._position(spec.symbol)
            if pos.amt == 0 or (pos.amt > 0) == (side == "BUY"):
                raise E.reduce_only_rejected()
            return qty
        ref = px if px is not None else self._mid("perp", spec.symbol)
        if qty * ref < spec.min_notional:
            raise E.perp_min_notional(spec.min_notional)
        return qty

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
                rate = cfg.spot_maker_fee if maker else cfg.spot_taker_fee
                if o.side == "BUY":
                    fee_in_quote = cfg.spot_fee_in_quote
                    fee = fee_amount(quote if fee_in_quote else qty, rate)
                    fee_asset = spec.quote if fee_in_quote else spec.base
                    if o.type != "MARKET":
                        release = qty * o.price * (1 + cfg.spot_taker_fee if fee_in_quote else 1)
                        release = min(release, o.reserved)
                        self.spot.unlock(spec.quote, release)
                        o.reserved -= release
                    self.spot.debit(spec.quote, quote + (fee if fee_in_quote else ZERO))
                    self.spot.credit(spec.base, qty - (ZERO if fee_in_quote else fee))
                else:
                    fee = fee_amount(quote, rate)
                    fee_asset = spec.quote
                    if o.type != "MARKET":
                        self.spot.unlock(spec.base, qty)
                        o.reserved -= qty
                    self.spot.debit(spec.base, qty)
                    self.spot.credit(spec.quote, quote - fee)
            else:
                rate = cfg.perp_maker_fee if maker else cfg.perp_taker_fee
                fee = fee_amount(quote, rate)
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


def _interval(nxt: FundingSettlement | None, last: FundingSettlement | None) -> int:
    """Hours between the settlements around now; the one known settlement's own interval; else 8."""
    if nxt is not None and last is not None:
        return int((nxt.ts_ms - last.ts_ms) // HOUR_MS)
    return nxt.interval_hours if nxt is not None else (last.interval_hours if last else 8)


def _d(x: float) -> Decimal:
    return D(repr(float(x)))
