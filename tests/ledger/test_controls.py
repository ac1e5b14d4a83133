"""Operator controls as ledger state (SQLite and Postgres): one active row per control, an event per change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from bot.ledger import db
from bot.ledger.controls import Controls
from bot.ledger.models import ACCOUNT, Control, ControlKind, ControlStatus, EventKind
from bot.ledger.repository import EventRecord, Ledger


async def _control_events(ledger: Ledger) -> list:
    return [e for e in await ledger.events(kinds=[EventKind.INFO]) if "control" in (e.details or {})]


async def test_a_switch_is_a_row_with_its_event_and_a_repeat_writes_nothing(ledger: Ledger) -> None:
    row, changed = await ledger.set_control(ControlKind.CLOSE_ONLY, now_ms=10, source="cli", reason="maintenance")
    assert changed and row.status is ControlStatus.ACTIVE and row.symbol == ACCOUNT and row.reason == "maintenance"
    again, changed = await ledger.set_control(ControlKind.CLOSE_ONLY, now_ms=20, source="cli")
    assert not changed and again.id == row.id
    assert Controls.of(await ledger.controls()).close_only
    cleared = await ledger.clear_control(ControlKind.CLOSE_ONLY, now_ms=30, source="cli")
    assert cleared is not None and cleared.status is ControlStatus.CLEARED and cleared.updated_ms == 30
    assert await ledger.clear_control(ControlKind.CLOSE_ONLY, now_ms=40, source="cli") is None
    assert not Controls.of(await ledger.controls()).close_only
    events = await _control_events(ledger)
    assert [e.message for e in events] == ["operator set close-only on: maintenance", "operator set close-only off"]
    # the details of the old event-only switch, which a downgraded daemon still reads
    assert [(e.details["control"], e.details["value"]) for e in events] == [("close_only", True), ("close_only", False)]
    assert [e.ts_ms for e in events] == [10, 30]


async def test_a_new_capital_limit_replaces_the_old_one(ledger: Ledger) -> None:
    await ledger.set_control(ControlKind.CAPITAL_LIMIT, now_ms=1, source="cli", value=Decimal("5000"))
    _, same = await ledger.set_control(ControlKind.CAPITAL_LIMIT, now_ms=2, source="cli", value=Decimal("5000.00"))
    assert not same
    await ledger.set_control(ControlKind.CAPITAL_LIMIT, now_ms=3, source="cli", value=Decimal("6000"))
    assert Controls.of(await ledger.controls()).capital_limit == Decimal("6000")
    (old,) = await ledger.control_history([ControlKind.CAPITAL_LIMIT])
    assert (old.value, old.status, old.note) == (Decimal("5000"), ControlStatus.CLEARED, "replaced by a newer value")
    events = await _control_events(ledger)
    assert [e.details["value"] for e in events] == ["5000", "6000"]


async def test_pauses_are_per_symbol_and_one_row_per_control_and_symbol_is_active(ledger: Ledger) -> None:
    await ledger.set_control(ControlKind.PAUSE, now_ms=1, source="cli", symbol="SOL/USDT")
    await ledger.set_control(ControlKind.PAUSE, now_ms=2, source="cli", symbol="XRP/USDT", reason="news")
    assert Controls.of(await ledger.controls()).paused == {"SOL/USDT", "XRP/USDT"}
    resumed = await ledger.clear_control(ControlKind.PAUSE, now_ms=3, source="cli", symbol="SOL/USDT")
    assert resumed is not None and resumed.symbol == "SOL/USDT"
    assert Controls.of(await ledger.controls()).paused == {"XRP/USDT"}
    messages = [e.message for e in await _control_events(ledger)]
    assert messages[-1] == "operator resumed SOL/USDT: entries allowed"
    assert "operator paused XRP/USDT: no entries: news" in messages
    row = {"kind": "pause", "symbol": "XRP/USDT", "status": "active", "source": "x", "created_ms": 4, "updated_ms": 4}
    with pytest.raises(IntegrityError):
        async with ledger.engine.begin() as conn:
            await conn.execute(Control.__table__.insert().values(**row))
    async with ledger.engine.begin() as conn:  # history rows may repeat
        await conn.execute(Control.__table__.insert().values(**{**row, "status": "cleared"}))


async def test_an_exit_request_names_its_pair_and_is_finished_once(ledger: Ledger) -> None:
    pair = await ledger.upsert_pair(venue="binance", symbol="SOL/USDT", now_ms=1)
    request, changed = await ledger.set_control(
        ControlKind.EXIT, now_ms=5, source="cli", symbol="SOL/USDT", pair_id=pair.id, reason="listing news"
    )
    assert changed
    (wanted,) = Controls.of(await ledger.controls()).exits
    assert (wanted.symbol, wanted.pair_id, wanted.reason) == ("SOL/USDT", pair.id, "listing news")
    assert wanted.requested_ms == 5
    done = await ledger.finish_request(request, now_ms=9, source="engine", note=f"pair #{pair.id} closed by the engine")
    assert done is not None and done.status is ControlStatus.DONE
    assert await ledger.finish_request(request.id, now_ms=10, source="engine", note="twice") is None
    assert not Controls.of(await ledger.controls()).exits
    events = await _control_events(ledger)
    assert [e.pair_id for e in events] == [pair.id, pair.id]
    assert events[-1].message == (
        f"SOL/USDT: operator exit of pair #{pair.id} done: listing news (pair #{pair.id} closed by the engine)"
    )
    assert events[-1].details["source"] == "engine" and events[-1].details["status"] == "done"


@pytest.mark.parametrize("newest", ["on", "off"])
@pytest.mark.slow
async def test_upgrading_an_older_ledger_keeps_close_only_as_its_events_left_it(db_url: str, newest: str) -> None:
    """Before the table the switch was an event; a ledger whose newest switch said on stays close-only."""
    await db.upgrade(db_url, "0002")
    ledger = await Ledger.open(db_url, migrate=False)
    try:
        other = "off" if newest == "on" else "on"
        switches = [(other, 1), (newest, 2)]
        await ledger.add_events(
            [
                EventRecord(
                    EventKind.INFO,
                    f"operator set close-only {v}",
                    ts,
                    details={"control": "close_only", "value": v == "on"},
                )
                for v, ts in switches
            ]
        )
        await ledger.add_events([EventRecord(EventKind.INFO, "prices: ...", 3 + i) for i in range(600)])
    finally:
        await ledger.close()
    assert await db.upgrade(db_url) == db.head_revision()
    async with await Ledger.open(db_url, migrate=False) as ledger:
        active = await ledger.controls()
    if newest == "off":
        assert active == []
        return
    (row,) = active
    assert (row.kind, row.symbol, row.status, row.created_ms) == (ControlKind.CLOSE_ONLY, ACCOUNT, "active", 2)
    assert row.source == "migration 0003" and row.note and row.note.startswith("carried over from event #")
