"""``PaperVenue``: the dry-run account. Live market data, simulated account.

Markets, funding, books and marks come from the real venue's public API (a ``CcxtVenue``); orders,
balances, positions, transfers and funding income live in a ``SimExchange`` whose prices are fed from
that live data through a ``LiveFeed``. Before each account action the feed gets fresh live prices and
the simulated clock is moved to the venue's server time, so paper fills happen at live prices and the
paper account is paid funding at the live settlement instants. Nothing is ever sent to the real account.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot.domain import Leg, exchange_id
from bot.format import iso_utc
from bot.ledger.models import EventKind
from bot.ledger.recorder import Recorder
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.markets import MarketSpec
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
)
from bot.venues.live_feed import LiveFeed
from bot.venues.paper_account import (
    PAPER_OPENING,
    PaperAccountError,
    PaperBook,
    differences,
    latest_paper_account,
    paper_account_name,
    rebuild,
)
from bot.venues.sim_venue import SimVenue, sim_transfer_history

_MAX_PRICE = Decimal(10) ** 9
_HISTORY_PAGE = 1000


def _spec(market: str, pair: PairMarkets) -> MarketSpec:
    f = pair.spot if market == "spot" else pair.perp
    return MarketSpec(
        market,
        exchange_id(f.symbol),
        pair.base,
        pair.quote,
        f.tick_size,
        f.step_size,
        f.min_qty,
        Decimal(10) ** 8,
        f.min_notional,
        f.tick_size,
        _MAX_PRICE,
    )


class PaperVenue:
    """Venue for dry-run: market data from ``market_data``, account actions on ``sim`` (over a LiveFeed)."""

    def __init__(self, market_data: Any, sim: SimExchange, account: str = "paper", *, refresh_ms: int = 5_000) -> None:
        if not isinstance(sim.source, LiveFeed):
            raise TypeError("PaperVenue needs a SimExchange over a LiveFeed (use PaperVenue.create)")
        self.market_data = market_data
        self.sim = sim
        self.feed: LiveFeed = sim.source
        self.name = "paper"
        self.account = account
        self._account = SimVenue(sim, account)
        self._refresh_ms = refresh_ms
        self._funding_at: int | None = None
        self._seen_version = -1
        self._symbols = [spec.unified for spec in sim.markets("spot")]

    @classmethod
    async def create(
        cls,
        market_data: Any,
        symbols: list[str],
        balances: dict[str, Decimal] | None = None,
        config: SimConfig | None = None,
        account: str = "paper",
        refresh_ms: int = 5_000,
        book: PaperBook | None = None,
    ) -> PaperVenue:
        """Load live markets, prime a LiveFeed with live prices and build the paper SimExchange on it.

        The simulated markets use the live filters, so the paper account rejects exactly what the live
        venue would. Symbols without a linear perp are left out. ``book``: a paper account rebuilt from
        the ledger; the simulation starts at its last instant and the first account read steps it to
        now, settling the funding it held through meanwhile (rates from the live history).
        """
        held = book.held_symbols() if book else []
        pairs = await market_data.load_markets(list(dict.fromkeys([*symbols, *held])))
        if not pairs:
            raise ValueError(f"none of {symbols} has spot and perp markets on {market_data.name}")
        now = await market_data.now_ms()
        start = now
        if book is not None and book.as_of_ms:
            if book.as_of_ms > now:
                raise PaperAccountError(
                    f"paper account {book.name} was last written at {iso_utc(book.as_of_ms)}, after the venue's "
                    f"clock ({iso_utc(now)}): this market data is older than the account (an emulator replaying "
                    "from an earlier --start?). Start the market where the account left off, or run with --fresh "
                    "for a new paper account"
                )
            start = book.as_of_ms
        feed = LiveFeed([exchange_id(s) for s in pairs], start)
        specs = dict(config.specs if config else {})
        for pair in pairs.values():
            for market in ("spot", "perp"):
                spec = _spec(market, pair)
                specs.setdefault((market, spec.symbol), spec)
        cfg = replace(config or SimConfig(), specs=specs)
        venue_symbols = list(pairs)
        await _prime(market_data, feed, venue_symbols, now, since_ms=start if start < now else None)
        # LiveFeed lacks MarketDataSource.predicted_rates_at, which only backtests read, never SimExchange
        sim = SimExchange(feed, ManualClock(start), cfg, symbols=list(feed.symbols), balances=balances)  # type: ignore[arg-type]
        if book is not None:
            book.restore_into(sim)
        return cls(market_data, sim, account, refresh_ms=refresh_ms)

    # ----------------------------------------------------------------- syncing live data into the sim

    async def _sync(self, book_for: tuple[str, Leg] | None = None) -> None:
        """Fresh live prices into the feed, then move the simulated clock to server time.

        The clock goes to the latest of server time and the newest pushed data, so the sim prices the
        next action with the data just read.
        """
        now = await self.market_data.now_ms()
        if self._funding_at is None or now - self._funding_at >= self._refresh_ms:
            await _push_funding(self.market_data, self.feed, self._symbols)
            self._funding_at = now
        if book_for is not None:
            await self.fetch_order_book(book_for[0], book_for[1], 5)
        target = max(now, self.feed.latest_ms)
        clock = self.sim.clock
        if self.feed.version != self._seen_version:
            # the sim caches prices per instant: new data at the same instant needs a (1 ms) step
            target = max(target, clock.now_ms() + 1)
            self._seen_version = self.feed.version
        if isinstance(clock, ManualClock) and target > clock.now_ms():
            clock.set(target)

    # ----------------------------------------------------------------- market data: live

    async def now_ms(self) -> int:
        return await self.market_data.now_ms()

    async def load_markets(self, symbols: list[str]) -> dict[str, PairMarkets]:
        return await self.market_data.load_markets(symbols)

    async def fetch_funding(self, symbols: list[str]) -> dict[str, FundingInfo]:
        funding = await self.market_data.fetch_funding(symbols)
        for symbol, info in funding.items():
            _push_info(self.feed, symbol, info)
        return funding

    async def fetch_funding_history(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[FundingSettlement]:
        rows = await self.market_data.fetch_funding_history(symbol, since_ms, limit)
        sid = exchange_id(symbol)
        if sid in self.feed.symbols:
            for r in rows:
                self.feed.push_settlement(sid, r.funding_time_ms, r.rate, r.interval_hours)
        return rows

    async def fetch_order_book(self, symbol: str, leg: Leg, depth: int = 20) -> OrderBook:
        book = await self.market_data.fetch_order_book(symbol, leg, depth)
        sid = exchange_id(symbol)
        if sid in self.feed.symbols and book.bids and book.asks:
            self.feed.push_price(leg.value, sid, book.ts_ms, book.mid)
        return book

    async def watch_marks(self, symbols: list[str]) -> AsyncIterator[MarkUpdate]:
        async for update in self.market_data.watch_marks(symbols):
            sid = exchange_id(update.symbol)
            if sid in self.feed.symbols:
                self.feed.push_price("mark", sid, update.ts_ms, update.mark_price)
            yield update

    # ----------------------------------------------------------------- account: simulated

    async def fetch_balances(self) -> list[WalletBalance]:
        await self._sync()
        return await self._account.fetch_balances()

    async def fetch_futures_account(self) -> FuturesAccount:
        await self._sync()
        return await self._account.fetch_futures_account()

    async def fetch_positions(self, symbols: list[str]) -> dict[str, Position]:
        await self._sync()
        return await self._account.fetch_positions(symbols)

    async def create_order(self, req: OrderRequest) -> OrderState:
        await self._sync(book_for=(req.symbol, req.leg))
        return await self._account.create_order(req)

    async def fetch_order(self, symbol: str, leg: Leg, client_order_id: str) -> OrderState | None:
        await self._sync()
        return await self._account.fetch_order(symbol, leg, client_order_id)

    async def cancel_order(self, symbol: str, leg: Leg, client_order_id: str) -> OrderState:
        await self._sync()
        return await self._account.cancel_order(symbol, leg, client_order_id)

    async def fetch_open_orders(self, symbol: str, leg: Leg) -> list[OrderState]:
        await self._sync()
        return await self._account.fetch_open_orders(symbol, leg)

    async def fetch_fills(self, symbol: str, leg: Leg, since_ms: int | None = None) -> list[VenueFill]:
        return await self._account.fetch_fills(symbol, leg, since_ms)

    async def transfer(self, asset: str, amount: Decimal, from_wallet: Wallet, to_wallet: Wallet) -> TransferResult:
        await self._sync()
        return await self._account.transfer(asset, amount, from_wallet, to_wallet)

    async def max_transferable(self, asset: str, from_wallet: Wallet) -> Decimal:
        await self._sync()
        return await self._account.max_transferable(asset, from_wallet)

    async def fetch_transfers(self, since_ms: int, until_ms: int | None = None) -> list[TransferResult]:
        """The paper account's transfer history, so reconciliation settles a transfer a crash left unanswered
        by what the account holds (it is rebuilt from the ledger: what the ledger lost never happened)."""
        return sim_transfer_history(self.sim, since_ms, until_ms)

    async def fetch_funding_income(self, symbol: str | None = None, since_ms: int | None = None) -> list[FundingIncome]:
        await self._sync()
        return await self._account.fetch_funding_income(symbol, since_ms)

    async def setup_symbol(self, symbol: str, leverage: int, margin_mode: MarginMode) -> None:
        await self._account.setup_symbol(symbol, leverage, margin_mode)

    async def modify_isolated_margin(self, symbol: str, amount: Decimal, add: bool) -> MarginChange:
        await self._sync()
        return await self._account.modify_isolated_margin(symbol, amount, add)

    async def fetch_margin_changes(self, symbol: str, since_ms: int | None = None) -> list[MarginChange]:
        await self._sync()
        return await self._account.fetch_margin_changes(symbol, since_ms)

    async def fetch_commission(self, symbols: list[str]) -> dict[str, CommissionRates]:
        """The paper account's own rates (the simulated account's, as a backtest charges them)."""
        return await self._account.fetch_commission(symbols)

    async def fetch_listings(self, symbols: list[str] | None = None) -> dict[str, MarketListing]:
        """The live venue's listings (market data), as the paper account trades its markets."""
        return await self.market_data.fetch_listings(symbols)

    async def fetch_bnb_burn(self) -> bool:
        return await self._account.fetch_bnb_burn()

    async def set_bnb_burn(self, on: bool) -> bool:
        return await self._account.set_bnb_burn(on)

    async def close(self) -> None:
        await self.market_data.close()


def _push_info(feed: LiveFeed, symbol: str, info: FundingInfo) -> None:
    sid = exchange_id(symbol)
    if sid not in feed.symbols:
        return
    feed.push_price("mark", sid, info.ts_ms, info.mark_price)
    feed.push_price("index", sid, info.ts_ms, info.index_price)
    feed.push_funding(sid, info.ts_ms, info.predicted_rate, info.next_funding_ms, info.interval_hours)


async def _push_funding(market_data: Any, feed: LiveFeed, symbols: list[str]) -> None:
    for symbol, info in (await market_data.fetch_funding(symbols)).items():
        _push_info(feed, symbol, info)
    for symbol in symbols:  # pushes further apart than an interval (a venue pause): read what was settled
        sid = exchange_id(symbol)
        after = feed.missed_after.pop(sid, None)
        if after is None:
            continue
        for r in await market_data.fetch_funding_history(symbol, after + 1, 100):
            feed.push_settlement(sid, r.funding_time_ms, r.rate, r.interval_hours)


async def _prime(market_data: Any, feed: LiveFeed, symbols: list[str], now: int, since_ms: int | None = None) -> None:
    """First prices for every market (books for spot and perp, premium index for mark and index), and the
    settled rates: the last few, or every one after ``since_ms`` (a restored account was away since)."""
    await _push_funding(market_data, feed, symbols)
    for symbol in symbols:
        sid = exchange_id(symbol)
        for leg in (Leg.SPOT, Leg.PERP):
            book = await market_data.fetch_order_book(symbol, leg, 5)
            feed.push_price(leg.value, sid, min(book.ts_ms, now), book.mid)
        for r in await _settled(market_data, symbol, since_ms):
            feed.push_settlement(sid, r.funding_time_ms, r.rate, r.interval_hours)


async def _settled(market_data: Any, symbol: str, since_ms: int | None) -> list[FundingSettlement]:
    """The last few settlements (the interval around now), and every one after ``since_ms``."""
    rows = list(await market_data.fetch_funding_history(symbol, None, 3))
    if since_ms is None:
        return rows
    after = since_ms
    while True:  # Binance answers at most 1000 settlements per request
        page = await market_data.fetch_funding_history(symbol, after + 1, _HISTORY_PAGE)
        rows.extend(page)
        if len(page) < _HISTORY_PAGE or page[-1].funding_time_ms <= after:
            return rows
        after = page[-1].funding_time_ms


async def open_paper_account(
    market_data: Any, ledger: Recorder, symbols: list[str], *, fresh: bool, leverage: int, margin_mode: str
) -> tuple[PaperVenue, bool]:
    """The dry-run's account: the ledger's newest paper account carried on (rebuilt from its facts), or a
    new one when there is none or ``fresh`` asks for it. Returns the venue and whether it is new; the
    choice is written to the ledger (``paper account ...``) with the leverage and margin mode of this run."""
    name = None if fresh else await latest_paper_account(ledger)
    book = await rebuild(ledger, name, leverage=leverage, margin_mode=margin_mode) if name else None
    paper = await PaperVenue.create(market_data, symbols, balances=dict(PAPER_OPENING), book=book)
    now = await market_data.now_ms()
    details: dict[str, Any] = {"paper_account": "", "leverage": leverage, "margin_mode": margin_mode}
    if book is None:
        paper.name = paper_account_name(now)
        opening = ", ".join(f"{v:f} {a}" for a, v in PAPER_OPENING.items())
        why = " (--fresh)" if fresh else ""
        message = f"paper account {paper.name} opened with {opening}{why}"
        details |= {"paper_account": paper.name, "opening": {a: str(v) for a, v in PAPER_OPENING.items()}}
    else:
        paper.name = book.name
        message = f"paper account {book.name} resumed as of {iso_utc(book.as_of_ms)}: {book.summary()}"
        details |= {"paper_account": book.name, "resumed_from_ms": book.as_of_ms, **book.counts}
    await ledger.add_event(EventKind.INFO, message, ts_ms=now, details=details)
    if book is not None and (diff := await differences(ledger, book)):
        await ledger.add_event(
            EventKind.ALERT,
            f"paper account {book.name} rebuilt from the ledger differs from its last snapshot: {'; '.join(diff)}. "
            "It carries on from the ledger's fills, transfers and funding payments (a liquidation is not one of "
            "them); `fundbot run --dry-run --fresh` opens a new paper account",
            ts_ms=now,
            details={"paper_account": book.name, "differences": diff},
        )
    return paper, book is None
