"""``fundbot control adopt`` / ``close`` on the ledger: refusals name the figures and what to do."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from bot.domain import PairState
from bot.engine.control_cli import control_app
from bot.ledger import db
from bot.ledger.models import ControlKind, EventKind
from bot.ledger.repository import Ledger
from bot.orphans import RECONCILE_SOURCE, OrphanLegs

pytestmark = pytest.mark.slow  # every test here is over ~2 s


def invoke(*args: str):
    return CliRunner().invoke(control_app, list(args))


def _on(url: str, fn):
    async def go():
        async with await Ledger.open(url, migrate=False) as ledger:
            return await fn(ledger)

    return asyncio.run(go())


async def _block(ledger: Ledger, legs: OrphanLegs) -> None:
    """What reconciliation writes when it finds orphan legs (``OrphanWatch.review``)."""
    control, _ = await ledger.set_control(
        ControlKind.ORPHAN,
        now_ms=1,
        source=RECONCILE_SOURCE,
        symbol=legs.symbol,
        value=legs.short,
        reason=f"{legs.figures()}; {legs.what_to_do()}",
    )
    details = {"alert": "orphan_position", "control_id": control.id, **legs.details()}
    await ledger.add_event(EventKind.ALERT, "orphan", ts_ms=1, symbol=legs.symbol, details=details)


def test_adopt_and_close_requests_and_their_refusals(sqlite_url: str) -> None:
    asyncio.run(db.upgrade(sqlite_url))
    lot, slack = Decimal("0.1"), Decimal("0.001")
    _on(sqlite_url, lambda led: _block(led, OrphanLegs("XRP/USDT", Decimal(0), Decimal(500), lot, slack)))
    _on(sqlite_url, lambda led: _block(led, OrphanLegs("SOL/USDT", Decimal("19.98"), Decimal(20), lot, slack)))

    bad = invoke("adopt", "XRPUSDT", "--url", sqlite_url)
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1
    assert "venue short 500, spot 0" in bad.output and "fundbot control close XRP/USDT" in bad.output
    assert "nothing was requested" in bad.output
    none = invoke("adopt", "BTC/USDT", "--url", sqlite_url)
    assert none.exit_code == 2 and "no orphan legs are recorded on BTC/USDT" in none.output

    ok = invoke("adopt", "SOL/USDT", "--reason", "the ledger was restored from nothing", "--url", sqlite_url)
    assert ok.exit_code == 0 and "adopt of SOL/USDT requested" in ok.output and "venue short 20" in ok.output
    assert "already requested" in invoke("adopt", "SOL/USDT", "--url", sqlite_url).output
    assert invoke("close", "XRP/USDT", "--url", sqlite_url).exit_code == 0
    shown = invoke("show", "--url", sqlite_url).output
    assert "orphan legs (entries blocked)" in shown and "SOL/USDT adopt requested" in shown
    assert "XRP/USDT close_orphan requested" in shown

    active = _on(sqlite_url, lambda led: led.controls())
    kinds = {(c.kind, c.symbol) for c in active}
    assert (ControlKind.ADOPT, "SOL/USDT") in kinds and (ControlKind.CLOSE_ORPHAN, "XRP/USDT") in kinds
    _on(sqlite_url, lambda led: led.upsert_pair(venue="binance", symbol="ETH/USDT", now_ms=2, state=PairState.OPEN))
    held = invoke("close", "ETH/USDT", "--url", sqlite_url)
    assert held.exit_code == 2 and "held as pair #" in held.output
