"""The backtest loop: the daemon's jobs at simulated times, on the simulator, into a SQLite ledger.

Per grid hour ``t`` (a ``ManualClock`` set to ``t``; nothing reads the wall clock):

1. the simulator steps to ``t`` (prices, resting orders, funding settlements, liquidations);
2. funding-ledger sync: payments the venue credited since the last sync go to the ledger;
3. on the scan cadence (every ``eval_every_hours`` from the first grid hour, as a daemon whose
   ``scan_interval_s`` is that many hours; 1 = every hour): funding scan + strategy evaluation + execution
   (the snapshot hides symbols without data, and symbols with a gap within ``gap_lookahead_hours`` when no
   pair is held, so no pair is opened into a gap);
4. collateral and hedge check (treasury; with ``collateral_gate`` only when the band is left, see
   ``EngineLoop.check_collateral``: inside it the treasury would only read);
5. inside 1-minute windows: steps and collateral checks every minute;
6. timeline row (equity, collateral ratio) and, on the cadence, a balance snapshot in the ledger (and
   one at the last hour, so the ledger's closing equity is the summary's).

A held pair whose data has a hole within ``gap_lookahead_hours`` is closed (``exit_data_gap``) at the
first hour that sees the hole while both legs still have prices: across missing data it could only be
valued at stale prices and margined blind.

Every job is the daemon's own (``bot.engine.core.Engine`` over the simulator, called by
``bot.backtest.core.EngineLoop``), so the ledger is a daemon ledger: the same event kinds, a decision
at each rule change, a funding rate per scan, the operator's controls honoured.

Hours where nothing can change (flat book and no possible entry, as the strategy's own quiet-hours bound
says: ``QuietBound.entry_possible``, strategies/quiet.py) are skipped: their timeline rows repeat the last
state, which is exactly what running them would produce. With ``fast_forward`` (default), stretches where
the strategy (its bound's ``quiet``), the treasury and the margin provably do nothing run as simulator
jumps, the engine's jobs running only at the hours where they write (funding sync, snapshots;
``bot.backtest.fastforward``). Both shortcuts leave out the skipped scans' holds and skips and
their predicted funding rates; tests/backtest/test_fastforward.py shows every other row identical to the
hourly run's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from bot.backtest.analytics import monthly_returns
from bot.backtest.book import SpotHoldings
from bot.backtest.core import Core, EngineLoop, build_core
from bot.backtest.data import DataError, Dataset, load_dataset
from bot.backtest.fastforward import FastForward, book_shapes
from bot.backtest.metrics import fill_timeline, read_facts, summarise
from bot.backtest.params import BacktestParams
from bot.backtest.paths import SymbolPaths, build_paths, quiet_view
from bot.backtest.predictor import predictor_tracking
from bot.backtest.progress import Progress, ProgressKind, progress_reporter
from bot.backtest.result import BacktestResult, RunStats, Summary, Timeline
from bot.domain import HOUR_MS, MINUTE_MS, Leg
from bot.format import iso_utc
from bot.ledger.round_trips import round_trips
from strategies.base import QuietBound, Strategy, quiet_bound
from strategies.quiet import QuietView

BASELINES = ("always-on", "top-n")  # the fair comparison (the same symbols, always held) and the strawman
BNB_SYMBOL = "BNBUSDT"  # where [treasury] bnb_fees buys the BNB that pays the spot fees
ALWAYS_ON_SYMBOL = "BTCUSDT"  # what the always-on-btc strategy holds (strategies.baselines.AlwaysOnBTC)
PARALLEL_MIN_SYMBOL_HOURS = 20_000  # below this a worker's start-up (about 2 s of imports) outweighs the run


@dataclass
class BacktestSpec:
    data_dir: Path
    symbols: list[str] | None
    start_ms: int | None
    end_ms: int | None
    capital: Decimal
    strategy: str
    params: BacktestParams = field(default_factory=BacktestParams)
    out_dir: Path = Path("var/backtest")
    progress: ProgressKind = False  # True: a bar on a terminal, a line on stderr elsewhere


def _blocked_for_entry(ds: Dataset, lookahead: int) -> dict[str, np.ndarray]:
    """Per symbol, bool per hour: no data now, or a hole within the next ``lookahead`` hours."""
    out = {}
    for s in ds.series.values():
        missing = ~s.has_data
        blocked = missing.copy()
        for k in range(1, lookahead + 1):
            blocked[:-k] |= missing[k:]
        out[s.unified] = blocked
    return out


def market_view(
    spec: BacktestSpec, ds: Dataset, core: Core, blocked: dict[str, np.ndarray]
) -> tuple[dict[str, SymbolPaths], QuietView]:
    """The replayed market as float arrays, and the part of it a strategy's quiet-hours bound reads (the
    fees it charges for ``fee_kind``, the books' shapes, which symbols are offered). ``blocked``: by
    unified symbol, ``_blocked_for_entry``."""
    opts = spec.params.options
    perp_fee = opts.perp_taker_fee_rate if spec.params.strategy.fee_kind == "taker" else opts.perp_maker_fee_rate
    fees = (float(opts.spot_fee_rate), float(perp_fee))
    paths = build_paths(core.source, list(ds.series), ds.grid)
    by_id = {sid: blocked.get(s.unified, ~s.has_data) for sid, s in ds.series.items()}
    unified = {sid: s.unified for sid, s in ds.series.items()}
    shapes = book_shapes(core.exchange, list(paths))
    return paths, quiet_view(paths, unified, ds.grid, by_id, fees, shapes, core.builder.book_depth)


async def _run_loop(
    spec: BacktestSpec, ds: Dataset, core: Core, jobs: EngineLoop, progress: Progress | None
) -> tuple[Timeline, RunStats, dict[str, int]]:
    opts = spec.params.options
    symbols = [s.unified for s in ds.series.values()]
    tl = Timeline.empty(ds.grid, symbols, float(spec.capital))
    in_market: dict[str, int] = dict.fromkeys(symbols, 0)
    missing = {s.unified: ~s.has_data for s in ds.series.values()}
    blocked = _blocked_for_entry(ds, opts.gap_lookahead_hours)
    paths, view = market_view(spec, ds, core, blocked)
    bound = quiet_bound(core.strategy, view)  # the strategy's own; None: every scan runs
    by_id = {sid: m.blocked for sid, m in view.markets.items()}
    unified = {sid: m.symbol for sid, m in view.markets.items()}
    possible = (
        bound.entry_possible() if opts.skip_idle_hours and bound is not None else np.ones(len(ds.grid), dtype=bool)
    )
    scan = scan_hours(len(ds.grid), opts.eval_every_hours)
    possible = possible & scan  # between scans nothing can open a pair
    minute_hours = _minute_hours(ds) if opts.minute_checks else set()
    ff = (
        _fast_forward(spec, ds, core, jobs, scan, by_id, unified, minute_hours, paths, bound)
        if opts.fast_forward
        else None
    )
    evaluated = skipped = minute_checks = scans = 0
    # The opening balances, before the first hour trades: the report's equity window starts here.
    await jobs.step(int(ds.grid[0]) - 1)
    await jobs.snapshot_balances()
    last_snapshot_ms: int | None = None
    t_start = time.perf_counter()
    n = len(ds.grid)
    i = 0
    while i < n:
        if ff is not None and i > 0:
            j, last_snapshot_ms = await ff.advance(i, tl, in_market, last_snapshot_ms, opts.snapshot_every_hours)
            if progress and j > i:
                progress(j - i)
            skipped += j - i
            i = j
            if i >= n:
                break
        t = int(ds.grid[i])
        idle = await jobs.idle()
        if idle and not possible[i] and t not in minute_hours and i > 0:
            j = i
            while j < n and not possible[j] and int(ds.grid[j]) not in minute_hours:
                j += 1
            _idle_rows(tl, i, j, core, paths)
            skipped += j - i
            if progress:
                progress(j - i)
            last_snapshot_ms = await _snapshots_while_idle(jobs, ds, i, j, last_snapshot_ms, opts.snapshot_every_hours)
            i = j
            continue
        await jobs.step(t)
        await jobs.sync_funding()
        gaps = _gaps_ahead(ds, jobs.held(), i, missing, blocked)
        if gaps:
            await jobs.exit_before_gaps(gaps)
        if scan[i]:
            await jobs.scan(*_data_limits(ds, symbols, i, missing, blocked, opts.gap_lookahead_hours))
            scans += 1
        await jobs.check_collateral()
        if t in minute_hours:
            for m in range(t + MINUTE_MS, t + HOUR_MS, MINUTE_MS):
                if await jobs.idle():
                    break
                await jobs.step(m)
                await jobs.check_collateral()
                minute_checks += 1
        row = await jobs.state(t)
        tl.equity[i] = row.equity
        tl.collateral_ratio[i] = row.collateral_ratio
        tl.notional[i] = row.notional
        for sym in row.held:
            in_market[sym] = in_market.get(sym, 0) + 1
        if last_snapshot_ms is None or t - last_snapshot_ms >= opts.snapshot_every_hours * HOUR_MS:
            await jobs.snapshot_balances()
            last_snapshot_ms = t
        evaluated += 1
        if progress:
            progress(1)
        i += 1
    if n and last_snapshot_ms != int(ds.grid[-1]):
        # the closing balances, so `fundbot report` reconciles equity up to the run's last hour (the
        # summary's final equity), not only to the last snapshot of the cadence
        await jobs.step(int(ds.grid[-1]))
        await jobs.snapshot_balances()
    await jobs.finish(int(ds.end_ms))
    stats = RunStats(
        symbol_hours=ds.symbol_hours,
        ticks_evaluated=evaluated,
        ticks_skipped=skipped,
        minute_checks=minute_checks,
        scans=scans,
        seconds=time.perf_counter() - t_start,
        sim_events=core.sim_events,
        treasury_runs=jobs.treasury_runs,
        scan_hours=int(scan.sum()),
        fast_forwarded=ff.hours_skipped if ff else 0,
        stretches=ff.stretches if ff else 0,
    )
    return tl, stats, in_market


def _data_limits(
    ds: Dataset, symbols: list[str], i: int, missing: dict[str, np.ndarray], blocked: dict[str, np.ndarray], ahead: int
) -> tuple[dict[str, str], dict[str, str]]:
    """What the history says the engine cannot know at hour ``i``: symbols without data now (not read,
    not traded) and symbols with a hole within ``ahead`` hours (no pair opens or grows into it)."""
    no_data = {s: "no market data in the history at this hour" for s in symbols if missing[s][i]}
    no_entry = {s: f"the history has a gap within {ahead} h" for s in symbols if blocked[s][i] and s not in no_data}
    return no_data, no_entry


def _gaps_ahead(
    ds: Dataset, held: set[str], i: int, missing: dict[str, np.ndarray], blocked: dict[str, np.ndarray]
) -> dict[str, str]:
    """Held symbols with data now and a hole within the lookahead, each with when the hole starts."""
    out = {}
    for sym in held:
        if sym in blocked and blocked[sym][i] and not missing[sym][i]:
            j = i + int(np.argmax(missing[sym][i:]))
            out[sym] = f"has no data from {iso_utc(int(ds.grid[j]))}: closed before the gap"
    return out


def _fast_forward(
    spec: BacktestSpec,
    ds: Dataset,
    core: Core,
    jobs: EngineLoop,
    scan: np.ndarray,
    blocked: dict[str, np.ndarray],
    unified: dict[str, str],
    minute_hours: set[int],
    paths: dict[str, SymbolPaths],
    bound: QuietBound | None,
) -> FastForward:
    unsafe = np.isin(ds.grid, np.array(sorted(minute_hours), dtype=np.int64))
    for p in paths.values():
        unsafe |= p.edge  # the simulator's last known price is set at the hour before a gap: run it
    return FastForward(
        jobs, paths, ds.grid, scan, unsafe, blocked, spec.params.strategy, core.treasury.band, bound, unified
    )


def scan_hours(n: int, every: int) -> np.ndarray:
    """bool per grid hour: the strategy is evaluated (hour 0, then every ``every`` hours)."""
    if every < 1:
        raise ValueError(f"eval_every_hours must be >= 1, got {every}")
    return (np.arange(n) % every) == 0


def _idle_rows(tl: Timeline, i: int, j: int, core: Core, paths: dict[str, SymbolPaths]) -> None:
    """Flat book, nothing trades: the hours [i, j) hold the same wallets as hour i - 1, and equity moves
    only with the coins left in the spot wallet (fee dust), valued as the simulator values them (the
    replayed spot price, the last known one in a gap, nothing before the first)."""
    ex = core.exchange
    spot = SpotHoldings.read(ex.spot_account().balances, paths)
    tl.equity[i:j] = float(ex.futures_account().total_margin_balance) + spot.value(paths, i, j)
    tl.collateral_ratio[i:j] = np.nan
    tl.notional[i:j] = 0.0


async def _snapshots_while_idle(
    jobs: EngineLoop, ds: Dataset, i: int, j: int, last_ms: int | None, every_h: int
) -> int | None:
    """Balance snapshots the daemon would have written during skipped hours, by the engine at their hours."""
    for k in range(i, j):
        t = int(ds.grid[k])
        if last_ms is None or t - last_ms >= every_h * HOUR_MS:
            await jobs.step(t)
            await jobs.snapshot_balances()
            last_ms = t
    return last_ms


def _minute_hours(ds: Dataset) -> set[int]:
    hours: set[int] = set()
    for spans in ds.minute_windows.values():
        for a, b in spans:
            h = (a // HOUR_MS) * HOUR_MS
            while h < b:
                hours.add(h)
                h += HOUR_MS
    return hours


def check_bnb_market(spec: BacktestSpec, ds: Dataset) -> None:
    """``[treasury] bnb_fees`` buys BNB on the simulator's BNB/USDT spot market, which exists only when the
    run's symbols include BNBUSDT: refused before anything is written, not an error at every top-up."""
    if spec.params.treasury.bnb_fees and BNB_SYMBOL not in ds.series:
        raise DataError("[treasury] bnb_fees buys BNB on BNB/USDT: add BNBUSDT to --symbols (or drop bnb_fees)")


async def run_backtest(
    spec: BacktestSpec,
    ds: Dataset | None = None,
    progress: Progress | None = None,
    out_dir: Path | None = None,
    strategy: Strategy | None = None,
) -> BacktestResult:
    """One strategy on the data; its ledger is ``<out_dir>/ledger.db``. ``strategy``: a strategy object of
    the caller's own (any ``strategies.base.Strategy``) instead of the one ``spec.strategy`` names."""
    ds = ds or load_dataset(spec.data_dir, spec.symbols, spec.start_ms, spec.end_ms)
    check_bnb_market(spec, ds)
    out = Path(out_dir or spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    core = await build_core(spec, ds, out / "ledger.db", strategy)
    try:
        jobs = EngineLoop(core)
        jobs.collateral_gate = spec.params.options.collateral_gate
        tl, stats, in_market = await _run_loop(spec, ds, core, jobs, progress)
        facts = await read_facts(core.ledger)
        fill_timeline(tl, facts)
        summary, rows = summarise(
            jobs.strategy_name, float(spec.capital), tl, facts, core.liquidations(), in_market, ds.data_notes()
        )
        tracking = predictor_tracking(core.source, ds)
        trips = await round_trips(core.ledger, facts.attribution, ds.end_ms, final_marks(ds))
        band = core.treasury.band
    finally:
        await core.close()
    held = {t.symbol for t in trips} | {s for s, h in in_market.items() if h}
    return BacktestResult(
        summary,
        rows,
        tl,
        ds.data_notes(),
        stats,
        core.ledger_url,
        str(out),
        predictor=tracking,
        monthly=monthly_returns(tl),
        round_trips=trips,
        funding_rates=funding_rates_apr(ds, held),
        collateral_band={"low": float(band.low), "target": float(band.target), "high": float(band.high)},
    )


def final_marks(ds: Dataset) -> dict[str, dict[Leg, Decimal | None]]:
    """Each symbol's last replayed spot and perp close in the window: what a pair still open is marked at."""

    def last(a: np.ndarray) -> Decimal | None:
        ok = np.flatnonzero(~np.isnan(a))
        return Decimal(repr(float(a[ok[-1]]))) if len(ok) else None

    return {s.unified: {Leg.SPOT: last(s.spot_close), Leg.PERP: last(s.perp_close)} for s in ds.series.values()}


def funding_rates_apr(ds: Dataset, symbols: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Settled funding of ``symbols`` in the window, each rate annualised with its own interval
    (rate * 8760 / interval hours: a 1 h rate is not an 8 h one)."""
    out = {}
    for s in ds.series.values():
        if s.unified not in symbols:
            continue
        inside = (s.funding_ts >= ds.start_ms) & (s.funding_ts < ds.end_ms)
        out[s.unified] = (s.funding_ts[inside], s.funding_rate[inside] * 8760.0 / s.funding_interval[inside])
    return out


def run_with_baselines(spec: BacktestSpec, baselines: bool = True, workers: int | None = None) -> BacktestResult:
    """The requested strategy, then each baseline on the same data (ledgers in ``<out>/baselines/``).

    The baselines run in ``workers`` other processes (default: one per spare core, at most one per
    baseline) while this one runs the strategy: each run is independent (own simulator, own ledger) and
    deterministic, so only the wall time changes. ``workers=0``, a single core, or a run too short to
    repay starting a process (``PARALLEL_MIN_SYMBOL_HOURS``) runs them here, in turn.
    """
    ds = load_dataset(spec.data_dir, spec.symbols, spec.start_ms, spec.end_ms)
    check_bnb_market(spec, ds)
    has_btc = ALWAYS_ON_SYMBOL in ds.series
    if spec.strategy == "always-on-btc" and not has_btc:
        raise DataError("always-on-btc holds BTC/USDT only: add BTCUSDT to --symbols")
    # without BTC in the data the always-on-BTC baseline would hold nothing: it is left out, not shown as 0
    others = [b for b in BASELINES if b != spec.strategy and (has_btc or b != "always-on-btc")] if baselines else []
    # an earlier run's baselines in the same --out would sit beside this run's ledger and report as if theirs
    shutil.rmtree(Path(spec.out_dir) / "baselines", ignore_errors=True)
    if workers is None:
        spare = max((os.cpu_count() or 1) - 1, 0)
        workers = min(len(others), spare) if ds.symbol_hours >= PARALLEL_MIN_SYMBOL_HOURS else 0
    with progress_reporter(spec.progress, ds.start_ms, len(ds.grid), 1 + len(others)) as advance:
        if workers <= 0 or not others:
            result = asyncio.run(run_backtest(spec, ds, advance))
            for name in others:
                _baseline(spec, name, ds, advance).add_to(result, name)
            return result
        # spawn, not fork: a forked child would inherit this process's threads and open files
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(_baseline, spec, name) for name in others}
            result = asyncio.run(run_backtest(spec, ds, advance))
            for name in others:
                futures[name].result().add_to(result, name)
                if advance:
                    advance(len(ds.grid))
    return result


@dataclass(frozen=True)
class BaselineRun:
    """What a baseline run sends back (picklable: a worker process returns it): its summary and its
    hourly equity, drawn on the strategy's PnL chart."""

    summary: Summary
    equity: np.ndarray

    def add_to(self, result: BacktestResult, name: str) -> None:
        result.baselines[name] = self.summary
        result.baseline_equity[name] = self.equity


def _baseline(
    spec: BacktestSpec, name: str, ds: Dataset | None = None, progress: Progress | None = None
) -> BaselineRun:
    """Run baseline ``name`` on the spec's data into ``<out>/baselines/<name>``."""
    sub = BacktestSpec(**{**spec.__dict__, "strategy": name, "progress": False})
    run = asyncio.run(run_backtest(sub, ds, progress, Path(spec.out_dir) / "baselines" / name))
    return BaselineRun(run.summary, run.timeline.equity)


__all__ = ["BacktestSpec", "Leg", "run_backtest", "run_with_baselines"]
