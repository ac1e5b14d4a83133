"""Engine jobs over the real ccxt against the emulator (ManualClock): entries, funding, exits, faults."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from decimal import Decimal

import pytest

from bot.domain import HOUR_MS, MINUTE_MS, PairState
from bot.engine.core import StartFailed
from bot.ledger.models import EventKind
from tests.engine.world import World, open_world


async def open_pairs(w: World) -> list:
    await w.engine.scan()
    pairs = await w.pairs(PairState.OPEN)
    assert pairs, "the carry strategy should enter in a week of strong positive funding"
    return pairs


async def assert_hedged(w: World, symbol: str) -> tuple[Decimal, Decimal]:
    spot, perp = await w.position(symbol)
    assert perp > 0
    assert abs(spot - perp) < await w.step(symbol), (symbol, spot, perp)
    return spot, perp


@pytest.mark.slow
async def test_pair_opens_with_equal_legs(db_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, db_url)
        pairs = await open_pairs(w)
        for p in pairs:
            await assert_hedged(w, p.symbol)
            assert abs(p.spot_qty - p.perp_qty) < await w.step(p.symbol)
        decisions = await w.ledger.events(kinds=[EventKind.DECISION])
        assert any((d.details or {}).get("action") == "enter" for d in decisions)


@pytest.mark.slow
async def test_funding_recorded_idempotent_and_backfilled(db_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, db_url)
        pairs = await open_pairs(w)
        held = {p.symbol for p in pairs}
        first_settlement = (w.now() // (8 * HOUR_MS) + 1) * 8 * HOUR_MS
        await w.advance(first_settlement + 2 * MINUTE_MS - w.now())
        assert await w.engine.sync_funding() == len(held)
        assert await w.engine.sync_funding() == 0  # idempotent
        # a day without syncing, then one call backfills each missed settlement of each pair
        await w.run_for(24 * HOUR_MS, HOUR_MS)
        assert await w.engine.sync_funding() == 3 * len(held)
        payments = await w.ledger.list_funding_payments(venue=w.venue.name)
        times = sorted({p.funding_time_ms for p in payments})
        assert times == [first_settlement + i * 8 * HOUR_MS for i in range(4)]
        assert all(p.amount > 0 for p in payments)
        assert all(p.pair_id is not None for p in payments)
        funding_events = await w.ledger.events(kinds=[EventKind.FUNDING])
        assert len(funding_events) == len(payments)


@pytest.mark.slow
async def test_price_shock_keeps_collateral_in_band_without_liquidation(sqlite_url: str) -> None:
    shock = {"price_shocks": [{"symbol": "SOLUSDT", "pct": 35, "at": "+2h", "duration": "1h"}]}
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, scenario=shock, symbols=["SOL/USDT"])
        await open_pairs(w)
        await w.engine.check_collateral()
        _before_spot, before_perp = await assert_hedged(w, "SOL/USDT")
        low = w.engine.treasury.band.low
        ratios = []
        end = w.now() + 4 * HOUR_MS
        while w.now() < end:
            await w.advance(5 * MINUTE_MS)
            await w.engine.check_collateral()
            c = await w.engine.treasury.collateral()
            ratios.append(c.ratio)
            assert c.ratio is not None and c.ratio >= low, (len(ratios), c.ratio)
        transfers = await w.ledger.list_transfers()
        assert any(t.to_wallet == "futures" for t in transfers[1:]), "the shock must be met by top-ups"
        spot, perp = await w.position("SOL/USDT")
        assert perp > 0 and abs(spot - perp) < await w.step("SOL/USDT"), "still hedged, never liquidated"
        assert perp >= before_perp * Decimal("0.5")


@pytest.mark.slow
async def test_price_shock_on_isolated_margin_tops_up_each_position_without_liquidation(sqlite_url: str) -> None:
    """+35% in an hour on an isolated 3x short: the position's own wallet is topped up (from the futures
    wallet, then from spot), so it is never liquidated with USDT idle beside it."""
    shock = {"price_shocks": [{"symbol": "SOLUSDT", "pct": 35, "at": "+2h", "duration": "1h"}]}
    async with AsyncExitStack() as stack:
        w = await open_world(
            stack, sqlite_url, scenario=shock, symbols=["SOL/USDT"], engine={"margin_mode": "isolated"}
        )
        await open_pairs(w)
        await w.engine.check_collateral()
        _spot, before_perp = await assert_hedged(w, "SOL/USDT")
        risk = w.sim.position_risk("SOLUSDT")[0]
        assert risk.margin_type == "ISOLATED"
        low = w.engine.treasury.band.low
        end = w.now() + 4 * HOUR_MS
        worst = Decimal(1)
        while w.now() < end:
            await w.advance(5 * MINUTE_MS)
            await w.engine.check_collateral()
            p = (await w.venue.fetch_positions(["SOL/USDT"]))["SOL/USDT"]
            worst = min(worst, p.isolated_margin / p.notional)
        assert not [r for r in w.sim.income("SOLUSDT") if r.income_type == "INSURANCE_CLEAR"], "liquidated"
        assert worst > Decimal("0.1"), worst  # the position's own ratio never went near maintenance
        spot, perp = await w.position("SOL/USDT")
        assert perp >= before_perp * Decimal("0.5") and abs(spot - perp) < await w.step("SOL/USDT")
        adds = [a for a in w.sim.margin_adjustments("SOLUSDT") if a.kind == 1]
        assert len(adds) >= 2, "the entry's 1/3 margin and the shock are both met by isolated top-ups"
        events = await w.ledger.events(kinds=[EventKind.TRANSFER])
        ids = [e.details["client_id"] for e in events if "isolated margin" in e.message]
        assert len(ids) >= 2 and not await w.ledger.open_intents()
        statuses = [(await w.ledger.get_intent(cid)).status.value for cid in ids]
        assert statuses == ["done"] * len(ids)
        final = (await w.venue.fetch_positions(["SOL/USDT"]))["SOL/USDT"]
        assert final.isolated_margin / final.notional >= low


@pytest.mark.slow
async def test_negative_funding_closes_the_pair(sqlite_url: str) -> None:
    flip = {"funding_overrides": [{"symbol": "SOLUSDT", "rate": "-0.002", "at": "+1h"}]}
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, scenario=flip, symbols=["SOL/USDT"])
        await open_pairs(w)
        await w.run_for(2 * HOUR_MS, 30 * MINUTE_MS, "scan")
        assert not await w.pairs(PairState.OPEN, PairState.OPENING, PairState.REBALANCING, PairState.CLOSING)
        spot, perp = await w.position("SOL/USDT")
        assert perp == 0 and spot < await w.step("SOL/USDT")
        closed = await w.pairs(PairState.CLOSED)
        assert closed and closed[0].perp_qty == 0 and closed[0].spot_qty < await w.step("SOL/USDT")  # dust only


@pytest.mark.slow
async def test_failed_second_leg_is_completed_or_unwound(sqlite_url: str) -> None:
    fault = {"faults": [{"endpoint": "POST /fapi/v1/order", "code": -1008, "count": 1}]}
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, scenario=fault, symbols=["SOL/USDT"])
        await w.engine.scan()
        spot, perp = await w.position("SOL/USDT")
        assert abs(spot - perp) < await w.step("SOL/USDT"), "no naked leg after a failed perp order"
        assert w.sim is not None
        active = await w.pairs(PairState.OPEN, PairState.OPENING, PairState.QUARANTINED)
        if perp > 0:
            assert active and active[0].state is PairState.OPEN


@pytest.mark.slow
async def test_transfer_meeting_insufficient_funds_shrinks_and_succeeds(sqlite_url: str) -> None:
    fault = {"faults": [{"endpoint": "POST /sapi/v1/asset/transfer", "code": -5013, "count": 1}]}
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, scenario=fault, symbols=["SOL/USDT"])
        await open_pairs(w)
        await assert_hedged(w, "SOL/USDT")
        transfers = await w.ledger.list_transfers()
        assert any(t.status == "failed" for t in transfers), "the -5013 answer is recorded"
        assert any(t.status == "done" and t.to_wallet == "futures" for t in transfers)
        account = await w.venue.fetch_futures_account()
        assert account.margin_balance > 0


@pytest.mark.slow
async def test_close_only_stops_entries_and_winds_pairs_down(sqlite_url: str) -> None:
    import typer
    from typer.testing import CliRunner

    from bot.engine.cli import register

    app = typer.Typer()
    register(app)

    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT", "XRP/USDT"])
        w.engine.builder.symbols = ["SOL/USDT"]  # first only SOL, so XRP would be a new entry later
        await open_pairs(w)
        args = ["control", "close-only", "on", "--url", sqlite_url]
        result = await asyncio.to_thread(CliRunner().invoke, app, args)  # the command runs its own loop
        assert result.exit_code == 0, result.output
        w.engine.builder.symbols = ["SOL/USDT", "XRP/USDT"]
        await w.advance(10 * MINUTE_MS)
        await w.engine.scan()
        assert w.engine.close_only
        assert not await w.pairs(PairState.OPEN, PairState.OPENING)
        for symbol in ("SOL/USDT", "XRP/USDT"):
            spot, perp = await w.position(symbol)
            assert perp == 0 and spot < await w.step(symbol)
        decisions = await w.ledger.events(kinds=[EventKind.DECISION])
        rules = {(d.symbol, (d.details or {}).get("rule")) for d in decisions}
        assert rules & {("XRP/USDT", "close_only_no_entry"), ("XRP/USDT", "skip_entries_disabled")}
        assert not await w.ledger.list_orders(symbol="XRP/USDT")


@pytest.mark.slow
async def test_snapshot_records_positions_with_liquidation_prices_for_status(db_url: str) -> None:
    from bot.ops.status import liquidation_prices

    async with AsyncExitStack() as stack:
        w = await open_world(stack, db_url)
        pairs = await open_pairs(w)
        await w.engine.snapshot_balances()
        events = await w.ledger.events(kinds=[EventKind.INFO])
        positions = [e for e in events if "positions" in (e.details or {})]
        assert len(positions) == 1
        recorded = positions[0].details["positions"]
        assert set(recorded) == {p.symbol for p in pairs}
        liq = liquidation_prices(events)
        for p in pairs:
            assert Decimal(recorded[p.symbol]["qty"]) == -p.perp_qty
            mark = Decimal(recorded[p.symbol]["mark_price"])
            assert liq[p.symbol] > mark, "a short is liquidated above the mark"
        await w.engine.snapshot_balances()  # nothing moved: no second event
        events = await w.ledger.events(kinds=[EventKind.INFO])
        assert len([e for e in events if "positions" in (e.details or {})]) == 1
        assert await w.ledger.latest_balances(venue=w.venue.name)


@pytest.mark.slow
async def test_a_venue_down_for_longer_than_the_start_budget_fails_with_one_line(sqlite_url: str) -> None:
    """Every call answers 503 -1008: start-up retries for engine.start_retry_s, then one line says why."""
    async with AsyncExitStack() as stack:
        w = await open_world(
            stack,
            sqlite_url,
            scenario={"faults": [{"endpoint": "*", "kind": "503"}]},
            start=False,
            engine={"start_retry_s": 1.5},
        )
        began = time.monotonic()
        with pytest.raises(StartFailed) as err:
            await w.engine.start()
        assert 0.4 <= time.monotonic() - began < 5.0  # it retried (jittered backoff) within the budget
        text = str(err.value)
        assert "\n" not in text and "kept failing at start" in text and "-1008" in text and "attempts" in text
        assert await w.ledger.events(kinds=[EventKind.INFO], message_prefix="engine started") == []


@pytest.mark.slow
async def test_a_scan_sells_the_dust_closed_pairs_left(sqlite_url: str) -> None:
    from bot.domain import Leg, Side
    from bot.execution.ids import order_id
    from bot.execution.plan import LegOrder

    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url)
        # a closed pair whose fills left 9.99 XRP on spot (10 bought, 0.01 fee in XRP, nothing sold)
        pair = await w.ledger.upsert_pair(
            venue=w.venue.name, symbol="XRP/USDT", now_ms=w.now(), state=PairState.OPENING, target_qty=Decimal(0)
        )
        runner = w.engine.executor.runner
        cid = order_id(pair.id, 1, Leg.SPOT)
        order = LegOrder(Leg.SPOT, Side.BUY, Decimal(10))
        await runner.write_intent(pair.id, "XRP/USDT", cid, order, "test", Decimal("0.5"))
        assert (await runner.run(pair.id, "XRP/USDT", cid, order)).ok
        await w.ledger.set_pair_state(pair.id, PairState.CLOSED, now_ms=w.now())
        await w.engine.scan()
        sweeps = [
            e for e in await w.ledger.events(kinds=[EventKind.DECISION], pair_id=pair.id)
            if (e.details or {}).get("rule") == "dust_sweep"
        ]  # fmt: skip
        assert len(sweeps) == 1 and sweeps[0].details["qty"] == "9", sweeps
        sold = [f for f in await w.ledger.list_fills(pair_id=pair.id) if f.side == "sell"]
        assert [f.quantity for f in sold] == [Decimal(9)]
