"""``fundbot sweep`` throughput: N carry configurations on Dask (a LocalCluster) and on a plain process pool.

Run: ``.venv/bin/python benchmarks/sweep.py [--configs 200] [--data DIR] [--start 2025-07-01] [--end
2025-08-01] [--symbols ...] [--workers N] [--only dask|pool]``. The configurations are the first N points
of a fixed grid over entry threshold, exit threshold, hold horizon and max symbols; both paths run the
same trials through the same sweep loop (``bot.sweep.engine.run_study``, each into a fresh SQLite
study), so the difference is the execution layer alone. Figures per path: total wall time (cluster or
pool start-up included), trials per minute, and the mean backtest time of one trial; then the Dask
path's overhead against the pool. The issue's workload (200 configurations over the whole shared history)
takes hours on 2 cores: give it with ``--data ../shared/data --start '' --end ''`` when there is time, or
extrapolate from a smaller run. Prints one line per figure on stderr and a JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bot.backtest.cli import parse_time
from bot.sim.history import bundled_data_dir
from bot.sweep.engine import SweepRequest, run_study
from bot.sweep.runners import DaskRunner, PoolRunner, default_workers
from bot.sweep.space import load_space
from bot.sweep.storage import open_storage
from bot.sweep.worker import Window

GRID = {
    "entry_threshold_apr": ["0.06", "0.08", "0.1", "0.12", "0.15", "0.2", "0.25", "0.3", "0.4", "0.5"],
    "exit_threshold_apr": ["0", "0.02", "0.04", "0.05"],
    "hold_horizon_hours": [168, 336, 720],
    "max_symbols": [2, 4],
}


def space_text(n: int) -> tuple[str, int]:
    """A space file whose grid has at least ``n`` points (the sweep runs the first ``n``)."""
    names = list(GRID)
    sizes = [len(GRID[k]) for k in names]
    total = 1
    for s in sizes:
        total *= s
    if n > total:
        raise SystemExit(f"--configs {n}: the benchmark's grid has {total} points")
    lines = ["[strategy]"] + [f"{k} = {json.dumps(v)}" for k, v in GRID.items()]
    return "\n".join(lines) + "\n", total


def run_path(kind: str, n: int, window: Window, workers: int, tmp: Path) -> dict[str, float]:
    space_file = tmp / "space.toml"
    space_file.write_text(space_text(n)[0])
    space = load_space(space_file)
    req = SweepRequest(space, window, Decimal(100000), "grid", trials=n, study_name=f"bench-{kind}")
    storage = open_storage(f"sqlite+aiosqlite:///{(tmp / f'{kind}.db').as_posix()}")
    t0 = time.perf_counter()
    runner = DaskRunner(workers=workers) if kind == "dask" else PoolRunner(workers)
    started = time.perf_counter() - t0
    try:
        outcome = run_study(req, runner, storage)
    finally:
        runner.close()
    total = time.perf_counter() - t0
    trial_s = [r.metrics["seconds"] for r in outcome.rows if r.metrics]
    bad = [r for r in outcome.rows if r.state != "ok"]
    if outcome.ran != n or bad:
        raise SystemExit(f"{kind}: {outcome.ran} of {n} trials ran, {len(bad)} not ok: {bad[:1]}")
    return {
        "total_s": round(total, 2),
        "startup_s": round(started, 2),
        "trials_per_min": round(n / total * 60, 2),
        "mean_trial_backtest_s": round(sum(trial_s) / len(trial_s), 3),
        "data_loads": sum(outcome.worker_pids.values()),
        "worker_processes": len(outcome.worker_pids),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=200)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--start", default="2025-07-01")
    ap.add_argument("--end", default="2025-08-01")
    ap.add_argument("--symbols", default=None)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--only", choices=("dask", "pool"), default=None)
    args = ap.parse_args()
    window = Window(
        str(args.data or bundled_data_dir()),
        tuple(s.strip() for s in args.symbols.split(",")) if args.symbols else None,
        parse_time(args.start or None, "--start"),
        parse_time(args.end or None, "--end"),
    )
    out: dict[str, object] = {
        "configs": args.configs,
        "workers": args.workers,
        "data": window.data_dir,
        "start": args.start,
        "end": args.end,
        "symbols": args.symbols or "all",
    }
    for kind in ("pool", "dask"):
        if args.only and kind != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"fundbot-bench-{kind}-") as tmp:
            fig = run_path(kind, args.configs, window, args.workers, Path(tmp))
        out[kind] = fig
        print(
            f"{kind}: {fig['total_s']} s total ({fig['startup_s']} s start-up), {fig['trials_per_min']} "
            f"trials/min, {fig['mean_trial_backtest_s']} s per backtest, {fig['data_loads']} data loads in "
            f"{fig['worker_processes']} worker processes",
            file=sys.stderr,
        )
    if "dask" in out and "pool" in out:
        d, p = out["dask"], out["pool"]
        overhead = (d["total_s"] - p["total_s"]) / p["total_s"]  # type: ignore[index]
        out["dask_overhead_vs_pool"] = round(overhead, 4)
        print(f"Dask overhead vs process pool: {overhead * 100:+.1f}% of the pool's total time", file=sys.stderr)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
