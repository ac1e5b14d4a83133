"""Walk-forward validation: choose parameters on a train window, judge them on the test window after it.

Windows (``--train 12M --test 3M``): the first train window starts at the data's first hour; each test
window is the ``test`` span right after its train window; the next window moves on by ``test``. Rolling
train windows keep their length; anchored ones all start at the first hour. Only whole test windows are
run. A train window's study sees only the data of ``[train start, train end)`` (the backtest loads
nothing after its end), so nothing a test window holds can reach the choice made for it.

The out-of-sample equity curve chains the test windows: each starts from the capital, and its returns
are compounded onto where the previous window ended.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bot.domain import HOUR_MS
from bot.format import iso_utc
from bot.sweep.engine import StudyOutcome, SweepRequest, TrialRow, run_study
from bot.sweep.objective import TrialMetrics
from bot.sweep.runners import TrialRunner
from bot.sweep.worker import TrialOutcome, TrialTask

_SPAN = re.compile(r"^\s*(\d+)\s*([HDWMY])\s*$", re.IGNORECASE)
OOS_WARN_FRACTION = 0.5  # warn when out-of-sample objective is below half the in-sample one


class WalkForwardError(ValueError):
    """A window option is malformed or does not fit the data; the message names it."""


def parse_span(text: str, option: str) -> tuple[int, str]:
    """'12M' -> (12, 'M'): hours H, days D, weeks W, calendar months M, years Y."""
    m = _SPAN.match(text or "")
    if not m or int(m[1]) <= 0:
        raise WalkForwardError(f"{option} {text!r}: give a positive length with a unit, e.g. 12M, 90D, 2W, 1Y, 36H")
    return int(m[1]), m[2].upper()


def add_span(ts_ms: int, span: tuple[int, str]) -> int:
    n, unit = span
    if unit in "HDW":
        return ts_ms + n * {"H": 1, "D": 24, "W": 168}[unit] * HOUR_MS
    dt = datetime.fromtimestamp(ts_ms / 1000, UTC)
    months = dt.month - 1 + n * (12 if unit == "Y" else 1)
    year, month = dt.year + months // 12, months % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    return int(dt.replace(year=year, month=month, day=day).timestamp() * 1000)


@dataclass(frozen=True)
class WindowPair:
    index: int
    train: tuple[int, int]
    test: tuple[int, int]


def windows(
    start_ms: int,
    end_ms: int,
    train: tuple[int, str],
    test: tuple[int, str],
    anchored: bool,
    train_text: str = "",
    test_text: str = "",
) -> list[WindowPair]:
    """The train/test windows inside ``[start_ms, end_ms)``; none fitting is an error naming the spans."""
    out: list[WindowPair] = []
    train_start = start_ms
    train_end = add_span(start_ms, train)
    while True:
        test_end = add_span(train_end, test)
        if test_end > end_ms:
            break
        out.append(WindowPair(len(out), (train_start, train_end), (train_end, test_end)))
        if not anchored:
            train_start = add_span(train_start, test)
        train_end = test_end
    if not out:
        raise WalkForwardError(
            f"--train {train_text} + --test {test_text} is longer than the data ({iso_utc(start_ms)} to "
            f"{iso_utc(end_ms)}); shorten the windows or give more data"
        )
    return out


@dataclass
class WindowResult:
    pair: WindowPair
    study: StudyOutcome
    chosen: TrialRow | None  # None: no feasible trial in the train window (the test window is not run)
    in_sample: TrialMetrics | None
    out_of_sample: TrialMetrics | None
    oos_ts: np.ndarray | None = None
    oos_equity: np.ndarray | None = None
    error: str | None = None


@dataclass
class WalkForward:
    objective: str
    anchored: bool
    results: list[WindowResult] = field(default_factory=list)
    capital: float = 0.0

    def stitched(self) -> tuple[np.ndarray, np.ndarray]:
        """(hour ts, equity) of the test windows chained: each window's returns from where the last ended."""
        ts_parts, eq_parts = [], []
        level = self.capital
        for r in self.results:
            if r.oos_equity is None or r.oos_ts is None:
                continue
            eq = np.asarray(r.oos_equity, dtype=np.float64)
            ts_parts.append(np.asarray(r.oos_ts, dtype=np.int64))
            eq_parts.append(level * eq / self.capital)
            finite = eq[~np.isnan(eq)]
            if len(finite):
                level = level * finite[-1] / self.capital
        if not ts_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(ts_parts), np.concatenate(eq_parts)

    def warnings(self) -> list[str]:
        out = []
        for r in self.results:
            if r.chosen is None:
                out.append(
                    f"window {r.pair.index + 1}: no feasible trial in the train window; its test window was not run"
                )
                continue
            if r.in_sample is None or r.out_of_sample is None:
                continue
            ins, oos = r.in_sample.value(self.objective), r.out_of_sample.value(self.objective)
            if ins > 0 and oos < ins * OOS_WARN_FRACTION:
                out.append(
                    f"window {r.pair.index + 1}: out-of-sample {self.objective} {oos:.4g} is far below "
                    f"in-sample {ins:.4g}: the chosen parameters may be overfitted"
                )
        return out


def run_walk_forward(
    req: SweepRequest,
    pairs: list[WindowPair],
    runner: TrialRunner,
    storage: Any,
    anchored: bool = False,
    progress: Any = None,
) -> WalkForward:
    """Per window: a study on the train window (``<study>-wf<k>``), then its best feasible trial on the test
    window. The test figures are kept on the window's study (user attribute ``out_of_sample``)."""
    wf = WalkForward(req.objective, anchored, capital=float(req.capital))
    for pair in pairs:
        train_window = replace(req.window, start_ms=pair.train[0], end_ms=pair.train[1])
        sub = replace(req, window=train_window, study_name=f"{req.study_name}-wf{pair.index + 1}")
        study = run_study(sub, runner, storage, progress(pair) if progress else None)
        best = study.best(1)
        if not best:
            wf.results.append(WindowResult(pair, study, None, None, None))
            continue
        chosen = best[0]
        test_window = replace(req.window, start_ms=pair.test[0], end_ms=pair.test[1])
        task = TrialTask(
            f"{sub.study_name}/oos",
            chosen.number,
            test_window,
            req.capital,
            req.space.config(chosen.values),
            want_equity=True,
        )
        fut = runner.submit(task)
        runner.wait_any({fut})
        out: TrialOutcome = fut.result()
        result = WindowResult(
            pair,
            study,
            chosen,
            # stored from a TrialMetrics' own fields (floats and ints), which ** cannot type per key
            TrialMetrics(**chosen.metrics) if chosen.metrics else None,  # type: ignore[arg-type]
            out.metrics,
            out.ts_ms,
            out.equity,
            out.error,
        )
        _record(storage, sub.study_name, result)
        wf.results.append(result)
    return wf


def _record(storage: Any, study_name: str, r: WindowResult) -> None:
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage)
    study.set_user_attr(
        "out_of_sample",
        {
            "train": list(r.pair.train),
            "test": list(r.pair.test),
            "chosen_trial": r.chosen.number if r.chosen else None,
            "metrics": asdict(r.out_of_sample) if r.out_of_sample else None,
            "error": r.error,
        },
    )
