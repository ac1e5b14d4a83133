"""``fundbot run --live`` as a process against ``fundbot emulator`` after its ledger was lost: the venue
still holds the pairs' legs, the restarted daemon (on a fresh ledger) trades nothing on top of them and
alerts; ``fundbot control adopt`` hands one back to it."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.domain import Leg, PairState, Side
from bot.emulator.server import EmulatorProcess
from bot.engine.control_cli import control_app
from bot.ledger.models import ControlKind, EventKind
from bot.ledger.repository import Ledger
from bot.venues.base import OrderRequest
from tests.engine.test_daemon import emulator_factory, start_daemon, wait_for  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow  # every test here is over ~2 s

SYMBOLS = ("SOL/USDT", "XRP/USDT")


def venue_of(emu: EmulatorProcess):  # type: ignore[no-untyped-def]
    from bot.venues.ccxt_factory import build_client
    from bot.venues.ccxt_venue import CcxtVenue

    return CcxtVenue(build_client(emu.connection, pro=True, tls=True, rateLimit=1), account="check")


async def venue_shorts(emu: EmulatorProcess) -> dict[str, Decimal]:
    venue = venue_of(emu)
    try:
        positions = await venue.fetch_positions(list(SYMBOLS))
        return {s: -p.qty for s, p in positions.items()}
    finally:
        await venue.close()


async def open_legs_by_an_earlier_run(emu: EmulatorProcess) -> dict[str, Decimal]:
    """The hedged legs of the pairs an earlier daemon held (its ledger is the one that was lost)."""
    venue = venue_of(emu)
    try:
        await venue.transfer("USDT", Decimal(20_000), "spot", "futures")
        for i, (symbol, qty) in enumerate((("SOL/USDT", "20"), ("XRP/USDT", "1000"))):
            for leg, side in ((Leg.SPOT, Side.BUY), (Leg.PERP, Side.SELL)):
                req = OrderRequest(f"gone-{i}-{leg.value}", symbol, leg, side, "market", Decimal(qty))
                await venue.create_order(req)
    finally:
        await venue.close()
    return await venue_shorts(emu)


def stop(proc, log: Path) -> None:  # type: ignore[no-untyped-def]
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_a_daemon_on_a_lost_ledger_trades_nothing_on_top_of_the_venues_legs_until_adopted(
    tmp_path: Path,
    emulator_factory: Callable[..., EmulatorProcess],  # noqa: F811
) -> None:
    emu = emulator_factory()
    held = await open_legs_by_an_earlier_run(emu)

    lost_db = f"sqlite+aiosqlite:///{tmp_path / 'lost.db'}"  # the ledger is gone: a new, empty one
    async with await Ledger.open(lost_db, migrate=True) as ledger:
        proc = start_daemon(tmp_path, lost_db, emu.connection_file, "second")
        log = tmp_path / "second.log"
        try:

            async def blocked_after_a_scan() -> bool:
                decisions = await ledger.events(kinds=[EventKind.DECISION])
                skipped = {d.symbol for d in decisions if (d.details or {}).get("rule") == "orphan_blocked"}
                return skipped == set(SYMBOLS)

            await wait_for(blocked_after_a_scan, proc, "both symbols blocked at a scan", log)
            alerts = [a for a in await ledger.events(kinds=[EventKind.ALERT]) if a.message.count("venue short")]
            assert {a.symbol for a in alerts} == set(SYMBOLS)
            for a in alerts:
                assert f"venue short {held[a.symbol].normalize():f}" in a.message
            assert await ledger.list_orders() == [] and await ledger.list_pairs() == []
            assert await venue_shorts(emu) == held  # nothing traded on top

            runner = CliRunner()
            out = await asyncio.to_thread(runner.invoke, control_app, ["adopt", "SOL/USDT", "--url", lost_db])
            assert out.exit_code == 0, out.output
            assert "adopt of SOL/USDT requested" in out.output

            async def adopted() -> list:
                return [p for p in await ledger.list_pairs([PairState.OPEN]) if p.adopted_perp_qty is not None]

            (pair,) = await wait_for(adopted, proc, "the SOL legs adopted", log)
            assert pair.symbol == "SOL/USDT" and pair.adopted_perp_qty == held["SOL/USDT"]
            blocks = {c.symbol for c in await ledger.controls() if c.kind is ControlKind.ORPHAN}
            assert blocks == {"XRP/USDT"}
            assert not [p for p in await ledger.list_pairs() if p.symbol == "XRP/USDT"]
            assert await ledger.list_pairs([PairState.QUARANTINED]) == []
        finally:
            if proc.poll() is None:
                stop(proc, log)
