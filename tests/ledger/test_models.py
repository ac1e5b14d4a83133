"""The schema on both backends: exact Decimal money, enums, JSON details, natural keys."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from bot.domain import Leg, PairState, Side
from bot.ledger.models import Event, EventKind, Fill, Pair
from bot.ledger.repository import Ledger

AWKWARD = [
    Decimal("0.000000012345678901"),
    Decimal("123456789.123456789"),
    Decimal("99999999999999999999.999999999999999999"),
    Decimal("-0.000000000000000001"),
    Decimal("0.1"),
    Decimal("0"),
    Decimal("1E+3"),
]


async def test_money_round_trips_exactly_as_decimal(ledger: Ledger):
    async with ledger.engine.begin() as conn:
        for i, value in enumerate(AWKWARD):
            await conn.execute(
                Fill.__table__.insert().values(
                    venue="binance",
                    market=Leg.SPOT,
                    symbol="BTC/USDT",
                    venue_trade_id=str(i),
                    side=Side.BUY,
                    quantity=value,
                    price=value,
                    fee=value,
                    ts_ms=i,
                )
            )
    fills = await ledger.list_fills()
    assert [f.quantity for f in fills] == AWKWARD
    assert all(type(f.price) is Decimal and f.fee == f.quantity for f in fills)


async def test_money_is_stored_as_exact_text_on_sqlite(sqlite_url: str):
    led = await Ledger.open(sqlite_url)
    try:
        await led.record_fill(
            venue="binance",
            market=Leg.SPOT,
            symbol="BTC/USDT",
            venue_trade_id="1",
            side=Side.BUY,
            quantity=Decimal("123456789.123456789"),
            price=Decimal("0.000000012345678901"),
            fee=Decimal(0),
            ts_ms=1,
        )
        async with led.engine.connect() as conn:
            row = (await conn.execute(text("SELECT typeof(quantity), quantity, price FROM fills"))).one()
        assert row == ("text", "123456789.123456789000000000", "0.000000012345678901")
    finally:
        await led.close()


async def test_float_money_is_refused_before_reaching_the_database(ledger: Ledger):
    with pytest.raises(Exception, match="float"):
        await ledger.upsert_pair(venue="binance", symbol="BTC/USDT", now_ms=1, target_qty=0.1)  # type: ignore[arg-type]


async def test_enums_come_back_as_enums_and_bad_values_are_rejected_by_the_database(ledger: Ledger):
    pair = await ledger.upsert_pair(venue="binance", symbol="BTC/USDT", now_ms=1)
    got = await ledger.get_pair(pair.id)
    assert got is not None and got.state is PairState.OPENING
    with pytest.raises(IntegrityError):
        async with ledger.engine.begin() as conn:
            await conn.execute(text("UPDATE pairs SET state = 'bogus' WHERE id = :id"), {"id": pair.id})


async def test_one_active_pair_per_venue_and_symbol_but_closed_ones_may_repeat(ledger: Ledger):
    row = dict(
        venue="binance",
        symbol="ETH/USDT",
        perp_symbol="ETH/USDT:USDT",
        target_qty=Decimal(0),
        spot_qty=Decimal(0),
        perp_qty=Decimal(0),
        funding_earned=Decimal(0),
        opened_ms=1,
        updated_ms=1,
    )
    async with ledger.engine.begin() as conn:
        await conn.execute(Pair.__table__.insert().values(state=PairState.CLOSED, **row))
        await conn.execute(Pair.__table__.insert().values(state=PairState.CLOSED, **row))
        await conn.execute(Pair.__table__.insert().values(state=PairState.OPEN, **row))
    with pytest.raises(IntegrityError):
        async with ledger.engine.begin() as conn:
            await conn.execute(Pair.__table__.insert().values(state=PairState.OPENING, **row))


async def test_event_details_keep_json_with_decimals_as_strings(ledger: Ledger):
    eid = await ledger.add_event(
        EventKind.DECISION,
        "open BTC",
        ts_ms=5,
        symbol="BTC/USDT",
        details={"qty": Decimal("0.001"), "why": {"score": Decimal("1.25"), "ok": True}},
    )
    async with ledger.engine.connect() as conn:
        ev = (await conn.execute(select(Event.__table__).where(Event.__table__.c.id == eid))).one()
    assert ev.details == {"qty": "0.001", "why": {"score": "1.25", "ok": True}}
    assert ev.kind == "decision"
