"""Each backtest shortcut, on and off, on a window of real bundled data: same fills, funding, transfers,
pairs and equity path."""

from pathlib import Path

import pytest

from bot.backtest.params import BacktestParams
from bot.config import TreasuryConfig

from .equivalence import assert_same_run, run_window, with_options

pytestmark = pytest.mark.slow  # every test here is over ~2 s


def test_collateral_gate_changes_nothing_even_when_the_treasury_acts(tmp_path: Path) -> None:
    # A narrow band so a few percent of price move makes the treasury transfer during the window.
    tight = TreasuryConfig(target_ratio="0.5", low_ratio="0.49", high_ratio="0.51", min_transfer="1")
    base = BacktestParams(treasury=tight)
    gated = run_window(tmp_path / "gated", with_options(base, collateral_gate=True))
    full = run_window(tmp_path / "full", with_options(base, collateral_gate=False))
    facts = assert_same_run(gated, full)
    assert facts["fills"], "the window must trade for the comparison to mean anything"
    assert len(facts["transfers"]) > len({f[0] for f in facts["fills"]}), "the treasury must act between trades"
