"""Orphan legs through the engine over the real ccxt against the emulator: a ledger that lost its pairs
(a fresh one) while the venue still holds their legs blocks entries there until adopted or closed."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

import pytest

from bot.domain import Leg, PairState, Side
from bot.ledger.models import ControlKind, EventKind
from bot.ops import controls as actions
from bot.ops.controls import ControlRefused
from bot.venues.base import OrderRequest
from tests.engine.world import World, open_world

D = Decimal


async def trade(w: World, cid: str, symbol: str, leg: Leg, side: Side, qty: str, reduce: bool = False) -> None:
    req = OrderRequest(cid, symbol, leg, side, "market", D(qty), reduce_only=reduce)
    assert (await w.venue.create_order(req)).filled == D(qty)


async def blocks(w: World) -> dict[str, str]:
    return {c.symbol: c.reason or "" for c in await w.ledger.controls() if c.kind is ControlKind.ORPHAN}


async def request(w: World, symbol: str, kind: ControlKind) -> str:
    done = await actions.request_orphan_answer(
        w.ledger, symbol, kind, now_ms=w.now(), source="cli", where="the test ledger"
    )
    return done.message


async def lost_ledger_world(stack: AsyncExitStack, db_url: str) -> World:
    """The venue holds a hedged SOL pair and a naked XRP short from a run whose ledger is gone."""
    w = await open_world(stack, db_url, start=False)
    await w.venue.transfer("USDT", D(15_000), "spot", "futures")
    await trade(w, "old-1", "SOL/USDT", Leg.SPOT, Side.BUY, "20")
    await trade(w, "old-2", "SOL/USDT", Leg.PERP, Side.SELL, "20")
    await trade(w, "old-3", "XRP/USDT", Leg.PERP, Side.SELL, "500")
    await w.engine.start()
    return w


@pytest.mark.slow
async def test_lost_ledger_blocks_entries_on_orphans_until_adopted_or_closed(db_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await lost_ledger_world(stack, db_url)
        found = await blocks(w)
        sol_spot, _ = await w.position("SOL/USDT")  # 20 bought, less the fee taken in SOL
        assert set(found) == {"SOL/USDT", "XRP/USDT"} and D("19.9") < sol_spot < D(20)
        assert f"venue short 20, spot {sol_spot.normalize():f}" in found["SOL/USDT"]
        assert "venue short 500, spot 0" in found["XRP/USDT"]
        alerts = [a for a in await w.ledger.events(kinds=[EventKind.ALERT]) if (a.details or {}).get("alert")]
        by_symbol = {a.symbol: a.details for a in alerts if a.details["alert"] == "orphan_position"}
        assert by_symbol["SOL/USDT"]["adoptable"] is True and by_symbol["XRP/USDT"]["adoptable"] is False
        assert by_symbol["XRP/USDT"]["venue_short"] == "500" and by_symbol["XRP/USDT"]["ledger_short"] == "0"

        # nothing is traded on top: the strategy wants both (a week of strong funding) and enters neither
        await w.engine.scan()
        assert await w.ledger.list_pairs() == [] and await w.ledger.list_orders() == []
        decisions = await w.ledger.events(kinds=[EventKind.DECISION])
        assert {d.symbol for d in decisions if (d.details or {}).get("rule") == "orphan_blocked"} == set(found)
        assert await w.position("SOL/USDT") == (sol_spot, D(20))
        assert not (await w.engine.reconciler.run()).changed  # a quiet second look: no new alert

        with pytest.raises(ControlRefused, match="venue short 500, spot 0"):  # unequal legs: refused, said why
            await request(w, "XRP/USDT", ControlKind.ADOPT)
        assert "requested" in await request(w, "SOL/USDT", ControlKind.ADOPT)
        assert "requested" in await request(w, "XRP/USDT", ControlKind.CLOSE_ORPHAN)
        await w.engine.scan()

        (closed,) = await w.pairs(PairState.CLOSED)  # the XRP short, adopted to be closed, traded to flat
        assert closed.symbol == "XRP/USDT" and closed.adopted_perp_qty == D(500)
        assert closed.perp_qty == 0 and await blocks(w) == {}
        held = {p.symbol: p for p in await w.pairs(PairState.OPEN)}
        # once flat and unblocked, XRP is entered afresh; SOL's adopted legs are managed (the strategy grew them)
        assert held["XRP/USDT"].adopted_perp_qty is None
        assert await w.position("XRP/USDT") == (held["XRP/USDT"].spot_qty, held["XRP/USDT"].perp_qty)
        pair = held["SOL/USDT"]
        assert (pair.adopted_spot_qty, pair.adopted_perp_qty) == (sol_spot, D(20)) and pair.perp_qty >= 20
        assert await w.position("SOL/USDT") == (pair.spot_qty, pair.perp_qty)
        report = await w.engine.reconciler.run()
        assert report.quarantined == []  # the adopted legs plus the pair's fills explain the venue
        assert (await w.ledger.get_pair(pair.id)).state is PairState.OPEN

        # the adopted pair is managed like any other: the engine can close it
        from bot.execution import SimpleTarget

        result = await w.engine.executor.apply(SimpleTarget("SOL/USDT", D(0), "test exit"))
        assert result.status == "done" and (await w.ledger.get_pair(pair.id)).state is PairState.CLOSED
        assert (await w.position("SOL/USDT"))[1] == 0


@pytest.mark.slow
async def test_closing_orphans_by_hand_lifts_the_block(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await lost_ledger_world(stack, sqlite_url)
        assert set(await blocks(w)) == {"SOL/USDT", "XRP/USDT"}
        await trade(w, "hand-1", "XRP/USDT", Leg.PERP, Side.BUY, "500", reduce=True)
        await w.engine.reconcile()
        assert set(await blocks(w)) == {"SOL/USDT"}
        lifted = await w.ledger.control_history([ControlKind.ORPHAN])
        assert lifted[0].symbol == "XRP/USDT" and "no longer shows" in (lifted[0].note or "")
        await w.engine.scan()
        symbols = {p.symbol for p in await w.pairs(PairState.OPEN)}
        assert symbols == {"XRP/USDT"}  # entered where the block was lifted, not on top of SOL's legs
