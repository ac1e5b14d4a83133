"""Backtest throughput on the whole bundled dataset: symbol-hours per second and peak memory.

Run: ``.venv/bin/python benchmarks/backtest.py [--strategy carry] [--symbols BTCUSDT,ETHUSDT] [--days N]``.
Prints one line per phase and a JSON line at the end. End to end = data loading + run + ledger reads.
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
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.domain import DAY_MS
from bot.sim.history import bundled_data_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", default="carry")
    ap.add_argument("--symbols", default=None)
    ap.add_argument("--days", type=int, default=None, help="only the first N days of the dataset")
    args = ap.parse_args()
    symbols = args.symbols.split(",") if args.symbols else None
    t0 = time.perf_counter()
    ds = load_dataset(bundled_data_dir(), symbols)
    if args.days:
        ds = load_dataset(bundled_data_dir(), symbols, ds.start_ms, ds.start_ms + args.days * DAY_MS)
    t_load = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        spec = BacktestSpec(bundled_data_dir(), symbols, ds.start_ms, ds.end_ms, Decimal(100000), args.strategy,
                            out_dir=Path(tmp))
        t1 = time.perf_counter()
        result = asyncio.run(run_backtest(spec, ds))
        t_run = time.perf_counter() - t1
    total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    figures = {
        "strategy": args.strategy,
        "symbols": len(ds.series),
        "hours": len(ds.grid),
        "symbol_hours": ds.symbol_hours,
        "load_s": round(t_load, 3),
        "run_s": round(t_run, 3),
        "end_to_end_s": round(total, 3),
        "symbol_hours_per_s_end_to_end": round(ds.symbol_hours / total, 1),
        "symbol_hours_per_s_loop": round(result.stats.symbol_hours_per_second, 1),
        "ticks_evaluated": result.stats.ticks_evaluated,
        "ticks_skipped": result.stats.ticks_skipped,
        "fills": result.summary.trades,
        "net_pnl": round(result.summary.net_pnl, 2),
        "peak_rss_mb": round(peak_mb, 1),
    }
    for k, v in figures.items():
        print(f"{k:32s} {v}", file=sys.stderr)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
