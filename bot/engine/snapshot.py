"""Builds the strategy's frozen ``Snapshot`` from what the venue says now.

Market filters and funding history change rarely, so they are cached and refreshed only when a
settlement has passed (history) or on demand (markets); books and the premium index are read every scan,
all at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from bot.domain import HOUR_MS, Leg, funding_interval_hours
from bot.venues.base import FundingInfo, FundingSettlement, OrderBook, PairMarkets, Venue
from strategies.base import Fees, FundingPoint, LegMarket, Limits, MarketSnapshot, PairView, Snapshot

HISTORY_SETTLEMENTS = 30
HISTORY_DAYS = 30  # never look further back than this


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates of both legs: ``spot``/``perp`` for any symbol, ``by_symbol`` the account's own rates
    per symbol where the venue gave them (``bot.engine.costs``)."""

    spot: Fees
    perp: Fees
    by_symbol: dict[str, tuple[Fees, Fees]] = field(default_factory=dict)

    def of(self, symbol: str) -> tuple[Fees, Fees]:
        """(spot, perp) fees of ``symbol``."""
        return self.by_symbol.get(symbol, (self.spot, self.perp))


def interval_from_history(history: list[FundingSettlement], fallback: int | None) -> int | None:
    """The current funding interval: the venue's own figure, else the spacing of the last settlements."""
    if history and history[-1].interval_hours:
        return history[-1].interval_hours
    if len(history) >= 2:
        return funding_interval_hours(history[-2].funding_time_ms, history[-1].funding_time_ms) or fallback
    return fallback


def _points(history: list[FundingSettlement]) -> tuple[FundingPoint, ...]:
    """Each settlement with its own interval (derived from spacing where the venue gives none)."""
    points = []
    for i, s in enumerate(history):
        interval = s.interval_hours
        if not interval and i > 0:
            interval = funding_interval_hours(history[i - 1].funding_time_ms, s.funding_time_ms)
        if interval:
            points.append(FundingPoint(s.funding_time_ms, s.rate, int(interval)))
    return tuple(points)


def _leg(markets: PairMarkets, leg: Leg, book: OrderBook, fees: Fees) -> LegMarket:
    filters = markets.spot if leg is Leg.SPOT else markets.perp
    return LegMarket(
        filters=filters, bid=book.bids[0][0], ask=book.asks[0][0], fees=fees, bids=book.bids, asks=book.asks
    )


@dataclass
class SnapshotBuilder:
    """Reads the venue for each configured symbol and assembles a ``Snapshot``."""

    venue: Venue
    symbols: list[str]
    fees: FeeSchedule
    book_depth: int = 20
    markets: dict[str, PairMarkets] = field(default_factory=dict)
    _history: dict[str, list[FundingSettlement]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    async def load_markets(self) -> dict[str, PairMarkets]:
        self.markets = await self.venue.load_markets(self.symbols)
        for s in self.symbols:
            if s not in self.markets:
                self.skipped[s] = "no spot market with a linear perpetual on this venue"
        return self.markets

    async def history(self, symbol: str, now_ms: int, funding: FundingInfo) -> list[FundingSettlement]:
        """Recent settlements; re-read only when a new settlement should have happened since the last read."""
        cached = self._history.get(symbol)
        stale = cached is None or not cached or funding.next_funding_ms - now_ms < 0
        if cached:
            last = cached[-1].funding_time_ms
            interval = interval_from_history(cached, funding.interval_hours) or 1
            stale = stale or now_ms >= last + interval * HOUR_MS
        if stale:
            # Venues answer a ``since`` query oldest first, up to their page limit (100 on Binance): asking
            # for 30 days of a 1h or 4h symbol would return its OLDEST settlements. Ask for just enough.
            interval = funding.interval_hours or interval_from_history(cached or [], None) or 8
            back = min((HISTORY_SETTLEMENTS + 1) * interval, HISTORY_DAYS * 24) * HOUR_MS
            hist = await self.venue.fetch_funding_history(symbol, since_ms=now_ms - back)
            cached = sorted(hist, key=lambda s: s.funding_time_ms)[-HISTORY_SETTLEMENTS:]
            self._history[symbol] = cached
        return cached or []

    async def _books(self, symbol: str) -> tuple[OrderBook, OrderBook]:
        spot, perp = await asyncio.gather(
            self.venue.fetch_order_book(symbol, Leg.SPOT, self.book_depth),
            self.venue.fetch_order_book(symbol, Leg.PERP, self.book_depth),
        )
        return spot, perp

    async def _market(
        self, symbol: str, now_ms: int, funding: FundingInfo, books: tuple[OrderBook, OrderBook]
    ) -> MarketSnapshot | None:
        pm = self.markets[symbol]
        spot_book, perp_book = books
        history = await self.history(symbol, now_ms, funding)
        if not (spot_book.bids and spot_book.asks and perp_book.bids and perp_book.asks):
            self.skipped[symbol] = "empty order book"
            return None
        interval = funding.interval_hours or interval_from_history(history, pm.funding_interval_hours)
        if not interval:
            self.skipped[symbol] = "funding interval unknown (no interval and too little history)"
            return None
        last_rate = history[-1].rate if history else funding.predicted_rate
        self.skipped.pop(symbol, None)
        spot_fees, perp_fees = self.fees.of(symbol)
        return MarketSnapshot(
            symbol=symbol,
            spot=_leg(pm, Leg.SPOT, spot_book, spot_fees),
            perp=_leg(pm, Leg.PERP, perp_book, perp_fees),
            funding_rate=last_rate,
            predicted_rate=funding.predicted_rate,
            interval_hours=int(interval),
            next_funding_ms=funding.next_funding_ms,
            history=_points(history),
        )

    async def build(
        self, now_ms: int, pairs: tuple[PairView, ...], capital: Decimal, limits: Limits
    ) -> tuple[Snapshot, dict[str, FundingInfo]]:
        if not self.markets:
            await self.load_markets()
        symbols = [s for s in self.symbols if s in self.markets]
        # the premium index and every book go out together (a book does not depend on the funding read)
        funding, books = await asyncio.gather(
            self.venue.fetch_funding(symbols), asyncio.gather(*map(self._books, symbols))
        )
        by_symbol = dict(zip(symbols, books, strict=True))
        built = await asyncio.gather(
            *(self._market(s, now_ms, funding[s], by_symbol[s]) for s in symbols if s in funding)
        )
        for s in symbols:
            if s not in funding:
                self.skipped[s] = "no funding information (premium index) for this symbol"
        markets = tuple(m for m in built if m is not None)
        return Snapshot(now_ms=now_ms, markets=markets, pairs=pairs, capital=capital, limits=limits), funding
