"""Market data as the simulated exchange shows it: prices now, filters, order books, tickers, the
premium index, funding history and klines."""

from __future__ import annotations

from decimal import Decimal

from bot.domain import HOUR_MS, funding_interval_hours
from bot.sim import errors as E
from bot.sim.book import BookConfig, Level, full_side, trim
from bot.sim.markets import Bracket, MarketSpec, adjusted_funding, funding_rule
from bot.sim.records import DepthSnapshot, FundingRateRow, KlineRow, PremiumIndex, Ticker
from bot.sim.source import SourceSettlement
from bot.sim.state import PX_Q, ZERO, SimState

D = Decimal


class MarketView(SimState):
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
                val = None if p is None else D(repr(p)).quantize(PX_Q)
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

    def _spec(self, market: str, symbol: str) -> MarketSpec:
        spec = self._specs.get((market, symbol))
        if spec is None:
            raise E.invalid_symbol()
        return spec

    # ------------------------------------------------------------------ public reads (no side effects)
    def has_market(self, market: str, symbol: str) -> bool:
        return (market, symbol) in self._specs

    def spec(self, market: str, symbol: str) -> MarketSpec:
        """The market's filters; ``SimError(-1121)`` for a market the exchange does not list."""
        return self._spec(market, symbol)

    def book_config(self, symbol: str) -> BookConfig:
        return self._book_cfg(symbol)

    def brackets(self, symbol: str) -> tuple[Bracket, ...]:
        return self._brackets[symbol]

    def margin_mark(self, symbol: str) -> Decimal:
        """The mark the exchange margins ``symbol`` at: the current one, else the last known."""
        return self._mark(symbol)

    def last_known_price(self, kind: str, symbol: str) -> Decimal | None:
        """The price now, else the last one seen before a gap; None before any."""
        return self._px.get((kind, symbol)) or self._last_good.get((kind, symbol))

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

    def order_book(self, market: str, symbol: str, limit: int = 100) -> DepthSnapshot:
        self._catch_up()
        bids = self._levels(market, symbol, "bids")[:limit]
        asks = self._levels(market, symbol, "asks")[:limit]
        return DepthSnapshot(
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
            qvol.quantize(PX_Q),
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
            D(repr(funding_rule(symbol).interest_8h)).quantize(PX_Q),
            nxt.ts_ms if nxt is not None else 0,
            interval,
            self._now,
        )

    def funding_info(self) -> list[tuple[str, Decimal, Decimal, int]]:
        """GET /fapi/v1/fundingInfo rows (symbol, cap, floor, interval hours): as Binance, only the symbols
        whose cap or floor was adjusted or whose interval is not 8 h."""
        self._catch_up()
        out = []
        for s in self.symbols:
            if ("perp", s) not in self._specs:
                continue
            interval = self.funding_interval(s)
            adjusted = adjusted_funding(s)
            if adjusted is None and interval == 8:
                continue
            rule = funding_rule(s)
            cap, floor = adjusted or (D(repr(rule.cap)), D(repr(rule.floor)))
            out.append((s, cap.quantize(PX_Q), floor.quantize(PX_Q), interval))
        return out

    def funding_history(
        self, symbol: str, start: int | None = None, end: int | None = None, limit: int | None = 100
    ) -> list[FundingRateRow]:
        """Settled rates (ts <= now), oldest first; without ``start`` the most recent ``limit``."""
        self._catch_up()
        self._spec("perp", symbol)
        hi = self._now if end is None else min(end, self._now)
        lo = -1 if start is None else start - 1
        rows = [
            FundingRateRow(symbol, self._settled_override.get((symbol, s.ts_ms), s.rate), s.ts_ms, s.mark_price)
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


def _interval(nxt: SourceSettlement | None, last: SourceSettlement | None) -> int:
    """Hours between the settlements around now; the one known settlement's own interval; else 8."""
    if nxt is not None and last is not None:
        hours = funding_interval_hours(last.ts_ms, nxt.ts_ms)
        if hours is not None:
            return hours
    return nxt.interval_hours if nxt is not None else (last.interval_hours if last else 8)


def _d(x: float) -> Decimal:
    return D(repr(float(x)))
