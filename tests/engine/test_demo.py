"""`fundbot demo`: the window the bundled history covers, and a closing summary of what actually ran."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from bot.engine.demo import DEMO_SYMBOLS, demo_window, symbol_coverage
from tests.waiting import wait_until_sync

DAY = 86_400_000
FEB_15_2026 = 1_771_113_600_000


def test_a_symbol_without_data_in_the_window_is_left_out_with_a_note() -> None:
    """BNB's bundled candles end 2026-02-19: a demo after that gave `BadSymbol "No mark price for BNBUSDT."`."""
    window = demo_window(FEB_15_2026, 7)
    assert "BNB/USDT" not in window.symbols and len(window.symbols) == len(DEMO_SYMBOLS) - 1
    assert window.notes == ["BNB/USDT left out: its bundled data ends 2026-02-19 02:00 UTC"]
    assert demo_window(FEB_15_2026 - 10 * DAY, 3).symbols == DEMO_SYMBOLS


@pytest.mark.parametrize("start", ["2024-06-01", "2026-05-12", "2026-06-01"])
def test_a_window_outside_the_data_is_refused_with_the_range(start: str) -> None:
    from bot.engine.demo import _ms

    with pytest.raises(typer.BadParameter) as info:
        demo_window(_ms(start), 7)
    text = str(info.value)
    assert "the bundled data runs from 2025-01-01 to 2026-05-16 19:00 UTC" in text
    assert "a 7-day demo can start from 2025-01-01 to 2026-05-09" in text


def test_coverage_is_where_every_leg_has_candles() -> None:
    coverage = symbol_coverage(["BTC/USDT", "BNB/USDT", "NOPE/USDT"])
    assert set(coverage) == {"BTC/USDT", "BNB/USDT"}
    assert coverage["BNB/USDT"][1] < coverage["BTC/USDT"][1]


@pytest.mark.slow
def test_ctrl_c_summary_says_how_far_the_demo_got(tmp_path: Path) -> None:
    """After Ctrl-C the summary claimed the full 7 days, and ages counted from the planned end."""
    out = tmp_path / "demo"
    log = (tmp_path / "demo.log").open("w")
    cmd = [sys.executable, "-m", "bot.cli", "demo", "--days", "7", "--dir", str(out)]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:

        def filled_after_start() -> bool:
            """A leg filled after the engine started: a pair is held, so the summary shows its age."""
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            _, started, after = (tmp_path / "demo.log").read_text().partition("engine started")
            return bool(started) and " FILL " in after

        wait_until_sync(filled_after_start, "the demo's first fill after the engine started")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (tmp_path / "demo.log").read_text()
    assert "stopped early: status after 0." in text and "of the 7 planned" in text, text[-3000:]
    assert "status after 7.0 simulated days" not in text
    assert not re.search(r"\d+d\d\dh ago", text)  # ages count from the stop, not from the planned end
