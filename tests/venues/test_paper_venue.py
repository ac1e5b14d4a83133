"""PaperVenue: live market data from the emulator (as the 'real' venue), a simulated account on top."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

import ccxt
import pytest

from bot.domain import HOUR_MS, Leg, Side
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimExchange
from bot.sim.source import RandomWalk
from bot.venues.base import OrderRequest, Venue
from bot.venues.paper_venue import PaperVenue

from .conftest import PAIRS, START_MS, VenueEnv, open_env

D = Decimal


async def _paper(env: VenueEnv) -> PaperVenue:
    return await PaperVenue.create(env.venue, PAIRS, balances={"USDT": D(5_000)})


async def test_paper_orders_fill_at_live_prices_and_leave_the_live_account_untouched(ccxt_env: VenueEnv):
    paper = await _paper(ccxt_env)
    assert isinstance(paper, Venue)
    assert await paper.load_markets(PAIRS) == await ccxt_env.venue.load_markets(PAIRS)
    ccxt_env.clock.advance(HOUR_MS // 2)  # the live market moves on
    await ccxt_env.handle.tick()

    live_spot = (await ccxt_env.venue.fetch_order_book("BTC/USDT", Leg.SPOT, 5)).mid
    live_perp = (await ccxt_env.venue.fetch_order_book("BTC/USDT", Leg.PERP, 5)).mid
    await paper.transfer("USDT", D(2000), "spot", "futures")
    buy = await paper.create_order(OrderRequest("p-s", "BTC/USDT", Leg.SPOT, Side.BUY, "market", D("0.01")))
    sell = await paper.create_order(OrderRequest("p-p", "BTC/USDT", Leg.PERP, Side.SELL, "market", D("0.01")))
    assert buy.status == sell.status == "closed"
    assert abs(buy.average - live_spot) / live_spot < D("0.001")
    assert abs(sell.average - live_perp) / live_perp < D("0.001")
    assert buy.average >= live_spot and sell.average <= live_perp  # takers cross the spread

    paper_bal = {(b.wallet, b.asset): b.total for b in await paper.fetch_balances()}
    assert paper_bal[("spot", "BTC")] == D("0.01") - buy.fills[0].fee
    assert (await paper.fetch_positions(PAIRS))["BTC/USDT"].qty == D("-0.01")
    # the live (emulator) account saw nothing
    live_bal = {(b.wallet, b.asset): b.total for b in await ccxt_env.venue.fetch_balances()}
    assert live_bal == {("spot", "USDT"): D(10_000)}
    assert ccxt_env.sim.my_trades("spot", "BTCUSDT") == [] and ccxt_env.sim.transfer_history() == []
    assert await ccxt_env.venue.fetch_positions(PAIRS) == {}


async def test_paper_account_is_paid_funding_at_live_settlements(ccxt_env: VenueEnv):
    paper = await _paper(ccxt_env)
    await paper.transfer("USDT", D(2000), "spot", "futures")
    await paper.create_order(OrderRequest("f-p", "ETH/USDT", Leg.PERP, Side.SELL, "market", D("0.1")))
    info = (await paper.fetch_funding(["ETH/USDT"]))["ETH/USDT"]
    ccxt_env.clock.advance(info.next_funding_ms - ccxt_env.clock.now_ms() + 1000)
    await ccxt_env.handle.tick()
    income = await paper.fetch_funding_income("ETH/USDT")
    assert [i.funding_time_ms for i in income] == [info.next_funding_ms]
    live_rate = (await ccxt_env.venue.fetch_funding_history("ETH/USDT"))[-1].rate
    assert (income[0].amount > 0) == (live_rate > 0)
    assert await ccxt_env.venue.fetch_funding_income() == []


async def test_settlements_missed_while_the_venue_was_not_read_are_still_paid(ccxt_env: VenueEnv):
    """A venue pause (a 418 ban) longer than a funding interval: only the first missed settlement was
    known (its last predicted rate), the next ones were never paid to the paper account."""
    paper = await _paper(ccxt_env)
    await paper.transfer("USDT", D(2000), "spot", "futures")
    await paper.create_order(OrderRequest("g-p", "ETH/USDT", Leg.PERP, Side.SELL, "market", D("0.1")))
    info = (await paper.fetch_funding(["ETH/USDT"]))["ETH/USDT"]
    interval = info.interval_hours * HOUR_MS
    ccxt_env.clock.advance(info.next_funding_ms - ccxt_env.clock.now_ms() + 2 * interval + 1000)
    await ccxt_env.handle.tick()
    income = await paper.fetch_funding_income("ETH/USDT")
    assert [i.funding_time_ms for i in income] == [info.next_funding_ms + k * interval for k in range(3)]
    live = {r.funding_time_ms: r.rate for r in await ccxt_env.venue.fetch_funding_history("ETH/USDT")}
    assert all((i.amount > 0) == (live[i.funding_time_ms] > 0) for i in income)


async def test_paper_rejections_use_live_filters_and_ccxt_classes(ccxt_env: VenueEnv):
    paper = await _paper(ccxt_env)
    with pytest.raises(ccxt.InvalidOrder):
        await paper.create_order(OrderRequest("r1", "ETH/USDT", Leg.PERP, Side.SELL, "market", D("0.001")))
    with pytest.raises(ccxt.InsufficientFunds):
        await paper.transfer("USDT", D(6_000), "spot", "futures")


@pytest.mark.slow
async def test_paper_venue_needs_a_live_feed():
    clock = ManualClock(START_MS)
    sim = SimExchange(RandomWalk(seed=1, symbols=("BTCUSDT",), start_ms=START_MS, hours=4), clock)
    async with AsyncExitStack() as stack:
        env = await open_env("sim", stack)
        with pytest.raises(TypeError):
            PaperVenue(env.venue, sim)
