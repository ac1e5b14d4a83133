"""One trial, where it runs (a Dask worker or a pool process): exactly ``fundbot backtest``'s run.

The loaded data stays in the process (``_DATASETS``, keyed by the data folder, the symbols, the window
and every data file's size and mtime), so a worker reads the history once and reuses it for all its
trials; a rewritten file is a new key and is read again. Each trial's ledger goes to a temporary folder
of the worker (it is deleted: the figures come back to the sweep, the study keeps them).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from bot.backtest.data import Dataset, load_dataset
from bot.sweep.objective import TrialMetrics

_DATASETS: dict[tuple[Any, ...], Dataset] = {}
_LOADS = {"count": 0}  # datasets this process has read from files (a test checks it stays at one)
_CACHE_LIMIT = 8  # windows kept per process (walk-forward uses two per window)


@dataclass(frozen=True)
class Window:
    """The data a trial runs on: folder, symbols, [start_ms, end_ms)."""

    data_dir: str
    symbols: tuple[str, ...] | None
    start_ms: int | None
    end_ms: int | None


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs for one trial (picklable, sent over the wire)."""

    key: str  # study/trial number: the sweep tells each key's result once
    number: int
    window: Window
    capital: Decimal
    config: dict[str, dict[str, Any]]
    want_equity: bool = False


@dataclass
class TrialOutcome:
    key: str
    number: int
    metrics: TrialMetrics | None
    error: str | None  # the combination is invalid (named), or the backtest refused the data
    worker_pid: int
    dataset_loads: int
    equity: np.ndarray | None = None
    ts_ms: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _fingerprint(data_dir: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    for sub in ("funding", "klines", "klines_1m"):
        folder = data_dir / sub
        if folder.is_dir():
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                st = entry.stat()
                out.append((f"{sub}/{entry.name}", st.st_mtime_ns, st.st_size))
    return tuple(out)


def dataset_for(window: Window) -> Dataset:
    """The window's dataset, read from files once per process and kept while the files are unchanged."""
    data_dir = Path(window.data_dir).resolve()
    key = (str(data_dir), window.symbols, window.start_ms, window.end_ms, _fingerprint(data_dir))
    ds = _DATASETS.get(key)
    if ds is None:
        ds = load_dataset(data_dir, list(window.symbols) if window.symbols else None, window.start_ms, window.end_ms)
        _LOADS["count"] += 1
        if len(_DATASETS) >= _CACHE_LIMIT:
            _DATASETS.pop(next(iter(_DATASETS)))
        _DATASETS[key] = ds
    return ds


def run_trial(task: TrialTask) -> TrialOutcome:
    """Run the trial's backtest (no baselines) and return its figures; an invalid combination or data the
    backtest refuses comes back as ``error`` (the trial is recorded as failed with it, not retried)."""
    from bot.backtest.data import DataError
    from bot.backtest.params import BacktestConfigError, parse_backtest_config
    from bot.backtest.runner import BacktestSpec, run_backtest

    pid = os.getpid()
    try:
        params = parse_backtest_config(task.config, f"trial {task.number}")
        ds = dataset_for(task.window)
    except (BacktestConfigError, DataError) as err:
        return TrialOutcome(task.key, task.number, None, " ".join(str(err).split()), pid, _LOADS["count"])
    with tempfile.TemporaryDirectory(prefix="fundbot-trial-") as tmp:
        spec = BacktestSpec(
            data_dir=ds.data_dir,
            symbols=list(ds.series),
            start_ms=ds.start_ms,
            end_ms=ds.end_ms,
            capital=task.capital,
            strategy="carry",
            params=params,
            out_dir=Path(tmp),
        )
        result = asyncio.run(run_backtest(spec, ds))
    metrics = TrialMetrics.of(result)
    equity = result.timeline.equity.astype(np.float64) if task.want_equity else None
    ts = result.timeline.ts_ms if task.want_equity else None
    return TrialOutcome(task.key, task.number, metrics, None, pid, _LOADS["count"], equity, ts)
