"""MemoryLedger (bot/ledger/memory.py), the backtest's recorder: one backtest recorded through it and
through the SQLAlchemy ``Ledger`` leaves the same tables; facts stay idempotent on their natural keys
across flushes; periodic flushes keep the append-only facts out of memory. (Every ``Ledger`` rule is
also run on it by tests/ledger/test_repository.py, which is marked ``memory_ledger``.)"""

from __future__ import annotations

import inspect
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bot.ledger.memory as memory
from bot.backtest.params import BacktestParams
from bot.config import TreasuryConfig
from bot.domain import Leg, PairState, Side
from bot.ledger.db import LedgerDatabaseError
from bot.ledger.memory import MemoryLedger
from bot.ledger.models import Base, ControlKind, EventKind, FundingSource, RateKind, Wallet
from bot.ledger.recorder import Recorder
from bot.ledger.repository import AssetBalance, FundingRecord, Ledger
from tests.backtest.equivalence import run_window, with_options

T0 = 1_700_000_000_000
# Two legs of one action are sent concurrently; which reaches the simulated venue first depends on when
# each leg's ledger call returns (aiosqlite answers from its thread), so the venue may number the two
# orders and trades the other way round, and those three tables list the legs' rows in another order.
REORDERED = {"orders", "fills", "events"}


def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    conn = sqlite3.connect(url.split(":///", 1)[1])
    conn.row_factory = sqlite3.Row
    try:
        out = {
            t.name: [dict(r) for r in conn.execute(f"SELECT * FROM {t.name} ORDER BY id")]
            for t in Base.metadata.sorted_tables
        }
        out["alembic_version"] = [dict(r) for r in conn.execute("SELECT * FROM alembic_version")]
        return out
    finally:
        conn.close()


def _canonical(tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The tables with the venue's numbers of orders and trades named by our client order id (and, in
    the tables whose rows concurrent legs reorder, without the row id): everything else exactly."""
    names: dict[str, str] = {}
    for o in tables["orders"]:
        if o["venue_order_id"] is not None:
            names[o["venue_order_id"]] = f"order {o['client_order_id']}"
    per_order: dict[str | None, list[str]] = {}
    for f in tables["fills"]:
        per_order.setdefault(f["client_order_id"], []).append(f["venue_trade_id"])
    for cid, trades in per_order.items():
        for rank, trade in enumerate(sorted(trades, key=int)):
            names[trade] = f"trade {rank} of {cid}"

    def name(v: Any) -> Any:
        return names.get(v, v) if isinstance(v, str) else v

    out: dict[str, Any] = {}
    for table, rows in tables.items():
        fixed = []
        for r in rows:
            r = dict(r)
            for col in ("venue_order_id", "venue_trade_id"):
                if col in r:
                    r[col] = name(r[col])
            if table == "events" and r["details"] is not None:
                details = json.loads(r["details"])
                for k in ("venue_order_id", "trade_id"):
                    if k in details:
                        details[k] = name(details[k])
                r["details"] = json.dumps(details, sort_keys=True)
            if table in REORDERED:
                del r["id"]
            fixed.append(r)
        out[table] = sorted(fixed, key=repr) if table in REORDERED else fixed
    return out


@pytest.mark.slow  # two backtests each: over a second even at their smallest windows
@pytest.mark.parametrize(
    ("strategy", "days", "treasury"),
    [
        ("carry", 8, TreasuryConfig(target_ratio="0.5", low_ratio="0.46", high_ratio="0.54", min_transfer="1")),
        ("top-n", 4, None),
    ],
)
def test_a_backtest_leaves_the_same_tables_through_either_recorder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str, days: int, treasury: TreasuryConfig | None
) -> None:
    flushes = []
    real_flush = MemoryLedger.flush

    def counted(self: MemoryLedger) -> int:
        n = real_flush(self)
        flushes.append(n)
        return n

    monkeypatch.setattr(memory, "DEFAULT_FLUSH_ROWS", 10)  # many flushes: reads and keys found in the file
    monkeypatch.setattr(MemoryLedger, "flush", counted)
    base = with_options(BacktestParams() if treasury is None else BacktestParams(treasury=treasury), memory_ledger=True)
    mem = run_window(tmp_path / "memory", base, days=days, strategy=strategy)
    sql = run_window(tmp_path / "sql", with_options(base, memory_ledger=False), days=days, strategy=strategy)

    a, b = _rows(mem.ledger_url), _rows(sql.ledger_url)
    for table in ("pairs", "intents", "orders", "fills", "funding_payments", "balance_snapshots", "events"):
        assert a[table], f"the run must write {table}"
    if treasury is not None:
        assert a["transfers"], "the tight band must make the treasury move collateral"
    assert sum(1 for n in flushes if n) > 5, "the run must cross periodic flushes"
    ca, cb = _canonical(a), _canonical(b)
    for table in ca:
        assert ca[table] == cb[table], table
    assert mem.summary.net_pnl == sql.summary.net_pnl and mem.summary.trades == sql.summary.trades


def fill(trade_id: str, **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        venue="sim",
        market=Leg.SPOT,
        symbol="BTC/USDT",
        venue_trade_id=trade_id,
        side=Side.BUY,
        quantity=Decimal("0.001"),
        price=Decimal("43000.12"),
        fee=Decimal("0.000001"),
        ts_ms=T0,
    )
    return args | over


def _count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def test_facts_recorded_twice_are_one_row_before_and_after_a_flush(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    led = await MemoryLedger.open(f"sqlite+aiosqlite:///{path}", flush_rows=10_000)
    one = {"USDT": AssetBalance(Decimal(1), Decimal(0), Decimal(1))}
    payment = FundingRecord("sim", "main", "BTC/USDT", T0, Decimal("1.5"), FundingSource.SIM, T0)
    rate = dict(venue="sim", symbol="BTC/USDT", funding_time_ms=T0, rate=Decimal("0.0001"), kind=RateKind.SETTLED)
    assert await led.record_fill(**fill("1")) is True
    assert await led.record_fill(**fill("1", price=Decimal(1))) is False  # still in memory
    assert await led.record_funding_payments([payment]) == 1
    assert await led.record_balance_snapshot(venue="sim", wallet=Wallet.SPOT, ts_ms=T0, balances=one) == 1
    assert await led.record_funding_rate(**rate, observed_ms=T0) is True
    assert led.flush() == 4
    assert led.resident_rows()["fills"] == 0  # flushed facts left memory: the keys are found in the file
    assert await led.record_fill(**fill("1")) is False
    assert await led.record_fill(**fill("1", market=Leg.PERP)) is True  # another market: another trade
    assert await led.record_funding_payments([payment, payment]) == 0
    assert await led.record_balance_snapshot(venue="sim", wallet=Wallet.SPOT, ts_ms=T0, balances=one) == 0
    assert await led.record_funding_rate(**rate, observed_ms=T0 + 1) is False
    await led.close()
    assert [_count(path, t) for t in ("fills", "funding_payments", "balance_snapshots", "funding_rates")] == [
        2,
        1,
        1,
        1,
    ]


async def test_periodic_flushes_keep_memory_bounded_and_every_row_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    led = await MemoryLedger.open(f"sqlite+aiosqlite:///{path}", flush_rows=50)
    pair = await led.upsert_pair(venue="sim", symbol="BTC/USDT", now_ms=T0)
    peak = 0
    for k in range(600):
        await led.add_event(EventKind.INFO, f"e{k}", ts_ms=T0 + k, pair_id=pair.id)
        await led.record_fill(**fill(str(k), ts_ms=T0 + k, pair_id=pair.id))
        await led.record_balance_snapshot(
            venue="sim",
            wallet=Wallet.FUTURES,
            ts_ms=T0 + k,
            balances={"USDT": AssetBalance(Decimal(k), Decimal(0), Decimal(k))},
        )
        resident = led.resident_rows()
        peak = max(peak, resident["events"] + resident["fills"] + resident["balance_snapshots"])
        assert led.pending_rows() < 50
    assert peak < 50 and led.flushes >= 30
    # reads of flushed facts come from the file, whole and in order
    fills = await led.list_fills(pair_id=pair.id)
    assert [f.venue_trade_id for f in fills] == [str(k) for k in range(600)]
    events = await led.events(kinds=[EventKind.INFO], newest_first=True, limit=2)
    assert [e.message for e in events] == ["e599", "e598"]
    assert [b.total for b in await led.latest_balances("sim")] == [Decimal(599)]
    await led.close()
    assert [_count(path, t) for t in ("events", "fills", "balance_snapshots", "pairs")] == [600, 600, 600, 1]


async def test_a_row_changed_after_its_flush_is_updated_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    led = await MemoryLedger.open(f"sqlite+aiosqlite:///{path}", flush_rows=10_000)
    pair = await led.upsert_pair(venue="sim", symbol="BTC/USDT", now_ms=T0)
    led.flush()
    await led.upsert_pair(venue="sim", symbol="BTC/USDT", now_ms=T0 + 1, spot_qty=Decimal("0.5"))
    assert pair.spot_qty == 0  # what was handed out stays a snapshot
    await led.close()
    async with await Ledger.open(f"sqlite+aiosqlite:///{path}", migrate=False) as sql:
        got = await sql.get_pair(pair.id)
    assert got is not None and (got.spot_qty, got.updated_ms) == (Decimal("0.5"), T0 + 1)


async def test_a_symbol_reopened_after_its_pair_was_flushed_flushes_the_close_first(tmp_path: Path) -> None:
    """The file's partial unique indexes allow one active pair per symbol and one active control per kind
    and symbol: the closed (or replaced) row's UPDATE goes in before the new row's INSERT."""
    path = tmp_path / "ledger.db"
    led = await MemoryLedger.open(f"sqlite+aiosqlite:///{path}", flush_rows=10_000)
    first = await led.upsert_pair(venue="sim", symbol="BTC/USDT", now_ms=T0, state=PairState.OPEN)
    await led.set_control(ControlKind.CAPITAL_LIMIT, now_ms=T0, source="cli", value=Decimal(1000))
    led.flush()
    await led.set_pair_state(first.id, PairState.CLOSED, now_ms=T0 + 1)
    second = await led.upsert_pair(venue="sim", symbol="BTC/USDT", now_ms=T0 + 2)
    await led.set_control(ControlKind.CAPITAL_LIMIT, now_ms=T0 + 2, source="cli", value=Decimal(2000))
    await led.close()
    async with await Ledger.open(f"sqlite+aiosqlite:///{path}", migrate=False) as sql:
        assert [(p.id, p.state) for p in await sql.list_pairs()] == [
            (first.id, PairState.CLOSED),
            (second.id, PairState.OPENING),
        ]
        assert [c.value for c in await sql.controls()] == [Decimal(2000)]


async def test_it_records_only_into_an_empty_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(LedgerDatabaseError, match="SQLite file"):
        await MemoryLedger.open("sqlite+aiosqlite://")
    url = f"sqlite+aiosqlite:///{tmp_path / 'used.db'}"
    async with await Ledger.open(url) as sql:
        await sql.add_event(EventKind.INFO, "earlier run", ts_ms=T0)
    with pytest.raises(LedgerDatabaseError, match=r"empty ledger file.*events"):
        await MemoryLedger.open(url)


def test_both_ledgers_offer_the_recorder_interface_with_the_same_signatures() -> None:
    methods = [m for m, v in vars(Recorder).items() if inspect.iscoroutinefunction(v)]
    assert len(methods) > 30
    for m in methods:
        want = inspect.signature(getattr(Recorder, m))
        assert inspect.signature(getattr(Ledger, m)) == want, m
        assert inspect.signature(getattr(MemoryLedger, m)) == want, m
