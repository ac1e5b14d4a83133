"""Progress a person can follow: a rich bar on a terminal, else a plain line on stderr at most every
``LINE_EVERY_S`` seconds (a log file, CI, ``--json``), each with the percent done, the simulated date
and the rate in simulated hours per second of wall time."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, TextIO

from bot.domain import HOUR_MS
from bot.format import iso_utc

LINE_EVERY_S = 10.0
ProgressKind = bool | Literal["bar", "line"]  # True: a bar on a terminal, a line elsewhere
Progress = Callable[[int], None]  # hours just simulated


class HoursDone:
    """Hours simulated over ``runs`` runs of ``run_hours`` each (the strategy, then its baselines), and the
    simulated instant the current run has reached."""

    def __init__(self, start_ms: int, run_hours: int, runs: int, clock: Callable[[], float] = time.monotonic):
        self.start_ms = start_ms
        self.run_hours = max(run_hours, 1)
        self.runs = max(runs, 1)
        self.total = self.run_hours * self.runs
        self.done = 0
        self.clock = clock
        self.started = clock()

    def add(self, hours: int) -> None:
        self.done = min(self.done + hours, self.total)

    @property
    def fraction(self) -> float:
        return self.done / self.total

    def simulated_ms(self) -> int:
        within = self.run_hours if self.done >= self.total else self.done % self.run_hours
        return self.start_ms + within * HOUR_MS

    def run_number(self) -> int:
        return min(self.done // self.run_hours + 1, self.runs)

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def describe(self) -> str:
        run = f" (run {self.run_number()}/{self.runs})" if self.runs > 1 else ""
        return (
            f"{self.fraction * 100:5.1f}% simulated {iso_utc(self.simulated_ms())}{run}, "
            f"{self.rate():,.0f} simulated h/s"
        )


class ProgressLine:
    """One line on ``stream`` per ``every_s`` seconds at most, never more often (none for a short run)."""

    def __init__(self, hours: HoursDone, stream: TextIO | None = None, every_s: float | None = None) -> None:
        self.hours = hours
        self.stream = stream
        self.every_s = LINE_EVERY_S if every_s is None else every_s
        self.last = hours.started

    def __call__(self, k: int) -> None:
        self.hours.add(k)
        now = self.hours.clock()
        if now - self.last >= self.every_s:
            self.last = now
            out = self.stream or sys.stderr
            out.write(f"backtest {self.hours.describe()}\n")
            out.flush()


@contextmanager
def progress_reporter(kind: ProgressKind, start_ms: int, run_hours: int, runs: int) -> Iterator[Progress | None]:
    """The reporter ``kind`` asks for (None when False)."""
    if kind is False:
        yield None
        return
    hours = HoursDone(start_ms, run_hours, runs)
    if kind == "line" or (kind is True and not sys.stderr.isatty()):
        yield ProgressLine(hours)
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    bar = RichProgress(
        TextColumn("backtest"),
        BarColumn(),
        TextColumn("{task.fields[where]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("hours", total=hours.total, where="")

    def advance(k: int) -> None:
        hours.add(k)
        bar.update(task, completed=hours.done, where=hours.describe())

    with bar:
        yield advance
