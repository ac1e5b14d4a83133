"""Progress on a non-terminal: a line on stderr at most every 10 s with the percent, the simulated date
and the rate (the whole shared history with baselines ran 14 minutes silent)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.backtest import progress as progress_mod
from bot.backtest.progress import HoursDone, ProgressLine

from .backtest_datafiles import HOUR_MS, T0
from .test_cli import _app, _data


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_line_at_most_every_ten_seconds_with_percent_date_and_rate() -> None:
    clock = FakeClock()
    out = io.StringIO()
    line = ProgressLine(HoursDone(T0, run_hours=100, runs=2, clock=clock), out)
    for step_s, hours in ((4, 10), (4, 10), (4, 10), (9.9, 10), (0.2, 10), (30, 60)):
        clock.t += step_s
        line(hours)
    # at 12 s (30 h done) and at 22.1 s (50 h); nothing at 4, 8 or 21.9 s: less than 10 s since the last
    lines = out.getvalue().splitlines()
    assert lines == [
        "backtest  15.0% simulated 2026-01-02T06:00:00Z (run 1/2), 2 simulated h/s",
        "backtest  25.0% simulated 2026-01-03T02:00:00Z (run 1/2), 2 simulated h/s",
        "backtest  55.0% simulated 2026-01-01T10:00:00Z (run 2/2), 2 simulated h/s",
    ]
    assert T0 + 30 * HOUR_MS == 1_767_333_600_000  # 2026-01-02T06:00Z: 30 hours into the first run


def test_a_short_run_prints_no_line() -> None:
    clock = FakeClock()
    out = io.StringIO()
    line = ProgressLine(HoursDone(T0, run_hours=10, runs=1, clock=clock), out)
    for _ in range(10):
        clock.t += 0.5
        line(1)
    assert out.getvalue() == ""


@pytest.mark.slow
def test_json_run_writes_progress_lines_to_stderr_not_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --json (and off a terminal) the lines go to stderr; stdout stays one JSON object."""
    monkeypatch.setattr(progress_mod, "LINE_EVERY_S", 0.0)
    args = [
        "backtest",
        "--data",
        str(_data(tmp_path)),
        "--strategy",
        "always-on-btc",
        "--capital",
        "10000",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-02",
        "--out",
        str(tmp_path / "out"),
        "--json",
        "--no-baselines",
    ]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    assert res.stdout.count("\n") == 1 and res.stdout.startswith("{")
    lines = res.stderr.splitlines()
    assert lines and all(
        re.fullmatch(r"backtest +[0-9.]+% simulated 2026-01-0[12]T\d\d:00:00Z, [0-9,]+ simulated h/s", x) for x in lines
    ), lines
    assert lines[-1].startswith("backtest 100.0% simulated 2026-01-02T00:00:00Z")
