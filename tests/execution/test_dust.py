"""Spot dust sweep against the real SimExchange (via SimVenue) and the real Ledger: only the coin the
bot's closed pairs left is sold, once it passes the spot market's minimum order."""

from __future__ import annotations

import pytest

from bot.domain import Leg, PairState, Side
from bot.execution import SimpleTarget
from bot.execution.dust import DustSweeper
from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger
from bot.reconcile import Reconciler
from bot.venues.base import OrderRequest
from execution.world import D, World, make_world

pytestmark = pytest.mark.slow  # every test here is over ~2 s

XRP = "XRP/USDT"


@pytest.fixture
async def world(ledger: Ledger) -> World:
    w = make_world(ledger, spot_usdt="3000", futures_usdt="1000", market="XRPUSDT")
    await w.venue.setup_symbol(XRP, 3, "cross")
    return w


async def spot_xrp(w: World) -> D:
    return sum((b.total for b in await w.venue.fetch_balances() if b.asset == "XRP"), D(0))


async def test_dust_of_closed_pairs_is_sold_once_it_passes_the_minimum_and_the_operators_coin_is_kept(
    world: World,
) -> None:
    w = world
    own = await w.venue.create_order(OrderRequest("by-hand-1", XRP, Leg.SPOT, Side.BUY, "market", D("50")))
    operators = own.filled - sum((f.fee for f in own.fills), D(0))  # 49.95 XRP after the fee in XRP
    ex = w.executor()
    sweeper = DustSweeper(ex, Reconciler(w.venue, w.ledger, w.now, config=ex.config))
    # each round trip of 100 XRP buys 101 (grossed up for the 0.1 % fee in XRP) and sells 100: 0.899 left
    for n in range(1, 12):
        await ex.apply(SimpleTarget(XRP, D("100")))
        await ex.apply(SimpleTarget(XRP, D(0)))
        if n == 10:  # 8.99 XRP: 8 lots of 1 XRP at 0.6 USDT are 4.8 USDT, below the 5 USDT minimum order
            assert await sweeper.sweep([XRP]) == {}
    closed = await w.ledger.list_pairs((PairState.CLOSED,), venue="sim")
    assert len(closed) == 11
    dust = await sweeper.dust(XRP, closed)
    assert dust == D("0.899") * 11
    await ex.apply(SimpleTarget(XRP, D("100")))  # a pair held while the sweep runs keeps its coin
    held = await w.ledger.active_pair("sim", XRP)
    assert held is not None
    before = await spot_xrp(w)
    assert before == operators + dust + held.spot_qty
    sold = await sweeper.sweep([XRP])
    assert sold == {XRP: D(9)}  # 9.889 XRP of dust: 9 lots sold, 0.889 stays until more joins it
    after = await spot_xrp(w)
    assert after == operators + held.spot_qty + dust - 9  # the operator's 49.95 XRP and the held leg untouched
    assert await sweeper.dust(XRP, closed) == dust - 9
    assert await sweeper.sweep([XRP]) == {}
    # the sale is a fill of the newest closed pair, behind a dust_sweep decision (so the report counts it)
    newest = max(closed, key=lambda p: p.id)
    fills = [f for f in await w.ledger.list_fills(pair_id=newest.id) if (f.client_order_id or "").endswith("-d1")]
    assert [(f.market, f.side, f.quantity) for f in fills] == [(Leg.SPOT, "sell", D(9))]
    decisions = await w.ledger.events(kinds=[EventKind.DECISION], pair_id=newest.id)
    assert any((e.details or {}).get("rule") == "dust_sweep" for e in decisions)
    assert await w.ledger.open_intents() == []
