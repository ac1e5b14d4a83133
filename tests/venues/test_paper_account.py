"""The dry-run's paper account survives a restart: rebuilt from the ledger, it is the account that wrote it.

The daemon's own engine trades a paper account over the emulator's market (real ccxt, TLS loopback),
on SQLite and on Postgres; a second paper venue opened on the same ledger must hold the same balances,
positions, orders and trades, answer for the orders by client id, hand out new ids, and carry on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from bot.domain import HOUR_MS, MINUTE_MS, Leg, PairState, Side
from bot.engine.core import Engine
from bot.engine.daemon import assemble_engine
from bot.ledger.models import ControlKind, EventKind
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock
from bot.venues.base import OrderRequest
from bot.venues.paper_account import PaperAccountError, rebuild
from bot.venues.paper_venue import PaperVenue, open_paper_account
from tests.engine.world import START_MS, SYMBOLS, engine_settings, no_sleep
from tests.ledger_files import open_ledger

D = Decimal


@dataclass
class Market:
    handle: Any
    clock: ManualClock
    venue: Any
    ledger: Ledger
    db_url: str

    async def advance(self, ms: int, engine: Engine | None = None, step_ms: int = 10 * MINUTE_MS) -> None:
        end = self.clock.now_ms() + ms
        while self.clock.now_ms() < end:
            self.clock.advance(min(step_ms, end - self.clock.now_ms()))
            await self.handle.tick()
            if engine is not None:
                await engine.check_collateral()
                await engine.sync_funding()

    async def paper(self, fresh: bool = False, margin_mode: str = "cross") -> tuple[PaperVenue, bool]:
        return await open_paper_account(
            self.venue, self.ledger, SYMBOLS, fresh=fresh, leverage=3, margin_mode=margin_mode
        )

    def engine(self, paper: PaperVenue, margin_mode: str = "cross") -> Engine:
        settings = engine_settings(self.db_url, SYMBOLS, engine={"margin_mode": margin_mode})
        return assemble_engine(settings, paper, self.ledger, self.clock.now_ms, sleep=no_sleep)


@pytest.fixture
async def market(db_url: str) -> AsyncIterator[Market]:
    from bot.emulator.server import run_emulator
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    async with AsyncExitStack() as stack:
        clock = ManualClock(START_MS)
        handle = await stack.enter_async_context(run_emulator(symbols=SYMBOLS, clock=clock, tick_ms=50))
        venue = CcxtVenue(build_client(handle.connection, pro=True, tls=True, rateLimit=1), time_resync_s=0)
        stack.push_async_callback(venue.close)
        ledger = await open_ledger(db_url)
        stack.push_async_callback(ledger.close)
        yield Market(handle, clock, venue, ledger, db_url)


def account(paper: PaperVenue) -> tuple[Any, ...]:
    """Everything of the simulated account a restart must keep (amounts compared as numbers)."""
    sim = paper.sim
    spot = {a: fl for a, fl in sim.spot.balances().items() if any(fl)}
    positions = {
        s: (p.amt, p.entry_price, p.leverage, p.margin_type, p.isolated_wallet)
        for s, p in sim.futures.positions.items()
        if p.amt
    }
    trades = sorted((t.market, t.trade_id, t.order_id, t.qty, t.price, t.commission) for t in sim._trades)
    transfers = sorted((t.tran_id, t.amount, t.kind) for t in sim.transfer_history())
    return spot, sim.futures.wallet, positions, trades, transfers


@pytest.mark.parametrize("margin_mode", ["cross", "isolated"])
@pytest.mark.slow
async def test_the_rebuilt_paper_account_is_the_one_that_wrote_the_ledger(market: Market, margin_mode: str) -> None:
    first, new = await market.paper(margin_mode=margin_mode)
    assert new
    engine = market.engine(first, margin_mode)
    await engine.start()
    await engine.scan()
    assert len(await market.ledger.list_pairs([PairState.OPEN])) == 2
    await market.advance(12 * HOUR_MS, engine)  # funding settles (8 h interval), collateral checks run
    assert await market.ledger.list_funding_payments(venue=first.name)

    second, new = await market.paper(margin_mode=margin_mode)
    assert not new and second.name == first.name
    assert account(second) == account(first)
    for order in await market.ledger.list_orders(venue=first.name):  # lookups by client id still answer
        again = await second.fetch_order(order.symbol, order.leg, order.client_order_id)
        assert again is not None and again.venue_order_id == order.venue_order_id and again.status == order.status
    known = {int(o.venue_order_id) for o in await market.ledger.list_orders(venue=first.name)}
    fresh_id = await second.create_order(OrderRequest("x-1", "SOL/USDT", Leg.SPOT, Side.BUY, "market", D("0.1")))
    assert int(fresh_id.venue_order_id) > max(known)

    # wind the pairs down on the first account (sells, realised PnL, transfers back): the ledger's switch
    await market.ledger.set_control(ControlKind.CLOSE_ONLY, now_ms=market.clock.now_ms(), source="test")
    await engine.scan()
    await market.advance(HOUR_MS, engine)
    assert not await market.ledger.list_pairs([PairState.OPEN, PairState.CLOSING])
    third, _ = await market.paper(margin_mode=margin_mode)
    assert account(third) == account(first)


@pytest.mark.slow
async def test_a_restart_carries_on_its_pairs_and_is_paid_the_funding_it_held_through(market: Market) -> None:
    first, _ = await market.paper()
    engine = market.engine(first)
    await engine.start()
    await engine.scan()
    await engine.snapshot_balances()
    pairs = {p.id: p.symbol for p in await market.ledger.list_pairs([PairState.OPEN])}
    assert len(pairs) == 2
    down_from = market.clock.now_ms()
    await market.advance(9 * HOUR_MS)  # the daemon is down over a settlement (8 h interval)

    second, new = await market.paper()
    assert not new and second.name == first.name
    restarted = market.engine(second)
    restarted.fresh_account = new
    await restarted.start()
    await restarted.sync_funding()
    await restarted.scan()
    assert {p.id: p.symbol for p in await market.ledger.list_pairs([PairState.OPEN])} == pairs
    assert len(await market.ledger.list_pairs()) == 2, "no pair closed, none opened twice"
    paid = await market.ledger.list_funding_payments(since_ms=down_from, venue=second.name)
    assert {p.symbol for p in paid} == set(SYMBOLS) and all(p.pair_id in pairs and p.amount > 0 for p in paid)
    assert not await market.ledger.events(kinds=[EventKind.ALERT, EventKind.ERROR])
    resumed = await market.ledger.events(message_prefix=f"paper account {first.name} resumed")
    assert len(resumed) == 1 and "4 fills, 2 transfers, 0 funding payments replayed" in resumed[0].message


@pytest.mark.slow
async def test_fresh_opens_a_new_account_and_an_older_market_is_refused(market: Market) -> None:
    first, _ = await market.paper()
    engine = market.engine(first)
    await engine.start()
    await engine.scan()
    await market.advance(HOUR_MS)
    other, new = await market.paper(fresh=True)
    assert new and other.name != first.name
    assert {(b.wallet, b.asset): b.total for b in await other.fetch_balances()} == {("spot", "USDT"): D(100_000)}
    latest, _ = await market.paper()  # the newest account is the one carried on
    assert latest.name == other.name

    # the account was written later than this market's clock (an emulator replaying from an earlier start)
    later = market.clock.now_ms() + 2 * HOUR_MS
    await market.ledger.add_event(
        EventKind.INFO, f"paper account {first.name} resumed", ts_ms=later, details={"paper_account": first.name}
    )
    book = await rebuild(market.ledger, first.name, leverage=3, margin_mode="cross")
    assert book.as_of_ms == later
    with pytest.raises(PaperAccountError, match=r"after the venue's clock .* run with --fresh"):
        await PaperVenue.create(market.venue, SYMBOLS, book=book)


async def test_facts_that_do_not_add_up_are_refused_by_name(sqlite_url: str) -> None:
    async with await Ledger.open(sqlite_url) as ledger:
        await ledger.add_event(
            EventKind.INFO, "paper account paper-x opened", ts_ms=1, details={"paper_account": "paper-x"}
        )
        await ledger.record_fill(
            venue="paper-x",
            market=Leg.SPOT,
            symbol="BTC/USDT",
            venue_trade_id="1001",
            side=Side.SELL,
            quantity=D("0.5"),
            price=D(100),
            fee=D("0.05"),
            fee_asset="USDT",
            ts_ms=2,
        )
        with pytest.raises(PaperAccountError, match=r"paper-x .* leave BTC -0.5; start with `fundbot run --dry-run"):
            await rebuild(ledger, "paper-x", leverage=3, margin_mode="cross")


async def test_a_rebuild_that_disagrees_with_the_last_snapshot_is_named(sqlite_url: str) -> None:
    """A liquidation is no ledger fact: the replay still holds the short the venue closed. The snapshot the
    daemon took after it says otherwise, and the start says so (an alert) instead of carrying on silently."""
    from bot.ledger.repository import AssetBalance
    from bot.venues.paper_account import differences

    async with await Ledger.open(sqlite_url) as ledger:
        await ledger.add_event(
            EventKind.INFO, "paper account paper-x opened", ts_ms=1, details={"paper_account": "paper-x"}
        )
        for market, side, trade in ((Leg.SPOT, Side.BUY, "1001"), (Leg.PERP, Side.SELL, "1002")):
            await ledger.record_fill(
                venue="paper-x",
                market=market,
                symbol="BTC/USDT",
                venue_trade_id=trade,
                side=side,
                quantity=D("0.5"),
                price=D(100),
                fee=D(0),
                fee_asset="USDT",
                ts_ms=2,
            )
        book = await rebuild(ledger, "paper-x", leverage=3, margin_mode="cross")
        assert await differences(ledger, book) == []  # no snapshot after the facts: nothing to compare
        spot = {"BTC": AssetBalance(D("0.5"), D(0), D("0.5")), "USDT": AssetBalance(D(99_950), D(0), D(99_950))}
        await ledger.record_balance_snapshot(venue="paper-x", wallet="spot", ts_ms=5, balances=spot)
        await ledger.add_event(EventKind.INFO, "positions: none", ts_ms=5, details={"positions": {}})
        book = await rebuild(ledger, "paper-x", leverage=3, margin_mode="cross")
        assert book.positions["BTCUSDT"].amt == D("-0.5")
        assert await differences(ledger, book) == ["BTCUSDT position -0.5 (snapshot 0)"]
