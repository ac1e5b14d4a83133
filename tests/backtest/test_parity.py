"""Parity: the same strategy makes the same decisions in a backtest and against the emulator on the same data.

Side A is the backtest (``run_backtest``: ``SimVenue`` over ``SimExchange``, ``TickJobs``, SQLite ledger).
Side B is the daemon's ``Engine`` from ``assemble_engine`` over ``CcxtVenue`` (real ccxt 4.5.90 over TLS
loopback) against the in-process emulator, on a ``ManualClock`` driven at the instants the backtest
evaluates: set the clock, ``tick()``, then funding sync, scan, collateral check (the backtest's hourly job
sequence). Both sides get the same replayed history window, start instant, capital, fees, leverage (the
sim's default 20x, which the engine sets at start), strategy, execution and treasury parameters, and
instant sleeps. Only test-harness settings differ: the emulator's request-weight limits are raised (the
test replays hours per wall second) and its background stepper is idle (every step is an explicit tick).

Compared, per evaluation instant and symbol: the strategy's (action, rule, target_qty), captured by a
recording wrapper around the same ``FundingCarry``; and per trading instant, symbol and leg: the filled
quantity and prices, read from each side's ledger.

Both cases are identical: actions, rules, target quantities, fill quantities and prices. Two things had to
agree for that: the execution order of one evaluation's targets (``bot.execution.ordering``: exits and
reductions first, then increases by descending score; used by the backtest, and by the engine's order
for entries) and the treasury's pre-funding, which rounds the transfer up to its 8 decimals so a second
entry is not floored one step short.

One input differs without changing these decisions: ``Snapshot.capital``. The backtest values spot coins
at the current replayed spot price; the engine values them at the perp mid of its previous scan, so its
capital moves by a few hundred USDT per hour; later holds stay inside the resize tolerance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

import bot.backtest.core as backtest_core
from bot.backtest.core import HISTORY_LEAD_MS
from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestOptions, BacktestParams
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.config import EngineConfig, Settings
from bot.domain import DAY_MS, HOUR_MS, common_step
from bot.emulator.server import run_emulator
from bot.engine.daemon import assemble_engine
from bot.ledger.repository import Ledger
from bot.sim.clock import ManualClock
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.history import bundled_data_dir
from bot.sim.source import HistoryReplay
from bot.venues.ccxt_factory import build_client
from bot.venues.ccxt_venue import CcxtVenue
from strategies.base import Snapshot, Strategy, Target
from strategies.funding_carry import FundingCarry

START_MS = 1_753_056_000_000  # 2025-07-21 00:00 UTC: BTC and ETH funding near 11% APR, the carry enters at once
END_MS = START_MS + 3 * DAY_MS
CAPITAL = Decimal(100_000)
SIM_LEVERAGE = SimConfig().default_leverage  # the backtest never sets leverage; the engine sets this at start
UNLIMITED_WEIGHT = {"rate_limits": {"per_minute": {"api": 10**9, "sapi": 10**9, "fapi": 10**9}}}
# every hour evaluated, like the engine
PARAMS = BacktestParams(options=BacktestOptions(skip_idle_hours=False, fast_forward=False))


@dataclass(frozen=True)
class Decision:
    at_ms: int
    symbol: str
    action: str
    rule: str
    target_qty: Decimal


class RecordingStrategy:
    """The same strategy, unchanged; each evaluation's targets are kept for the comparison."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.name = inner.name
        self.decisions: list[Decision] = []

    def evaluate(self, snapshot: Snapshot) -> list[Target]:
        targets = self.inner.evaluate(snapshot)
        self.decisions += [
            Decision(snapshot.now_ms, t.symbol, t.action.value, t.reason.rule, t.target_qty) for t in targets
        ]
        return targets


@dataclass
class Side:
    decisions: list[Decision]
    fills: dict[tuple[int, str, str, str], Decimal]  # (ts, symbol, leg, side) -> quantity
    prices: dict[tuple[int, str, str, str], set[Decimal]]


async def _ledger_fills(url: str) -> tuple[dict, dict]:
    ledger = await Ledger.open(url, migrate=False)
    try:
        rows = await ledger.list_fills()
    finally:
        await ledger.close()
    qty: dict[tuple[int, str, str, str], Decimal] = defaultdict(Decimal)
    prices: dict[tuple[int, str, str, str], set[Decimal]] = defaultdict(set)
    for f in rows:
        key = (f.ts_ms, f.symbol, f.market.value, f.side.value)
        qty[key] += f.quantity
        prices[key].add(f.price)
    return dict(qty), dict(prices)


def _sim_config() -> SimConfig:
    o = PARAMS.options
    return SimConfig(
        spot_maker_fee=o.spot_fee_rate,
        spot_taker_fee=o.spot_fee_rate,
        perp_maker_fee=o.perp_maker_fee_rate,
        perp_taker_fee=o.perp_taker_fee_rate,
    )


async def _backtest_side(out: Path, ids: list[str], monkeypatch: pytest.MonkeyPatch) -> Side:
    recorders: list[RecordingStrategy] = []
    build = backtest_core.build_strategy

    def recording(name: str, params: object) -> RecordingStrategy:
        recorders.append(RecordingStrategy(build(name, params)))  # type: ignore[arg-type]
        return recorders[-1]

    monkeypatch.setattr(backtest_core, "build_strategy", recording)
    ds = load_dataset(bundled_data_dir(), ids, START_MS, END_MS)
    spec = BacktestSpec(bundled_data_dir(), ids, START_MS, END_MS, CAPITAL, "carry", PARAMS, out_dir=out)
    result = await run_backtest(spec, ds, out_dir=out)
    fills, prices = await _ledger_fills(result.ledger_url)
    assert len(recorders) == 1
    return Side(recorders[0].decisions, fills, prices)


async def _instant(_seconds: float) -> None:
    """As in the backtest: nothing waits on simulated time inside a job."""


async def _emulator_side(db: Path, ids: list[str]) -> tuple[Side, dict[str, Decimal]]:
    """The engine against the emulator at each backtest instant; also returns each symbol's common step."""
    o = PARAMS.options
    clock = ManualClock(START_MS)
    replay = HistoryReplay(bundled_data_dir(), ids, START_MS - HISTORY_LEAD_MS, END_MS)  # the backtest's window
    sim = SimExchange(replay, clock, _sim_config(), symbols=ids, balances={"USDT": CAPITAL})
    symbols = [f"{i[:-4]}/USDT" for i in ids]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        symbols=symbols,
        strategy=PARAMS.strategy,
        execution=PARAMS.execution,
        treasury=PARAMS.treasury,
        engine=EngineConfig(
            leverage=SIM_LEVERAGE,
            spot_maker_fee=o.spot_fee_rate,
            spot_taker_fee=o.spot_fee_rate,
            perp_maker_fee=o.perp_maker_fee_rate,
            perp_taker_fee=o.perp_taker_fee_rate,
        ),
    )
    url = f"sqlite+aiosqlite:///{db.as_posix()}"
    ledger = await Ledger.open(url, migrate=True)
    recorder = RecordingStrategy(FundingCarry(PARAMS.strategy))
    try:
        async with run_emulator(
            symbols=ids, clock=clock, sim=sim, tick_ms=24 * HOUR_MS, scenario=UNLIMITED_WEIGHT
        ) as handle:
            venue = CcxtVenue(
                build_client(handle.connection, pro=True, tls=True, rateLimit=1), account="emulator", time_resync_s=0
            )
            try:
                engine = assemble_engine(settings, venue, ledger, clock.now_ms, strategy=recorder, sleep=_instant)
                await engine.start()
                for t in range(START_MS, END_MS, HOUR_MS):
                    clock.set(t)
                    await handle.tick()
                    await engine.sync_funding()
                    await engine.scan()
                    await engine.check_collateral()
                steps = {s: common_step(m.spot.step_size, m.perp.step_size) for s, m in engine.builder.markets.items()}
            finally:
                await venue.close()
    finally:
        await ledger.close()
    fills, prices = await _ledger_fills(url)
    return Side(recorder.decisions, fills, prices), steps


def _by_key(decisions: list[Decision]) -> dict[tuple[int, str], Decision]:
    out = {(d.at_ms, d.symbol): d for d in decisions}
    assert len(out) == len(decisions), "one decision per instant and symbol"
    return out


def _within(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    return abs(a - b) <= tolerance


def _mismatches(bt: Side, em: Side, steps: dict[str, Decimal], exact: bool) -> Iterator[str]:
    a, b = _by_key(bt.decisions), _by_key(em.decisions)
    assert a.keys() == b.keys(), "both sides evaluate the same instants and symbols"
    entries = {k for k, d in a.items() if d.action == "enter"}
    for key in sorted(a):
        x, y = a[key], b[key]
        step = Decimal(0) if exact or key in entries else steps[key[1]]
        if (x.action, x.rule) != (y.action, y.rule) or not _within(x.target_qty, y.target_qty, step):
            yield f"decision {key}: backtest {x} != engine {y}"
    assert bt.fills.keys() == em.fills.keys(), "trades happen at the same instants, symbols, legs and sides"
    for key in sorted(bt.fills):
        tolerance = Decimal(0) if exact else 2 * steps[key[1]]  # one common step, grossed up for spot fees
        if not _within(bt.fills[key], em.fills[key], tolerance):
            yield f"fill quantity {key}: backtest {bt.fills[key]} != engine {em.fills[key]}"
        if bt.prices[key] != em.prices[key]:
            yield f"fill prices {key}: backtest {bt.prices[key]} != engine {em.prices[key]}"


@pytest.mark.parametrize(
    ("ids", "exact"),
    [(["BTCUSDT"], True), (["BTCUSDT", "ETHUSDT"], True)],
    ids=["one-symbol", "two-symbols"],
)
async def test_backtest_and_emulator_engine_decide_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: list[str], exact: bool
) -> None:
    bt = await _backtest_side(tmp_path / "backtest", ids, monkeypatch)
    em, steps = await _emulator_side(tmp_path / "engine.db", ids)
    hours = (END_MS - START_MS) // HOUR_MS
    assert len(bt.decisions) == hours * len(ids)
    assert [d for d in bt.decisions if d.action == "enter"], "the window must trade, or parity proves nothing"
    assert bt.fills, "entries filled"
    problems = list(_mismatches(bt, em, steps, exact))
    assert not problems, "\n".join(problems[:20])
