"""Backtest throughput on the whole bundled dataset: symbol-hours per second and peak memory.

Run: ``.venv/bin/python benchmarks/backtest.py [--strategy carry] [--symbols BTCUSDT,ETHUSDT] [--days N]
[--baselines] [--eval-every H] [--no-fast-forward] [--data DIR]``; ``--data ../shared/data`` runs the whole
shared history (46 symbols over 6.7 years) instead of the bundled set. Without ``--baselines`` one strategy runs (the
figure the speed goal is about); with it, the strategy and both baselines run as the default ``fundbot
backtest`` does. End to end = data loading + every run (simulator set-up, loop, ledger reads, summary);
"loop" = the hour loop alone. ``hours_fast_forwarded`` counts hours run in simulator jumps
(``bot/backtest/fastforward.py``); ``--no-fast-forward`` gives the hour-by-hour reference, whose ledger
is the same. The report (summary, plots and HTML, as ``fundbot backtest`` writes it) is part of end to
end and timed on its own as ``report_s``; module imports (matplotlib included) happen before the clock
starts. ``cpu_s`` (and each run's ``run_cpu_s``) is this process's CPU time: the figure to compare
when other work shares the cores and stretches the wall clock. Prints one line per figure on stderr and
a JSON line at the end on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestParams, with_backtest_options
from bot.backtest.report import write_report
from bot.backtest.runner import BASELINES, BacktestSpec, run_backtest
from bot.domain import DAY_MS
from bot.sim.history import bundled_data_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", default="carry")
    ap.add_argument("--data", type=Path, default=None, help="data folder (shared/data layout); default: bundled")
    ap.add_argument("--symbols", default=None)
    ap.add_argument("--days", type=int, default=None, help="only the first N days of the dataset")
    ap.add_argument("--baselines", action="store_true", help="also run the baselines (as fundbot backtest)")
    ap.add_argument("--eval-every", type=int, default=1, help="strategy scan cadence in hours (as --eval-every)")
    ap.add_argument("--no-fast-forward", action="store_true", help="run every hour (the reference the jumps match)")
    args = ap.parse_args()
    symbols = args.symbols.split(",") if args.symbols else None
    data_dir = args.data or bundled_data_dir()
    t0 = time.perf_counter()
    start = end = None
    if args.days:
        first = load_dataset(data_dir, symbols)
        start, end = first.start_ms, first.start_ms + args.days * DAY_MS
        t0 = time.perf_counter()  # the window lookup is not part of the run
    ds = load_dataset(data_dir, symbols, start, end)
    t_load = time.perf_counter() - t0
    names = [args.strategy] + ([b for b in BASELINES if b != args.strategy] if args.baselines else [])
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = BacktestSpec(
                data_dir,
                symbols,
                ds.start_ms,
                ds.end_ms,
                Decimal(100000),
                name,
                with_backtest_options(
                    BacktestParams(), eval_every_hours=args.eval_every, fast_forward=not args.no_fast_forward
                ),
                out_dir=Path(tmp) / name,
            )
            t1, c1 = time.perf_counter(), time.process_time()
            result = asyncio.run(run_backtest(spec, ds))
            runs[name] = (time.perf_counter() - t1, result, time.process_time() - c1)
        t_report = time.perf_counter()
        write_report(runs[args.strategy][1], Path(tmp) / args.strategy)
        t_report = time.perf_counter() - t_report
    total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    sh = ds.symbol_hours * len(names)
    loop_s = sum(r.stats.seconds for _, r, _ in runs.values())
    cpu_s = time.process_time()
    figures: dict[str, object] = {
        "strategies": names,
        "eval_every_hours": args.eval_every,
        "symbols": len(ds.series),
        "hours": len(ds.grid),
        "symbol_hours": sh,
        "load_s": round(t_load, 3),
        "end_to_end_s": round(total, 3),
        "loop_s": round(loop_s, 3),
        "report_s": round(t_report, 3),
        "cpu_s": round(cpu_s, 3),
        "symbol_hours_per_s_end_to_end": round(sh / total, 1),
        "symbol_hours_per_s_loop": round(sh / loop_s, 1),
        "peak_rss_mb": round(peak_mb, 1),
    }
    for name, (secs, r, cpu) in runs.items():
        figures[name] = {
            "run_s": round(secs, 3),
            "run_cpu_s": round(cpu, 3),
            "loop_s": round(r.stats.seconds, 3),
            "ticks_evaluated": r.stats.ticks_evaluated,
            "ticks_skipped": r.stats.ticks_skipped,
            "scans": r.stats.scans,
            "minute_checks": r.stats.minute_checks,
            "sim_events": r.stats.sim_events,
            "treasury_runs": r.stats.treasury_runs,
            "hours_fast_forwarded": r.stats.fast_forwarded,
            "stretches": r.stats.stretches,
            "fills": r.summary.trades,
            "net_pnl": round(r.summary.net_pnl, 2),
        }
    for k, v in figures.items():
        print(f"{k:32s} {v}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
