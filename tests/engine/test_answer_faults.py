"""Garbled venue answers (emulator answer faults, real ccxt): an executed order whose answer is lost is
looked up, never presumed failed; a position read that does not parse is retried, never "no position"."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

import pytest

from bot.domain import MINUTE_MS, Leg, PairState
from bot.ledger.models import IntentKind, IntentStatus
from tests.engine.world import SYMBOLS, World, open_world

ORDERS = ("POST /api/v3/order", "POST /fapi/v1/order")


async def venue_legs(w: World, symbol: str) -> tuple[Decimal, Decimal]:
    return await w.position(symbol)


async def assert_ledger_is_venue(w: World, symbols: list[str] = SYMBOLS) -> None:
    """Every pair's legs as the venue has them, no naked leg, no order intent failed that the venue has."""
    for intent in await w.ledger.list_intents([IntentKind.ORDER], [IntentStatus.FAILED]):
        leg = Leg(intent.payload["leg"])
        found = await w.venue.fetch_order(intent.payload["symbol"], leg, intent.client_id)
        assert found is None or not found.filled, f"{intent.client_id} is failed but filled {found.filled} at the venue"
    assert await w.ledger.open_intents() == []
    for symbol in symbols:
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


@pytest.mark.slow
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


@pytest.mark.slow
async def test_null_and_garbage_position_reads_quarantine_no_healthy_pair(sqlite_url: str) -> None:
    faults = [
        {"endpoint": "GET /fapi/v3/positionRisk", "kind": "null", "rate": 0.1},
        {"endpoint": "GET /fapi/v3/positionRisk", "kind": "garbage", "rate": 0.1},
    ]
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, scenario={"seed": 3, "faults": faults})
        await w.engine.scan()
        assert len(await w.pairs(PairState.OPEN)) == len(SYMBOLS)
        for _ in range(30):
            await w.advance(10 * MINUTE_MS)
            await w.engine.reconcile()
        assert not await w.pairs(PairState.QUARANTINED)
        null_rule, garbage_rule = w.handle.emulator.faults.rules
        assert null_rule.fired >= 5 and garbage_rule.fired >= 5, (null_rule.fired, garbage_rule.fired)
        assert len(await w.pairs(PairState.OPEN)) == len(SYMBOLS)
        w.handle.emulator.faults.rules.clear()
        await assert_ledger_is_venue(w)


@pytest.mark.slow
async def test_failed_but_executed_intent_is_repaired_by_reconciliation(sqlite_url: str) -> None:
    """A ledger as the old code left it: the perp order filled, its answer was lost, the intent marked
    failed and the pair quarantined believing spot only. Reconciliation finds the order and heals it."""
    from bot.domain import Side
    from bot.execution.orders import OrderRunner
    from bot.venues.base import OrderRequest

    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT"])
        await w.venue.transfer("USDT", Decimal(2000), "spot", "futures")
        pair = await w.ledger.upsert_pair(venue=w.venue.name, symbol="SOL/USDT", now_ms=w.now(), target_qty=Decimal(5))
        runner = OrderRunner(
            w.venue, w.ledger, w.now, w.engine.executor.config, w.engine.executor.sleep, w.engine.executor.rng
        )
        for leg, side in ((Leg.SPOT, Side.BUY), (Leg.PERP, Side.SELL)):
            cid = f"fb-{pair.id}-1-{'s' if leg is Leg.SPOT else 'p'}"
            await w.ledger.create_intent(
                IntentKind.ORDER,
                cid,
                now_ms=w.now(),
                pair_id=pair.id,
                payload={"symbol": "SOL/USDT", "leg": leg.value, "side": side.value, "qty": "5"},
            )
            state = await w.venue.create_order(OrderRequest(cid, "SOL/USDT", leg, side, "market", Decimal(5)))
            if leg is Leg.SPOT:
                await runner.record(pair.id, state)
                await w.ledger.set_intent_status(cid, IntentStatus.DONE, now_ms=w.now())
            else:  # what the old code wrote for a truncated answer
                await w.ledger.set_intent_status(
                    cid, IntentStatus.FAILED, now_ms=w.now(), error="TypeError: string indices must be integers"
                )
        spot_fill = (await w.ledger.list_fills(pair_id=pair.id))[0]
        await w.ledger.upsert_pair(
            venue=w.venue.name,
            symbol="SOL/USDT",
            now_ms=w.now(),
            spot_qty=spot_fill.quantity - spot_fill.fee,
            perp_qty=Decimal(0),
            state=PairState.QUARANTINED,
        )

        await w.advance(10 * MINUTE_MS)  # periodic runs leave intents younger than the recvWindow alone
        report = await w.engine.reconciler.run()
        assert report.resolved_intents == [f"fb-{pair.id}-1-p"] and report.quarantined == []
        intent = await w.ledger.get_intent(f"fb-{pair.id}-1-p")
        assert intent.status is IntentStatus.DONE and "the venue has it" in (intent.last_error or "")
        healed = await w.ledger.get_pair(pair.id)
        assert healed.state is PairState.OPEN and healed.perp_qty == Decimal(5)
        perp_fills = [f for f in await w.ledger.list_fills(pair_id=pair.id) if f.market is Leg.PERP]
        assert sum(f.quantity for f in perp_fills) == Decimal(5)
        events = await w.ledger.events()
        assert any("quarantine released" in e.message for e in events)
        await assert_ledger_is_venue(w, ["SOL/USDT"])
        again = await w.engine.reconciler.run()  # idempotent
        assert not again.changed
