"""Parity: a backtest ledger is the ledger the daemon's Engine writes against the emulator on the same data.

Side A is the backtest (``run_backtest``: the daemon's ``Engine`` over ``SimVenue``/``SimExchange``, driven
by ``bot.backtest.core.EngineLoop``, into a SQLite ledger). Side B is the daemon's ``Engine`` from
``assemble_engine`` over ``CcxtVenue`` (real ccxt 4.5.90 over TLS loopback) against the in-process
emulator, on a ``ManualClock`` driven at the instants the backtest runs its jobs: start and the opening
snapshot a millisecond before the window, then per hour ``tick()``, funding sync, scan, collateral check,
and the balance snapshot on the backtest's cadence (and at the last hour). Both sides get the same
settings (``backtest_settings``: strategy, execution, treasury, fees, leverage), the same replayed
history window, start instant and capital, and instant sleeps. Only test-harness settings differ: the
emulator's request-weight limits are raised (the test replays hours per wall second) and its background
stepper is idle (every step is an explicit tick).

Compared: every table of both ledgers, row for row, every column, except the row ids (autoincrement
keys, and the ``request_id`` of an event that names no request) and what names the venue itself
(``sim`` against ccxt's ``binance``, the account ``sim`` against ``emulator``). Decimals are compared as
numbers, also inside messages (ccxt parses the venue's JSON, the simulator hands Decimals over:
``0.12713000`` is ``0.12713``).
The one row only a backtest writes is its ``backtest finished`` event.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.backtest.core import HISTORY_LEAD_MS, backtest_settings
from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestOptions, BacktestParams, build_strategy
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.domain import DAY_MS, HOUR_MS
from bot.emulator.server import run_emulator
from bot.engine.daemon import assemble_engine
from bot.ledger.models import Base
from bot.ledger.reads import BACKTEST_FINISHED
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.history import bundled_data_dir
from bot.sim.source import HistoryReplay
from bot.venues.ccxt_factory import build_client
from bot.venues.ccxt_venue import CcxtVenue

pytestmark = pytest.mark.slow  # every test here is over ~2 s

START_MS = 1_753_056_000_000  # 2025-07-21 00:00 UTC: BTC and ETH funding near 11% APR, the carry enters at once
END_MS = START_MS + 3 * DAY_MS
CAPITAL = Decimal(100_000)
UNLIMITED_WEIGHT = {"rate_limits": {"per_minute": {"api": 10**9, "sapi": 10**9, "fapi": 10**9}}}
# every hour run, like the engine (the shortcuts leave out quiet scans' holds, skips and rates)
PARAMS = BacktestParams(options=BacktestOptions(skip_idle_hours=False, fast_forward=False, snapshot_every_hours=6))
IDS = ("id",)  # autoincrement keys: the same rows may be numbered in another order
NAMES = {"venue": {"sim": "<venue>", "binance": "<venue>"}, "account": {"sim": "<account>", "emulator": "<account>"}}
NUMBER = re.compile(r"-?\d+\.\d+")
# The venue numbers its orders and trades as they reach it: two legs sent together may arrive in either
# order (the in-memory ledger and the SQLAlchemy one yield at different points), so those ids are the venue's
# business; our own client ids still tie every order, fill and event together.
VENUE_IDS = ("venue_order_id", "venue_trade_id", "trade_id")


def _spec(ids: list[str], out: Path) -> BacktestSpec:
    return BacktestSpec(bundled_data_dir(), ids, START_MS, END_MS, CAPITAL, "carry", PARAMS, out_dir=out)


def _number(m: re.Match[str]) -> str:
    return f"{Decimal(m.group(0)).normalize():f}"


def _value(column: str, v: Any) -> Any:
    """One cell, with only the venue's own name, its order and trade numbers and the numbers' spelling
    taken out."""
    if column in VENUE_IDS and v is not None:
        return "<venue id>"
    if isinstance(v, Decimal):
        return v.normalize()
    if isinstance(v, str):
        if v in NAMES.get(column, {}):
            return NAMES[column][v]
        try:
            return Decimal(v).normalize()
        except InvalidOperation:
            text = NUMBER.sub(_number, v)  # a Decimal in a message: 0.12713000 is 0.12713
            for name in ("sim", "binance"):
                for said in ("engine started on {}:", "account costs read from {} "):
                    text = text.replace(said.format(name), said.format("<venue>"))
            return text
    if isinstance(v, dict):
        return {k: _value(k, x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return [_value(column, x) for x in v]
    return v


async def _tables(url: str) -> dict[str, list[tuple]]:
    """Every table's rows, ids out, sorted (the same rows in any insertion order)."""
    ledger = await Ledger.open(url, migrate=False)
    out: dict[str, list[tuple]] = {}
    try:
        async with ledger.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                cols = [c for c in table.columns if c.name not in IDS]
                rows = (await conn.execute(select(*cols))).all()
                out[table.name] = sorted(
                    (tuple((c.name, repr(_value(c.name, v))) for c, v in zip(cols, row, strict=True)) for row in rows),
                )
    finally:
        await ledger.close()
    return out


async def _instant(_seconds: float) -> None:
    """As in the backtest: nothing waits on simulated time inside a job."""


def _sim_config() -> SimConfig:
    o = PARAMS.options
    return SimConfig(
        spot_maker_fee=o.spot_fee_rate,
        spot_taker_fee=o.spot_fee_rate,
        perp_maker_fee=o.perp_maker_fee_rate,
        perp_taker_fee=o.perp_taker_fee_rate,
    )


async def _emulator_side(db: Path, ids: list[str]) -> str:
    """The engine against the emulator at each backtest instant; returns its ledger's URL."""
    ds = load_dataset(bundled_data_dir(), ids, START_MS, END_MS)
    spec = _spec(ids, db.parent)
    clock = ManualClock(START_MS - 1)
    replay = HistoryReplay(bundled_data_dir(), ids, START_MS - HISTORY_LEAD_MS, END_MS)  # the backtest's window
    sim = SimExchange(replay, clock, _sim_config(), symbols=ids, balances={"USDT": CAPITAL})
    url = f"sqlite+aiosqlite:///{db.as_posix()}"
    ledger = await Ledger.open(url, migrate=True)
    every_ms = PARAMS.options.snapshot_every_hours * HOUR_MS
    try:
        async with run_emulator(
            symbols=ids, clock=clock, sim=sim, tick_ms=24 * HOUR_MS, scenario=UNLIMITED_WEIGHT
        ) as handle:
            venue = CcxtVenue(
                build_client(handle.connection, pro=True, tls=True, rateLimit=1), account="emulator", time_resync_s=0
            )
            try:
                strategy = build_strategy("carry", PARAMS.strategy)
                settings = backtest_settings(spec, ds)
                engine = assemble_engine(settings, venue, ledger, clock.now_ms, strategy=strategy, sleep=_instant)
                await engine.start()
                await engine.snapshot_balances()  # the opening balances
                last: int | None = None
                hours = list(range(START_MS, END_MS, HOUR_MS))
                for t in hours:
                    clock.set(t)
                    await handle.tick()
                    await engine.sync_funding()
                    await engine.scan()
                    await engine.check_collateral()
                    if last is None or t - last >= every_ms:
                        await engine.snapshot_balances()
                        last = t
                if last != hours[-1]:
                    await engine.snapshot_balances()
            finally:
                await venue.close()
    finally:
        await ledger.close()
    return url


def _diff(a: list[tuple], b: list[tuple]) -> list[str]:
    only_a = [r for r in a if r not in b]
    only_b = [r for r in b if r not in a]
    return [f"  backtest only: {dict(r)}" for r in only_a[:5]] + [f"  engine only:   {dict(r)}" for r in only_b[:5]]


@pytest.mark.parametrize("ids", [["BTCUSDT"], ["BTCUSDT", "ETHUSDT"]], ids=["one-symbol", "two-symbols"])
async def test_backtest_ledger_is_the_daemon_ledger(tmp_path: Path, ids: list[str]) -> None:
    ds = load_dataset(bundled_data_dir(), ids, START_MS, END_MS)
    result = await run_backtest(_spec(ids, tmp_path / "backtest"), ds, out_dir=tmp_path / "backtest")
    bt = await _tables(result.ledger_url)
    (tmp_path / "engine").mkdir()
    em = await _tables(await _emulator_side(tmp_path / "engine" / "engine.db", ids))

    finished = [r for r in bt["events"] if any(k == "message" and BACKTEST_FINISHED in v for k, v in r)]
    assert len(finished) == 1, "a backtest ledger ends with its marker"
    bt["events"].remove(finished[0])
    # the rate each scan predicted, one row per settlement (its natural key): 3 a day
    assert len(bt["funding_rates"]) == 3 * 3 * len(ids), "the scans' predicted rates, as the daemon records them"
    assert bt["fills"] and bt["funding_payments"] and bt["transfers"], "the window must trade, or parity proves nothing"
    assert any("'decision'" in dict(r)["kind"] for r in bt["events"])
    assert bt.keys() == em.keys()
    problems = [
        f"{name}: {len(bt[name])} rows against {len(em[name])}\n" + "\n".join(_diff(bt[name], em[name]))
        for name in bt
        if bt[name] != em[name]
    ]
    assert not problems, "\n".join(problems)
