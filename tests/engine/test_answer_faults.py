"""Garbled venue answers (emulator answer faults, real ccxt): an executed order whose answer is lost is
looked up, never presumed failed; a position read that does not parse is retried, never "no position"."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

from bot.domain import MINUTE_MS, Leg, PairState
from bot.ledger.models import IntentKind, IntentStatus
from tests.engine.world import SYMBOLS, World, open_world

ORDERS = ("POST /api/v3/order", "POST /fapi/v1/order")


async def venue_legs(w: World, symbol: str) -> tuple[Decimal, Decimal]:
    return await w.position(symbol)


async def assert_ledger_is_venue(w: World) -> None:
    """Every pair's legs as the venue has them, no naked leg, no order intent failed that the venue has."""
    for intent in await w.ledger.list_intents([IntentKind.ORDER], [IntentStatus.FAILED]):
        leg = Leg(intent.payload["leg"])
        found = await w.venue.fetch_order(intent.payload["symbol"], leg, intent.client_id)
        assert found is None or not found.filled, f"{intent.client_id} is failed but filled {found.filled} at the venue"
    assert await w.ledger.open_intents() == []
    for symbol in SYMBOLS:
        spot, short = await venue_legs(w, symbol)
        step = await w.step(symbol)
        assert abs(spot - short) < step, f"{symbol}: naked leg (venue spot {spot}, short {short})"
        pair = await w.ledger.active_pair(w.venue.name, symbol)
        if pair is None:
            assert short == 0 and spot < step, f"{symbol}: venue legs {spot}/{short} with no pair"
            continue
        assert pair.state is not PairState.QUARANTINED, f"{symbol} quarantined"
        assert pair.perp_qty == short, (symbol, pair.perp_qty, short)
        assert abs(pair.spot_qty - spot) < Decimal("1e-8"), (symbol, pair.spot_qty, spot)


async def test_truncated_order_answers_during_entries_are_looked_up(sqlite_url: str) -> None:
    faults = [{"endpoint": e, "kind": "truncate", "rate": 0.25, "after": True} for e in ORDERS]
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, scenario={"seed": 7, "faults": faults})
        for _ in range(4):
            await w.engine.scan()
            await w.advance(10 * MINUTE_MS)
            await w.engine.reconcile()
        fired = sum(r.fired for r in w.handle.emulator.faults.rules)
        assert fired >= 2, f"only {fired} answers truncated: the seed does not exercise the fault"
        assert await w.pairs(PairState.OPEN), "the entries went through"
        await assert_ledger_is_venue(w)
