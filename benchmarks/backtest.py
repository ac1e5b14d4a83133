"""Backtest throughput on the whole bundled dataset: symbol-hours per second and peak memory.

Run: ``.venv/bin/python benchmarks/backtest.py [--strategy carry] [--symbols BTCUSDT,ETHUSDT] [--days N]
[--baselines] [--eval-every H] [--no-fast-forward] [--data DIR]``; ``--data ../shared/data`` runs the whole
shared history (36 symbols over 6.7 years) instead of the bundled set. Without ``--baselines`` one strategy runs (the
figure the speed goal is about); with it, the strategy and both baselines run as the default ``fundbot
backtest`` does. End to end = data loading + every run (simulator set-up, loop, ledger reads, summary);
"loop" = the hour loop alone. ``hours_fast_forwarded`` counts hours run in simulator jumps
(``bot/backtest/fastforward.py``); ``--no-fast-forward`` gives the hour-by-hour reference, whose ledger
is the same. The report (summary, plots and HTML, as ``fundbot backtest`` writes it) is part of end to
end and timed on its own as ``report_s``; module imports (matplotlib included) happen before the clock
starts. Prints one line per figure on stderr and a JSON line at the end on stdout.

Side by side (issue 15 item 5): ``--workloads all`` (or a comma list of ``bundled``, ``history``, ``dense``,
``topn``) runs each workload in a child process of its own and prints, per workload: end to end, the time
pandas takes to read the same files (``pd.read_csv`` of every file the workload loads, in this run, page
cache warmed for both), their ratio, symbol-hours per second and the child's peak memory (its maxrss); and
the same ratio in CPU seconds (the child's user + system time against pandas'), which a loaded machine
hardly moves.
``bundled``: carry on the bundled set; ``history``: carry on the whole shared history (``--data``, default
``../shared/data``); ``dense``: carry on BTC, ETH, BNB, XRP over the last 4 years of the shared history;
``topn``: the top-N baseline alone on the whole shared history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd

from bot.backtest.data import load_dataset, resolve_symbols
from bot.backtest.params import BacktestParams, with_backtest_options
from bot.backtest.report import write_report
from bot.backtest.runner import BASELINES, BacktestSpec, run_backtest
from bot.domain import DAY_MS
from bot.sim.history import KLINE_KINDS, bundled_data_dir, kline_path

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DENSE = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "XRPUSDT")
FOUR_YEARS_DAYS = 1461  # 35,064 hours


def workload_args(name: str, shared: Path) -> list[str]:
    """The single-run arguments of one side-by-side workload."""
    if name == "bundled":
        return []
    if name == "history":
        return ["--data", str(shared)]
    if name == "dense":
        return ["--data", str(shared), "--symbols", ",".join(DENSE), "--last-days", str(FOUR_YEARS_DAYS)]
    if name == "topn":
        return ["--data", str(shared), "--strategy", "top-n"]
    raise SystemExit(f"unknown workload {name!r}: choose from bundled, history, dense, topn (or all)")


def workload_files(data_dir: Path, symbols: list[str] | None) -> list[Path]:
    """Every file ``load_dataset`` reads for these symbols: funding, hourly klines, minute klines."""
    files = []
    for sym in resolve_symbols(data_dir, symbols):
        files.append(data_dir / "funding" / f"binance_{sym}.csv.gz")
        files += [kline_path(data_dir, kind, sym) for kind in KLINE_KINDS if kline_path(data_dir, kind, sym).exists()]
        files += sorted((data_dir / "klines_1m").glob(f"binance_perp_{sym}_1m_*.csv.gz"))
    return files


def pandas_read_s(files: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds for pandas to read ``files`` (after one plain read of their bytes warms the
    page cache)."""
    for f in files:
        f.read_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    for f in files:
        pd.read_csv(f)
    return time.perf_counter() - t0, time.process_time() - c0


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def side_by_side(names: list[str], shared: Path, extra: list[str]) -> None:
    """Each workload in a child process (its own peak memory), next to pandas reading its files."""
    rows = []
    for name in names:
        args = workload_args(name, shared)
        data_dir = Path(args[args.index("--data") + 1]) if "--data" in args else bundled_data_dir()
        symbols = args[args.index("--symbols") + 1].split(",") if "--symbols" in args else None
        files = workload_files(data_dir, symbols)
        pandas_s, pandas_cpu = pandas_read_s(files)
        cmd = [sys.executable, __file__, *args, *extra]
        print(f"{name}: {' '.join(cmd[1:])}", file=sys.stderr)
        cpu0 = children_cpu_s()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        child_cpu = children_cpu_s() - cpu0  # a loaded machine stretches wall time, hardly CPU time
        child = json.loads(out.strip().splitlines()[-1])
        e2e = float(child["end_to_end_s"])
        row = {
            "workload": name,
            "files": len(files),
            "symbol_hours": child["symbol_hours"],
            "end_to_end_s": e2e,
            "pandas_read_s": round(pandas_s, 3),
            "ratio_to_pandas": round(e2e / pandas_s, 1),
            "cpu_s": round(child_cpu, 3),
            "pandas_cpu_s": round(pandas_cpu, 3),
            "cpu_ratio_to_pandas": round(child_cpu / pandas_cpu, 1),
            "symbol_hours_per_s": child["symbol_hours_per_s_end_to_end"],
            "peak_rss_mb": child["peak_rss_mb"],
            "fills": child[child["strategies"][0]]["fills"],
        }
        rows.append(row)
        print("  " + "  ".join(f"{k} {v}" for k, v in row.items() if k != "workload"), file=sys.stderr)
    head = (
        f"{'workload':10s} {'end to end':>11s} {'pandas read':>12s} {'ratio':>7s} {'symbol-h/s':>11s} {'peak MB':>8s}"
    )
    print(head, file=sys.stderr)
    for r in rows:
        print(
            f"{r['workload']:10s} {r['end_to_end_s']:10.2f}s {r['pandas_read_s']:11.3f}s {r['ratio_to_pandas']:6.1f}x "
            f"{r['symbol_hours_per_s']:11.0f} {r['peak_rss_mb']:8.0f}",
            file=sys.stderr,
        )
    print(json.dumps(rows))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default=None, help="side by side: all, or bundled,history,dense,topn")
    ap.add_argument("--shared", type=Path, default=SHARED_DATA, help="the shared history (for --workloads)")
    ap.add_argument("--strategy", default="carry")
    ap.add_argument("--data", type=Path, default=None, help="data folder (shared/data layout); default: bundled")
    ap.add_argument("--symbols", default=None)
    ap.add_argument("--days", type=int, default=None, help="only the first N days of the dataset")
    ap.add_argument("--last-days", type=int, default=None, help="only the last N days of the dataset")
    ap.add_argument("--baselines", action="store_true", help="also run the baselines (as fundbot backtest)")
    ap.add_argument("--eval-every", type=int, default=1, help="strategy scan cadence in hours (as --eval-every)")
    ap.add_argument("--no-fast-forward", action="store_true", help="run every hour (the reference the jumps match)")
    args = ap.parse_args()
    if args.workloads:
        names = ["bundled", "history", "dense", "topn"] if args.workloads == "all" else args.workloads.split(",")
        extra = [f"--eval-every={args.eval_every}"] + (["--no-fast-forward"] if args.no_fast_forward else [])
        side_by_side(names, args.shared.resolve(), extra)
        return
    symbols = args.symbols.split(",") if args.symbols else None
    data_dir = args.data or bundled_data_dir()
    t0 = time.perf_counter()
    start = end = None
    if args.days or args.last_days:
        first = load_dataset(data_dir, symbols)
        if args.days:
            start, end = first.start_ms, first.start_ms + args.days * DAY_MS
        else:
            start, end = first.end_ms - args.last_days * DAY_MS, first.end_ms
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
            t1 = time.perf_counter()
            result = asyncio.run(run_backtest(spec, ds))
            runs[name] = (time.perf_counter() - t1, result)
        t_report = time.perf_counter()
        write_report(runs[args.strategy][1], Path(tmp) / args.strategy)
        t_report = time.perf_counter() - t_report
    total = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    sh = ds.symbol_hours * len(names)
    loop_s = sum(r.stats.seconds for _, r in runs.values())
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
        "symbol_hours_per_s_end_to_end": round(sh / total, 1),
        "symbol_hours_per_s_loop": round(sh / loop_s, 1),
        "peak_rss_mb": round(peak_mb, 1),
    }
    for name, (secs, r) in runs.items():
        figures[name] = {
            "run_s": round(secs, 3),
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
