"""Fill backfill through the engine over the real ccxt against the emulator: closed pairs included."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

import pytest

from bot.domain import MINUTE_MS, Leg, PairState
from bot.execution import SimpleTarget
from tests.engine.world import START_MS, World, open_world

pytestmark = pytest.mark.slow  # every test here is over ~2 s

CLOSE_MS = START_MS + 30 * MINUTE_MS
OUTAGE = {"endpoint": "GET /fapi/v1/userTrades", "kind": "503", "start": CLOSE_MS, "end": CLOSE_MS + MINUTE_MS}


async def recorded(w: World, pair_id: int, leg: Leg) -> Decimal:
    return sum((f.quantity for f in await w.ledger.list_fills(pair_id=pair_id) if f.market is leg), Decimal(0))


async def test_closing_perp_trades_unread_at_execution_are_backfilled_after_the_pair_closed(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, scenario={"faults": [OUTAGE]}, symbols=["SOL/USDT"])
        await w.engine.scan()
        (pair,) = await w.pairs(PairState.OPEN)
        opened = await recorded(w, pair.id, Leg.PERP)
        assert opened == pair.perp_qty > 0
        await w.advance(CLOSE_MS - w.now())  # userTrades answers 503 for the next minute
        result = await w.engine.executor.apply(SimpleTarget("SOL/USDT", Decimal(0), "test exit"))
        assert result.status == "done"
        closed = await w.ledger.get_pair(pair.id)
        assert closed.state is PairState.CLOSED
        assert await recorded(w, pair.id, Leg.PERP) == opened  # the closing trade could not be read
        assert any(o.filled_qty == opened for o in await w.ledger.list_orders(pair_id=pair.id) if o.side == "buy")

        await w.advance(2 * MINUTE_MS)  # the venue answers again
        report = await w.engine.reconciler.run()
        assert report.new_fills >= 1 and report.quarantined == []
        fills = [f for f in await w.ledger.list_fills(pair_id=pair.id) if f.market is Leg.PERP]
        assert sum(f.quantity for f in fills if f.side == "buy") == opened  # the close, read from the venue
        venue_trades = {f.venue_trade_id for f in await w.venue.fetch_fills("SOL/USDT", Leg.PERP)}
        assert {f.venue_trade_id for f in fills} == venue_trades
        assert (await w.engine.reconciler.run()).new_fills == 0  # idempotent
