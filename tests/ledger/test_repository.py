"""Ledger repository behaviour on SQLite and Postgres: idempotent facts, pair life cycle, readers."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from bot.domain import HOUR_MS, Leg, PairState, Side
from bot.ledger.models import (
    EventKind,
    FundingSource,
    IntentKind,
    IntentStatus,
    RateKind,
    TransferStatus,
    Wallet,
)
from bot.ledger.repository import AssetBalance, EventRecord, FundingRecord, Ledger

T0 = 1_700_000_000_000

pytestmark = pytest.mark.memory_ledger  # every ``ledger`` test here also runs on the backtest's recorder


def fill_args(trade_id: str = "1", **over):
    args = dict(
        venue="binance",
        market=Leg.SPOT,
        symbol="BTC/USDT",
        venue_trade_id=trade_id,
        side=Side.BUY,
        quantity=Decimal("0.001"),
        price=Decimal("43000.12"),
        fee=Decimal("0.000001"),
        fee_asset="BTC",
        is_maker=False,
        client_order_id="c1",
        ts_ms=T0,
    )
    args.update(over)
    return args


# -- pairs -------------------------------------------------------------------------------------------


async def test_pair_is_created_then_updated_in_place(ledger: Ledger):
    p = await ledger.upsert_pair(venue="binance", symbol="BTC/USDT", now_ms=T0, target_qty=Decimal("0.5"))
    assert (p.state, p.perp_symbol, p.spot_qty, p.target_qty) == (PairState.OPENING, "BTC/USDT:USDT", 0, Decimal("0.5"))
    q = await ledger.upsert_pair(
        venue="binance",
        symbol="BTC/USDT",
        now_ms=T0 + 1,
        spot_qty=Decimal("0.5"),
        perp_qty=Decimal("0.499"),
        entry_spot_price=Decimal("43000"),
        state=PairState.OPEN,
    )
    assert q.id == p.id
    got = await ledger.get_pair(p.id)
    assert got is not None
    assert (got.state, got.target_qty, got.spot_qty, got.perp_qty, got.entry_spot_price, got.updated_ms) == (
        PairState.OPEN,
        Decimal("0.5"),
        Decimal("0.5"),
        Decimal("0.499"),
        Decimal("43000"),
        T0 + 1,
    )
    assert got.opened_ms == T0 and got.closed_ms is None
    assert (await ledger.active_pair("binance", "BTC/USDT")).id == p.id


async def test_pair_state_changes_and_closed_is_final(ledger: Ledger):
    p = await ledger.upsert_pair(venue="binance", symbol="ETH/USDT", now_ms=T0)
    for state in (PairState.OPEN, PairState.REBALANCING, PairState.OPEN, PairState.CLOSING):
        await ledger.set_pair_state(p.id, state, now_ms=T0 + 10)
    quarantined = await ledger.set_pair_state(p.id, PairState.QUARANTINED, now_ms=T0 + 20, note="hedge gap")
    assert (quarantined.state, quarantined.note) == (PairState.QUARANTINED, "hedge gap")
    closed = await ledger.set_pair_state(p.id, PairState.CLOSED, now_ms=T0 + 30)
    assert (closed.state, closed.closed_ms) == (PairState.CLOSED, T0 + 30)
    with pytest.raises(ValueError, match="closed"):
        await ledger.set_pair_state(p.id, PairState.OPEN, now_ms=T0 + 40)
    with pytest.raises(KeyError):
        await ledger.set_pair_state(12345, PairState.OPEN, now_ms=T0)
    # A new position on the same symbol is a new pair.
    assert await ledger.active_pair("binance", "ETH/USDT") is None
    again = await ledger.upsert_pair(venue="binance", symbol="ETH/USDT", now_ms=T0 + 50)
    assert again.id != p.id
    assert [x.id for x in await ledger.list_pairs([PairState.CLOSED])] == [p.id]
    assert [x.id for x in await ledger.list_pairs()] == [p.id, again.id]
    assert [x.id for x in await ledger.list_pairs(venue="other")] == []


# -- intents -----------------------------------------------------------------------------------------


async def test_intent_is_written_once_per_client_id(ledger: Ledger):
    a = await ledger.create_intent(IntentKind.ORDER, "fb-o-1", now_ms=T0, payload={"qty": Decimal("0.1")})
    await ledger.set_intent_status("fb-o-1", IntentStatus.SENT, now_ms=T0 + 1, count_attempt=True)
    b = await ledger.create_intent(IntentKind.ORDER, "fb-o-1", now_ms=T0 + 2, payload={"qty": "9"})
    assert (b.id, b.status, b.attempts, b.payload, b.created_ms) == (a.id, IntentStatus.SENT, 1, {"qty": "0.1"}, T0)
    with pytest.raises(ValueError, match="already belongs"):
        await ledger.create_intent(IntentKind.TRANSFER, "fb-o-1", now_ms=T0)


async def test_open_intents_are_those_not_settled(ledger: Ledger):
    pair = await ledger.upsert_pair(venue="binance", symbol="BTC/USDT", now_ms=T0)
    for i, kind in enumerate([IntentKind.ORDER, IntentKind.ORDER, IntentKind.TRANSFER, IntentKind.CANCEL]):
        await ledger.create_intent(kind, f"id{i}", now_ms=T0 + i, pair_id=pair.id)
    await ledger.set_intent_status("id0", IntentStatus.DONE, now_ms=T0 + 5)
    await ledger.set_intent_status("id1", IntentStatus.UNKNOWN, now_ms=T0 + 5, error="timeout")
    await ledger.set_intent_status("id3", IntentStatus.FAILED, now_ms=T0 + 5, error="-2011 unknown order")
    assert [i.client_id for i in await ledger.open_intents()] == ["id1", "id2"]
    assert [i.client_id for i in await ledger.open_intents([IntentKind.TRANSFER])] == ["id2"]
    got = await ledger.get_intent("id1")
    assert got is not None and (got.last_error, got.updated_ms, got.pair_id) == ("timeout", T0 + 5, pair.id)
    with pytest.raises(KeyError):
        await ledger.set_intent_status("missing", IntentStatus.DONE, now_ms=T0)


# -- orders and fills --------------------------------------------------------------------------------


async def test_order_upsert_by_client_id_ignores_stale_updates(ledger: Ledger):
    common = dict(
        client_order_id="fb-1",
        venue="binance",
        symbol="BTC/USDT:USDT",
        leg=Leg.PERP,
        side=Side.SELL,
        type="limit",
        quantity=Decimal("0.010"),
        price=Decimal("43000.5"),
    )
    await ledger.record_order(**common, now_ms=T0, reduce_only=True)
    await ledger.record_order(
        **common,
        now_ms=T0 + 20,
        venue_order_id="777",
        status="open",
        filled_qty=Decimal("0.004"),
        avg_price=Decimal("43000.5"),
    )
    # A late REST answer from before the WebSocket update must not win.
    await ledger.record_order(**common, now_ms=T0 + 10, status="open", filled_qty=Decimal("0.001"))
    o = await ledger.record_order(**common, now_ms=T0 + 30, status="closed", filled_qty=Decimal("0.010"))
    assert (o.venue_order_id, o.status, o.filled_qty, o.avg_price, o.created_ms, o.updated_ms, o.reduce_only) == (
        "777",
        "closed",
        Decimal("0.010"),
        Decimal("43000.5"),
        T0,
        T0 + 30,
        True,
    )
    assert [x.client_order_id for x in await ledger.list_orders(statuses=["closed"])] == ["fb-1"]
    assert await ledger.list_orders(symbol="ETH/USDT") == []
    assert (await ledger.get_order("fb-1")).leg is Leg.PERP


async def test_fill_recorded_twice_is_stored_once(ledger: Ledger):
    assert await ledger.record_fill(**fill_args("100")) is True
    assert await ledger.record_fill(**fill_args("100", quantity=Decimal("5"))) is False
    # Binance trade ids are per symbol and market: the same id elsewhere is a different trade.
    assert await ledger.record_fill(**fill_args("100", symbol="ETH/USDT")) is True
    assert await ledger.record_fill(**fill_args("100", market=Leg.PERP, symbol="BTC/USDT:USDT")) is True
    fills = await ledger.list_fills(symbol="BTC/USDT")
    assert len(fills) == 1 and fills[0].quantity == Decimal("0.001") and fills[0].is_maker is False
    assert len(await ledger.list_fills()) == 3
    assert len(await ledger.list_fills(client_order_id="c1", since_ms=T0, limit=2)) == 2
    assert await ledger.list_fills(since_ms=T0 + 1) == []


async def test_concurrent_duplicate_fills_store_one_row(ledger: Ledger):
    results = await asyncio.gather(*(ledger.record_fill(**fill_args("42")) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert len(await ledger.list_fills()) == 1


# -- transfers ---------------------------------------------------------------------------------------


async def test_transfer_is_idempotent_by_client_id_and_venue_tran_id(ledger: Ledger):
    args = dict(
        client_id="fb-t-1",
        venue="binance",
        asset="USDT",
        amount=Decimal("250.5"),
        from_wallet=Wallet.SPOT,
        to_wallet=Wallet.FUTURES,
        now_ms=T0,
    )
    assert await ledger.record_transfer(**args) is True
    assert await ledger.record_transfer(**{**args, "amount": Decimal("1")}) is False
    t = await ledger.update_transfer(
        "fb-t-1", now_ms=T0 + 5, status=TransferStatus.DONE, venue_tran_id="998877", count_attempt=True
    )
    assert (t.status, t.venue_tran_id, t.attempts, t.amount) == (TransferStatus.DONE, "998877", 1, Decimal("250.5"))
    # A venue transfer found in history under another client id is the same transfer.
    assert await ledger.record_transfer(**{**args, "client_id": "hist-998877", "venue_tran_id": "998877"}) is False
    assert [x.client_id for x in await ledger.list_transfers()] == ["fb-t-1"]
    assert await ledger.list_transfers(statuses=[TransferStatus.PENDING]) == []
    with pytest.raises(ValueError):
        await ledger.record_transfer(**{**args, "client_id": "x", "to_wallet": Wallet.SPOT})
    with pytest.raises(KeyError):
        await ledger.update_transfer("nope", now_ms=T0)


# -- funding -----------------------------------------------------------------------------------------


async def test_funding_payment_recorded_once_and_added_to_the_pair(ledger: Ledger):
    pair = await ledger.upsert_pair(venue="binance", symbol="BTC/USDT", now_ms=T0)
    args = dict(
        venue="binance",
        account="main",
        symbol="BTC/USDT:USDT",
        funding_time_ms=T0 + 8 * HOUR_MS,
        amount=Decimal("1.234567890123456789"),
        source=FundingSource.INCOME,
        now_ms=T0,
        rate=Decimal("0.0001"),
        position_size=Decimal("-0.5"),
        pair_id=pair.id,
    )
    assert await ledger.record_funding_payment(**args) is True
    assert await ledger.record_funding_payment(**args) is False
    assert await ledger.record_funding_payment(**{**args, "funding_time_ms": T0 + 16 * HOUR_MS}) is True
    got = await ledger.get_pair(pair.id)
    assert got is not None and got.funding_earned == Decimal("2.469135780246913578")
    rows = await ledger.list_funding_payments("BTC/USDT:USDT", since_ms=T0 + 9 * HOUR_MS)
    assert [r.funding_time_ms for r in rows] == [T0 + 16 * HOUR_MS]
    assert len(await ledger.list_funding_payments()) == 2
    assert await ledger.list_funding_payments(symbol="ETH/USDT:USDT") == []


async def test_income_replaces_a_computed_estimate_and_the_pair_total_follows(ledger: Ledger):
    pair = await ledger.upsert_pair(venue="binance", symbol="BTC/USDT", now_ms=T0)
    key = dict(venue="binance", account="main", symbol="BTC/USDT:USDT", funding_time_ms=T0, pair_id=pair.id)
    assert (
        await ledger.record_funding_payment(**key, amount=Decimal("1.00"), source=FundingSource.COMPUTED, now_ms=T0)
        is True
    )
    assert (
        await ledger.record_funding_payment(**key, amount=Decimal("0.98"), source=FundingSource.INCOME, now_ms=T0 + 1)
        is True
    )
    assert (
        await ledger.record_funding_payment(**key, amount=Decimal("5"), source=FundingSource.INCOME, now_ms=T0 + 2)
        is False
    )
    assert (
        await ledger.record_funding_payment(**key, amount=Decimal("5"), source=FundingSource.COMPUTED, now_ms=T0 + 3)
        is False
    )
    [row] = await ledger.list_funding_payments()
    assert (row.amount, row.source, row.recorded_ms) == (Decimal("0.98"), FundingSource.INCOME, T0 + 1)
    assert (await ledger.get_pair(pair.id)).funding_earned == Decimal("0.98")


async def test_settled_rates_are_kept_and_predicted_rates_follow_the_newest_observation(ledger: Ledger):
    base = dict(venue="binance", symbol="BTC/USDT:USDT", funding_time_ms=T0)
    assert (
        await ledger.record_funding_rate(
            **base, rate=Decimal("0.0001"), kind=RateKind.PREDICTED, observed_ms=T0 - 100, interval_hours=8
        )
        is True
    )
    assert (
        await ledger.record_funding_rate(**base, rate=Decimal("0.0002"), kind=RateKind.PREDICTED, observed_ms=T0 - 50)
        is True
    )
    assert (
        await ledger.record_funding_rate(**base, rate=Decimal("0.0009"), kind=RateKind.PREDICTED, observed_ms=T0 - 80)
        is False
    )
    assert (
        await ledger.record_funding_rate(
            **base, rate=Decimal("0.00015"), kind=RateKind.SETTLED, observed_ms=T0 + 1, interval_hours=8
        )
        is True
    )
    assert (
        await ledger.record_funding_rate(**base, rate=Decimal("0.7"), kind=RateKind.SETTLED, observed_ms=T0 + 2)
        is False
    )
    rows = await ledger.funding_rates("BTC/USDT:USDT")
    by_kind = {r.kind: r for r in rows}
    assert (by_kind[RateKind.PREDICTED].rate, by_kind[RateKind.PREDICTED].interval_hours) == (Decimal("0.0002"), 8)
    assert by_kind[RateKind.SETTLED].rate == Decimal("0.00015")
    assert [r.rate for r in await ledger.funding_rates("BTC/USDT:USDT", kind=RateKind.SETTLED)] == [Decimal("0.00015")]
    assert await ledger.funding_rates("BTC/USDT:USDT", since_ms=T0 + 1) == []
    assert await ledger.funding_rates("ETH/USDT:USDT") == []


async def test_a_scans_rates_written_together_follow_the_same_rules(ledger: Ledger):
    """``record_funding_rates`` (one transaction for a scan's predictions) keeps ``record_funding_rate``'s
    rules: a newer prediction overwrites, an older one does not, a settled rate is written once."""
    btc = dict(venue="binance", symbol="BTC/USDT:USDT", funding_time_ms=T0)
    eth = dict(venue="binance", symbol="ETH/USDT:USDT", funding_time_ms=T0)
    await ledger.record_funding_rates(
        [
            {
                **btc,
                "rate": Decimal("0.0001"),
                "kind": RateKind.PREDICTED,
                "observed_ms": T0 - 100,
                "interval_hours": 8,
            },
            {**eth, "rate": Decimal("0.0003"), "kind": RateKind.PREDICTED, "observed_ms": T0 - 100},
            {**btc, "rate": Decimal("0.00015"), "kind": RateKind.SETTLED, "observed_ms": T0 + 1},
        ]
    )
    await ledger.record_funding_rates(
        [
            {**btc, "rate": Decimal("0.0002"), "kind": RateKind.PREDICTED, "observed_ms": T0 - 50},
            {**eth, "rate": Decimal("0.0009"), "kind": RateKind.PREDICTED, "observed_ms": T0 - 200},
            {**btc, "rate": Decimal("0.7"), "kind": RateKind.SETTLED, "observed_ms": T0 + 2},
        ]
    )
    await ledger.record_funding_rates([])
    btc_rows = {r.kind: r for r in await ledger.funding_rates("BTC/USDT:USDT")}
    assert (btc_rows[RateKind.PREDICTED].rate, btc_rows[RateKind.PREDICTED].interval_hours) == (Decimal("0.0002"), 8)
    assert btc_rows[RateKind.SETTLED].rate == Decimal("0.00015")
    assert [r.rate for r in await ledger.funding_rates("ETH/USDT:USDT")] == [Decimal("0.0003")]


# -- balances ----------------------------------------------------------------------------------------


async def test_latest_balances_are_the_newest_snapshot_of_each_wallet(ledger: Ledger):
    def bal(total: str) -> AssetBalance:
        return AssetBalance(free=Decimal(total), used=Decimal(0), total=Decimal(total))

    assert (
        await ledger.record_balance_snapshot(
            venue="binance", wallet=Wallet.SPOT, ts_ms=T0, balances={"USDT": bal("100"), "BTC": bal("0.5")}
        )
        == 2
    )
    assert (
        await ledger.record_balance_snapshot(
            venue="binance", wallet=Wallet.SPOT, ts_ms=T0, balances={"USDT": bal("100")}
        )
        == 0
    )
    await ledger.record_balance_snapshot(
        venue="binance", wallet=Wallet.SPOT, ts_ms=T0 + 60_000, balances={"USDT": bal("90.000000000000000001")}
    )
    await ledger.record_balance_snapshot(
        venue="binance", wallet=Wallet.FUTURES, ts_ms=T0 + 1, balances={"USDT": bal("50")}
    )
    latest = await ledger.latest_balances()
    assert [(b.wallet, b.asset, b.total) for b in latest] == [
        (Wallet.FUTURES, "USDT", Decimal("50")),
        (Wallet.SPOT, "USDT", Decimal("90.000000000000000001")),
    ]
    assert await ledger.latest_balances(venue="other") == []


# -- events ------------------------------------------------------------------------------------------


async def test_events_filter_by_time_id_kind_symbol_and_limit(ledger: Ledger):
    ids = [
        await ledger.add_event(
            EventKind.DECISION, "open BTC", ts_ms=T0, symbol="BTC/USDT", details={"score": Decimal("1.5")}
        ),
        await ledger.add_event(EventKind.ORDER, "buy BTC", ts_ms=T0 + 1, symbol="BTC/USDT"),
        await ledger.add_event(EventKind.ALERT, "margin low", ts_ms=T0 + 2),
        await ledger.add_event(EventKind.FILL, "ETH filled", ts_ms=T0 + 3, symbol="ETH/USDT"),
    ]
    assert ids == sorted(ids) and len(set(ids)) == 4

    async def msgs(**kw) -> list[str]:
        return [e.message for e in await ledger.events(**kw)]

    assert await msgs() == ["open BTC", "buy BTC", "margin low", "ETH filled"]
    assert await msgs(since_ms=T0 + 2) == ["margin low", "ETH filled"]
    assert await msgs(after_id=ids[1]) == ["margin low", "ETH filled"]
    assert await msgs(kinds=[EventKind.ALERT, EventKind.FILL]) == ["margin low", "ETH filled"]
    assert await msgs(symbol="BTC/USDT") == ["open BTC", "buy BTC"]
    assert await msgs(limit=2) == ["open BTC", "buy BTC"]
    assert await msgs(limit=2, newest_first=True) == ["ETH filled", "margin low"]
    assert await msgs(symbol="BTC/USDT", kinds=[EventKind.ORDER], since_ms=T0) == ["buy BTC"]
    first = (await ledger.events(limit=1))[0]
    assert (first.kind, first.details, first.ts_ms) == (EventKind.DECISION, {"score": "1.5"}, T0)


async def test_ledger_reopens_an_existing_database_without_losing_rows(db_url: str):
    async with await Ledger.open(db_url) as led:
        await led.add_event(EventKind.INFO, "started", ts_ms=T0)
    async with await Ledger.open(db_url, migrate=True) as led:
        assert [e.message for e in await led.events()] == ["started"]


async def test_in_memory_ledger_is_migrated_and_usable():
    async with await Ledger.open("sqlite+aiosqlite://") as led:
        assert await led.record_fill(**fill_args("1")) is True
        assert await led.record_fill(**fill_args("1")) is False
        await led.add_event(EventKind.INFO, "backtest start", ts_ms=T0)
        assert [e.message for e in await led.events()] == ["backtest start"]


async def test_concurrent_events_get_increasing_ids_in_commit_order(ledger: Ledger):
    ids = await asyncio.gather(*(ledger.add_event(EventKind.INFO, f"e{i}", ts_ms=T0 + i) for i in range(20)))
    events = await ledger.events()
    assert sorted(ids) == [e.id for e in events] and len(set(ids)) == 20


async def test_plain_strings_work_wherever_an_enum_is_expected(ledger: Ledger):
    """Callers holding ccxt-style strings ("spot", "predicted") get the same behaviour as with enums."""
    base = dict(venue="binance", symbol="BTC/USDT:USDT", funding_time_ms=T0)
    await ledger.record_funding_rate(**base, rate=Decimal("0.1"), kind="predicted", observed_ms=1)
    assert await ledger.record_funding_rate(**base, rate=Decimal("0.2"), kind="predicted", observed_ms=2) is True
    assert (await ledger.funding_rates("BTC/USDT:USDT"))[0].kind is RateKind.PREDICTED
    with pytest.raises(ValueError):
        await ledger.record_transfer(
            client_id="t",
            venue="binance",
            asset="USDT",
            amount=Decimal(1),
            from_wallet="spot",
            to_wallet="spot",
            now_ms=T0,
        )
    n = await ledger.record_balance_snapshot(
        venue="binance", wallet="futures", ts_ms=T0, balances={"USDT": AssetBalance(Decimal(1), Decimal(0), Decimal(1))}
    )
    assert n == 1 and (await ledger.latest_balances())[0].wallet is Wallet.FUTURES


async def test_funding_batch_follows_the_single_row_rules(ledger: Ledger):
    pair = await ledger.upsert_pair(venue="binance", symbol="BTC/USDT", now_ms=T0)

    def rec(hours: int, amount: str, source: FundingSource = FundingSource.INCOME) -> FundingRecord:
        return FundingRecord(
            "binance",
            "main",
            "BTC/USDT:USDT",
            T0 + hours * HOUR_MS,
            Decimal(amount),
            source,
            T0 + hours * HOUR_MS,
            pair_id=pair.id,
        )

    assert (
        await ledger.record_funding_payment(
            **{k: getattr(rec(8, "5", FundingSource.COMPUTED), k) for k in FundingRecord.__slots__}
        )
        is True
    )
    # 0h and 16h are new; 8h replaces the computed estimate; 0h repeated in the batch changes nothing.
    changed = await ledger.record_funding_payments([rec(0, "1.5"), rec(8, "2.25"), rec(16, "3"), rec(0, "9")])
    assert changed == 3
    rows = {r.funding_time_ms - T0: (r.amount, r.source) for r in await ledger.list_funding_payments()}
    assert rows == {
        0: (Decimal("1.5"), FundingSource.INCOME),
        8 * HOUR_MS: (Decimal("2.25"), FundingSource.INCOME),
        16 * HOUR_MS: (Decimal("3"), FundingSource.INCOME),
    }
    got = await ledger.get_pair(pair.id)
    assert got is not None and got.funding_earned == Decimal("6.75")
    assert await ledger.record_funding_payments([rec(16, "3"), rec(0, "1.5")]) == 0
    assert await ledger.record_funding_payments([]) == 0


async def test_balance_snapshot_batch_skips_rows_already_stored(ledger: Ledger):
    one = {"USDT": AssetBalance(Decimal("1"), Decimal("0"), Decimal("1"))}
    two = {
        "USDT": AssetBalance(Decimal("2"), Decimal("0"), Decimal("2")),
        "BTC": AssetBalance(Decimal("0.1"), Decimal("0"), Decimal("0.1")),
    }
    assert await ledger.record_balance_snapshot(venue="binance", wallet=Wallet.SPOT, ts_ms=T0, balances=one) == 1
    n = await ledger.record_balance_snapshots(
        [
            ("binance", Wallet.SPOT, T0, one),
            ("binance", Wallet.SPOT, T0 + 1, two),
            ("binance", Wallet.FUTURES, T0, one),
            ("binance", Wallet.SPOT, T0 + 1, two),
        ]
    )
    assert n == 3
    latest = await ledger.latest_balances("binance")
    assert {(b.wallet, b.asset, b.total) for b in latest} == {
        (Wallet.SPOT, "USDT", Decimal("2")),
        (Wallet.SPOT, "BTC", Decimal("0.1")),
        (Wallet.FUTURES, "USDT", Decimal("1")),
    }


async def test_event_batch_appends_in_order(ledger: Ledger):
    first = await ledger.add_event(EventKind.INFO, "before", ts_ms=T0)
    await ledger.add_events([EventRecord(EventKind.INFO, f"e{k}", T0 + k, details={"k": Decimal(k)}) for k in range(3)])
    got = await ledger.events(after_id=first)
    assert [e.message for e in got] == ["e0", "e1", "e2"]
    assert got[2].details == {"k": "2"}


@pytest.mark.slow
def test_a_fresh_process_can_start_with_a_write_that_returns_a_row(sqlite_url: str) -> None:
    """Rows become model objects without an ORM query (through the models' constructors): that must work
    in a new process whose first ledger call is ``create_intent`` (nothing else has touched the ORM yet)."""
    import subprocess
    import sys

    script = (
        "import asyncio\n"
        "from bot.ledger.models import IntentKind\n"
        "from bot.ledger.repository import Ledger\n"
        "async def main():\n"
        f"    led = await Ledger.open({sqlite_url!r})\n"
        "    intent = await led.create_intent(IntentKind.ORDER, 'fb-1-1-s', now_ms=1)\n"
        "    print(intent.kind, intent.status)\n"
        "    await led.close()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["order", "pending"]
