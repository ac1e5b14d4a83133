"""The engine under the operator's controls, set with the real `fundbot control` and read from the ledger
at every scan: close-only (also after 10,000 later events and a restart), pause, exit, capital limit."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from bot.domain import MINUTE_MS, PairState
from bot.engine.control_cli import control_app
from bot.engine.core import Engine
from bot.engine.daemon import assemble_engine
from bot.ledger.models import ControlKind, EventKind
from bot.ledger.repository import EventRecord
from strategies.base import Action, PairView, Reason, Target
from tests.engine.world import World, no_sleep, open_world

ACTIVE = (PairState.OPENING, PairState.OPEN, PairState.REBALANCING, PairState.CLOSING)


async def control(url: str, *args: str) -> str:
    """``fundbot control ARGS --url URL`` (it runs its own event loop, so in a thread)."""
    res = await asyncio.to_thread(CliRunner().invoke, control_app, [*args, "--url", url])
    assert res.exit_code == 0, res.output
    return res.output


async def rules(w: World, symbol: str) -> list[str]:
    return [(d.details or {}).get("rule", "") for d in await w.ledger.events(kinds=[EventKind.DECISION], symbol=symbol)]


@pytest.mark.slow
async def test_close_only_is_read_after_10000_later_events_and_a_restart(db_url: str) -> None:
    """The switch used to be found among the newest 500 events only: after a day of price and position
    notes a restarted daemon read it as off and entered again."""
    async with AsyncExitStack() as stack:
        w = await open_world(stack, db_url)
        w.engine.builder.symbols = ["SOL/USDT"]  # XRP is left for an entry after the restart
        await w.engine.scan()
        assert [p.symbol for p in await w.pairs(PairState.OPEN)] == ["SOL/USDT"]
        await control(db_url, "close-only", "on", "--reason", "maintenance")
        later = [EventRecord(EventKind.INFO, f"prices: note {i}", w.now() + i) for i in range(10_000)]
        for at in range(0, len(later), 2_500):
            await w.ledger.add_events(later[at : at + 2_500])
        restarted = assemble_engine(w.settings, w.venue, w.ledger, w.clock.now_ms, sleep=no_sleep)
        await restarted.start()
        await w.advance(10 * MINUTE_MS)
        await restarted.scan()
        assert restarted.close_only
        assert not await w.pairs(*ACTIVE), "held pairs are wound down"
        assert not await w.ledger.list_orders(symbol="XRP/USDT"), "and nothing new is entered"
        assert set(await rules(w, "XRP/USDT")) & {"close_only_no_entry", "skip_entries_disabled"}
        started = [e.message for e in await w.ledger.events(kinds=[EventKind.INFO]) if "engine started" in e.message]
        assert started[-1].endswith("close-only on")


@pytest.mark.slow
async def test_run_close_only_turns_the_switch_on_in_the_ledger(sqlite_url: str) -> None:
    """`run --close-only` is the switch itself: it outlives the run until `control close-only off`."""
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, start=False)
        w.engine.close_only = True
        await w.engine.start()
        (row,) = await w.ledger.controls()
        assert (row.kind, row.source) == (ControlKind.CLOSE_ONLY, "run --close-only")
        await w.engine.scan()
        assert not await w.pairs(*ACTIVE)
        await control(sqlite_url, "close-only", "off")
        await w.advance(10 * MINUTE_MS)
        await w.engine.scan()
        assert not w.engine.close_only and await w.pairs(PairState.OPEN)


@pytest.mark.slow
async def test_pause_stops_entries_on_that_symbol_only_and_keeps_a_held_pair(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url)
        out = await control(sqlite_url, "pause", "xrpusdt", "--reason", "delisting rumour")
        assert "XRP/USDT paused" in out
        await w.engine.scan()
        assert [p.symbol for p in await w.pairs(PairState.OPEN)] == ["SOL/USDT"], "the other symbol still trades"
        assert not await w.ledger.list_orders(symbol="XRP/USDT")
        assert (await rules(w, "XRP/USDT"))[-1] == "operator_pause"
        (sol,) = await w.pairs(PairState.OPEN)
        await control(sqlite_url, "pause", "SOL/USDT")
        await w.advance(10 * MINUTE_MS)
        await w.engine.scan()
        (kept,) = await w.pairs(PairState.OPEN)
        assert kept.id == sol.id and kept.perp_qty <= sol.perp_qty, "a held pair is kept, never grown"
        await w.engine.scan()
        assert (await rules(w, "XRP/USDT")).count("operator_pause") == 1, "the pause is logged once, not every scan"
        await control(sqlite_url, "resume", "XRP/USDT")
        await w.advance(10 * MINUTE_MS)
        await w.engine.scan()
        assert {p.symbol for p in await w.pairs(PairState.OPEN)} == {"SOL/USDT", "XRP/USDT"}


def test_a_paused_held_pair_is_not_grown_but_may_shrink_or_exit() -> None:
    held = {"SOL/USDT": PairView("SOL/USDT", PairState.OPEN, Decimal(10), Decimal(10), pair_id=1)}

    def target(qty: str, action: Action) -> Target:
        return Target("SOL/USDT", Decimal(qty), Reason("resize_up", "more"), action)

    grown = Engine._paused(target("15", Action.RESIZE), held)
    assert (grown.action, grown.target_qty) == (Action.HOLD, Decimal(10))
    assert grown.reason.rule == "operator_pause_no_increase"
    for kept in (target("6", Action.RESIZE), target("0", Action.EXIT), target("10", Action.REBALANCE)):
        assert Engine._paused(kept, held) is kept


@pytest.mark.slow
async def test_exit_closes_the_pair_through_the_engine_with_the_operators_reason(db_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, db_url)
        await w.engine.scan()
        held = {p.symbol: p for p in await w.pairs(PairState.OPEN)}
        assert set(held) == {"SOL/USDT", "XRP/USDT"}
        out = await control(db_url, "exit", "SOL/USDT", "--reason", "listing news")
        assert f"exit of SOL/USDT pair #{held['SOL/USDT'].id} requested" in out
        await w.advance(10 * MINUTE_MS)
        await w.engine.scan()
        closed = await w.ledger.get_pair(held["SOL/USDT"].id)
        assert closed is not None and closed.state is PairState.CLOSED
        spot, perp = await w.position("SOL/USDT")
        assert perp == 0 and spot < await w.step("SOL/USDT")
        assert [p.symbol for p in await w.pairs(PairState.OPEN)] == ["XRP/USDT"], "the other pair is untouched"
        decisions = await w.ledger.events(kinds=[EventKind.DECISION], symbol="SOL/USDT")
        exit_decision = next(d for d in decisions if (d.details or {}).get("rule") == "operator_exit")
        assert "operator exit: listing news" in exit_decision.message
        assert exit_decision.details["inputs"]["operator_reason"] == "listing news"
        assert exit_decision.details["action"] == "exit"
        assert not await w.ledger.controls(), "the request is done"
        (done,) = await w.ledger.control_history([ControlKind.EXIT])
        assert done.status == "done" and done.note == f"pair #{closed.id} closed by the engine"
        shown = await control(db_url, "show")
        assert f"SOL/USDT pair #{closed.id} done at" in shown and "exit requests  none waiting" in shown


@pytest.mark.slow
async def test_exit_with_pause_keeps_the_strategy_from_entering_again(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT"])
        await w.engine.scan()
        (pair,) = await w.pairs(PairState.OPEN)
        out = await control(sqlite_url, "exit", "SOL/USDT", "--pause", "--reason", "news")
        assert out.startswith("SOL/USDT paused") and f"exit of SOL/USDT pair #{pair.id} requested" in out
        for _ in range(3):
            await w.advance(10 * MINUTE_MS)
            await w.engine.scan()
        assert not await w.pairs(*ACTIVE), "closed, and not entered again"
        assert (await rules(w, "SOL/USDT"))[-1] == "operator_pause"


@pytest.mark.slow
async def test_an_exit_request_for_a_pair_closed_meanwhile_is_marked_done(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, symbols=["SOL/USDT"])
        await w.engine.scan()
        (pair,) = await w.pairs(PairState.OPEN)
        await control(sqlite_url, "exit", "SOL/USDT")
        await w.ledger.set_pair_state(pair.id, PairState.CLOSED, now_ms=w.now(), note="closed by hand")
        await w.engine.scan()
        (done,) = await w.ledger.control_history([ControlKind.EXIT])
        assert done.note == f"pair #{pair.id} was already closed"


@pytest.mark.slow
async def test_the_ledgers_capital_limit_replaces_the_setting(sqlite_url: str) -> None:
    async with AsyncExitStack() as stack:
        w = await open_world(stack, sqlite_url, engine={"capital_limit": "20000"})
        await control(sqlite_url, "capital-limit", "2000")
        await w.engine.scan()
        pairs = await w.pairs(PairState.OPEN)
        notional = sum((p.perp_qty * (p.entry_perp_price or 0) for p in pairs), Decimal(0))
        assert pairs and notional <= 2000, notional
        assert w.engine.capital_limit() == Decimal(2000)
        await control(sqlite_url, "capital-limit", "off")
        await w.engine.refresh_controls()
        assert w.engine.capital_limit() == Decimal(20000)
