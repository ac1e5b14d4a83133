"""Reconciliation against the real SimExchange and Ledger: crashes, backfills, mismatches, idempotence."""

from __future__ import annotations

import pytest
from execution.world import SYMBOL, Crash, D, World, make_world
from sqlalchemy import delete

from bot.domain import PairState
from bot.execution import SimpleTarget
from bot.ledger.models import EventKind, Fill, IntentKind, IntentStatus, TransferStatus
from bot.ledger.repository import Ledger
from bot.reconcile import Reconciler
from bot.treasury.evidence import DEFAULT_WINDOW_MS
from tests.waiting import wait_until

pytestmark = pytest.mark.memory_ledger  # reconciliation also runs on the backtest's recorder


@pytest.fixture
async def world(ledger: Ledger) -> World:
    w = make_world(ledger, spot_usdt="20000", futures_usdt="5000")
    await w.venue.setup_symbol(SYMBOL, 3, "cross")
    return w


def reconciler(w: World) -> Reconciler:
    return Reconciler(w.venue, w.ledger, w.now, symbols=[SYMBOL])


async def crash_mid_entry(w: World, qty: str) -> None:
    """Both orders reach the venue, then the process dies before recording anything."""
    w.venue.fail("create_order", Crash(), times=2, after_call=True)
    with pytest.raises(Crash):
        await w.executor().apply(SimpleTarget(SYMBOL, D(qty)))
    # the other leg's task is still running: let it reach the venue and die too
    await wait_until(lambda: w.venue.calls.get("create_order", 0) >= 2, "the other leg to reach the venue")
    w.venue.faults.clear()


@pytest.mark.slow
async def test_crash_mid_entry_is_recovered_without_duplicate_orders(world: World) -> None:
    await crash_mid_entry(world, "0.1")
    assert len(world.sim_orders("spot")) == 1 and len(world.sim_orders("perp")) == 1
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert pair.state is PairState.OPENING and pair.perp_qty == 0  # nothing recorded after the intents
    assert {i.status for i in await world.ledger.open_intents()} == {IntentStatus.SENT}
    assert await world.ledger.list_orders(pair_id=pair.id) == []

    report = await reconciler(world).run()
    assert sorted(report.resolved_intents) == [f"fb-{pair.id}-1-p", f"fb-{pair.id}-1-s"]
    assert report.quarantined == []
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert pair.state is PairState.OPEN and pair.perp_qty == D("0.1")
    assert D("0.1") <= pair.spot_qty < D("0.1001")  # the buy was grossed up for its BTC fee
    assert await world.ledger.open_intents() == []
    orders = await world.ledger.list_orders(pair_id=pair.id)
    assert {o.client_order_id for o in orders} == {f"fb-{pair.id}-1-s", f"fb-{pair.id}-1-p"}
    assert len(await world.ledger.list_fills(pair_id=pair.id)) >= 2

    # a restarted executor sees the position and does not buy it again
    res = await world.executor().apply(SimpleTarget(SYMBOL, D("0.1")))
    assert res.status in {"noop", "done"}
    assert len(world.sim_orders("perp")) == 1
    assert all(o.orig_qty <= D("0.0001") for o in world.sim_orders("spot")[1:])

    # idempotent: a second run changes nothing and writes nothing
    events_before = len(await world.ledger.events())
    again = await reconciler(world).run()
    assert not again.changed
    assert len(await world.ledger.events()) == events_before


async def test_intent_never_sent_is_marked_failed(world: World) -> None:
    pair = await world.ledger.upsert_pair(venue="sim", symbol=SYMBOL, now_ms=world.now())
    await world.ledger.create_intent(
        IntentKind.ORDER,
        f"fb-{pair.id}-1-s",
        now_ms=world.now(),
        pair_id=pair.id,
        payload={"symbol": SYMBOL, "leg": "spot", "side": "buy", "qty": "0.1"},
    )
    report = await reconciler(world).run()
    assert report.resolved_intents == [f"fb-{pair.id}-1-s"]
    intent = await world.ledger.get_intent(f"fb-{pair.id}-1-s")
    assert intent.status is IntentStatus.FAILED
    assert await world.ledger.active_pair("sim", SYMBOL) is None  # flat interrupted entry: closed


@pytest.mark.slow
async def test_unexplained_position_quarantines_the_pair_with_an_alert(world: World) -> None:
    await world.executor().apply(SimpleTarget(SYMBOL, D("0.05")))
    world.sim.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.01"))  # someone trades by hand
    report = await reconciler(world).run()
    assert report.quarantined == [SYMBOL]
    pair = await world.ledger.active_pair("sim", SYMBOL)
    assert pair.state is PairState.QUARANTINED
    alerts = await world.ledger.events(kinds=[EventKind.ALERT], symbol=SYMBOL)
    assert any("quarantined" in a.message for a in alerts)
    assert not (await reconciler(world).run()).changed


@pytest.mark.slow
async def test_missed_fills_are_backfilled(world: World) -> None:
    if not isinstance(world.ledger, Ledger):
        pytest.skip("deletes the ledger's fills through SQL: a loss the memory ledger cannot have")
    await world.executor().apply(SimpleTarget(SYMBOL, D("0.05")))
    pair = await world.ledger.active_pair("sim", SYMBOL)
    fills = await world.ledger.list_fills(pair_id=pair.id)
    assert not (await reconciler(world).run()).changed  # the executor already recorded everything
    async with world.ledger.engine.begin() as conn:  # the ledger lost its fills (e.g. a crash mid-record)
        await conn.execute(delete(Fill))
    report = await reconciler(world).run()
    assert report.new_fills == len(fills) and report.quarantined == []
    assert {f.venue_trade_id for f in await world.ledger.list_fills(pair_id=pair.id)} == {
        f.venue_trade_id for f in fills
    }


@pytest.mark.slow
async def test_lost_transfer_answer_is_settled_done_from_the_venue_history(world: World) -> None:
    """The venue executed it, the answer was lost: the treasury looks it up at once and records the tranId."""
    treasury = world.treasury()
    world.venue.fail("transfer", ConnectionError("reset"), times=1, after_call=True)
    result = await treasury.transfer(D("100"), "spot", "futures", "test")
    (venue_row,) = world.sim.transfer_history()
    assert result.tran_id == str(venue_row.tran_id) and result.amount == D("100")
    (row,) = await world.ledger.list_transfers()
    assert (row.status, row.venue_tran_id) == (TransferStatus.DONE, str(venue_row.tran_id))
    assert await world.ledger.open_intents() == []
    assert world.venue.calls["transfer"] == 1  # never sent twice


@pytest.mark.slow
async def test_transfer_in_flight_at_a_crash_is_settled_done_by_reconciliation(world: World) -> None:
    world.venue.fail("transfer", Crash(), times=1, after_call=True)
    with pytest.raises(Crash):
        await world.treasury().transfer(D("100"), "spot", "futures", "test")
    assert [t.status for t in await world.ledger.list_transfers()] == [TransferStatus.SENT]
    report = await reconciler(world).run()
    (venue_row,) = world.sim.transfer_history()
    (row,) = await world.ledger.list_transfers()
    assert (row.status, row.venue_tran_id) == (TransferStatus.DONE, str(venue_row.tran_id))
    assert len(report.resolved_intents) == 1 and report.alerts == []
    assert await world.ledger.open_intents() == []
    assert not (await reconciler(world).run()).changed


@pytest.mark.slow
async def test_transfer_that_never_executed_fails_only_once_its_window_was_read(world: World) -> None:
    world.venue.fail("transfer", Crash(), times=1)  # dies with the request on the wire, never executed
    with pytest.raises(Crash):
        await world.treasury().transfer(D("100"), "spot", "futures", "test")
    assert (await reconciler(world).run()).resolved_intents == []  # the venue may still execute it
    assert [t.status for t in await world.ledger.list_transfers()] == [TransferStatus.SENT]
    world.clock.advance(DEFAULT_WINDOW_MS + 1)
    report = await reconciler(world).run()
    (row,) = await world.ledger.list_transfers()
    assert row.status is TransferStatus.FAILED and "not in the venue's transfer history" in (row.last_error or "")
    assert len(report.resolved_intents) == 1 and world.sim.transfer_history() == []
    assert await world.ledger.open_intents() == []


@pytest.mark.slow
async def test_two_equal_lost_transfers_get_one_tran_id_each(world: World) -> None:
    world.venue.fail("transfer", Crash(), times=1, after_call=True)
    with pytest.raises(Crash):
        await world.treasury().transfer(D("100"), "spot", "futures", "a")
    world.clock.advance(1000)
    world.venue.fail("transfer", Crash(), times=1, after_call=True)
    with pytest.raises(Crash):
        await world.treasury().transfer(D("100"), "spot", "futures", "b")
    await reconciler(world).run()
    rows = await world.ledger.list_transfers()
    assert [r.status for r in rows] == [TransferStatus.DONE, TransferStatus.DONE]
    assert sorted(r.venue_tran_id for r in rows) == sorted(str(t.tran_id) for t in world.sim.transfer_history())


@pytest.mark.slow
async def test_coin_a_closed_pair_left_is_explained_and_an_unexplained_short_blocks(world: World) -> None:
    """Orphan legs are what the venue holds beyond what the ledger explains: spot coin left by a closed
    pair (its fills say so) blocks nothing; a short nobody recorded blocks entries until it is gone."""
    from bot.domain import Leg, Side
    from bot.execution.orders import record_venue_fill
    from bot.ledger.models import ControlKind
    from bot.venues.base import OrderRequest

    await world.executor().apply(SimpleTarget(SYMBOL, D("0.05")))
    pair = await world.ledger.active_pair("sim", SYMBOL)
    close = await world.venue.create_order(OrderRequest("by-hand", SYMBOL, Leg.PERP, Side.BUY, "market", D("0.05")))
    for f in close.fills:  # the short closed, the coin kept: recorded as the pair's, then the pair closed
        await record_venue_fill(world.ledger, "sim", f, "by-hand", pair.id)
    await world.ledger.set_pair_state(pair.id, PairState.CLOSED, now_ms=world.now())
    assert await reconciler(world).run() is not None
    assert not [c for c in await world.ledger.controls() if c.kind is ControlKind.ORPHAN]

    world.sim.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.02"))  # someone trades by hand
    report = await reconciler(world).run()
    (block,) = [c for c in await world.ledger.controls() if c.kind is ControlKind.ORPHAN]
    assert block.symbol == SYMBOL and "venue short 0.02" in (block.reason or "")
    assert "ledger explains short 0, spot 0.05" in (block.reason or "") and len(report.alerts) == 1
    world.sim.create_order("perp", "BTCUSDT", "BUY", "MARKET", quantity=D("0.02"), reduce_only=True)
    await reconciler(world).run()
    assert not [c for c in await world.ledger.controls() if c.kind is ControlKind.ORPHAN]
