"""A strategy of one's own that publishes no quiet-hours bound (strategies/base.py, PublishesQuietHours):
the backtest evaluates it at every scan and gets exactly the run of the same rules with a bound, only
without the skipped scans."""

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestParams
from bot.backtest.result import BacktestResult
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.sim.history import bundled_data_dir
from strategies.base import PublishesQuietHours, Snapshot, Strategy, Target
from strategies.baselines import AlwaysOnBTC
from strategies.params import CarryParams

from .equivalence import WINDOW_START, assert_same_run, with_options

DAYS = 6
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


class OwnStrategy:
    """Hold BTC at its cap, whatever funding does (``AlwaysOnBTC``'s decisions), and nothing more: no bound."""

    name = "always_on_btc"

    def __init__(self, params: CarryParams) -> None:
        self._rules = AlwaysOnBTC(params)

    def evaluate(self, snapshot: Snapshot) -> list[Target]:
        return self._rules.evaluate(snapshot)


def _run(out: Path, strategy: Strategy | None) -> BacktestResult:
    end = WINDOW_START + DAYS * 86_400_000
    ds = load_dataset(bundled_data_dir(), SYMBOLS, WINDOW_START, end)
    params = with_options(BacktestParams(), fast_forward=True)
    spec = BacktestSpec(bundled_data_dir(), SYMBOLS, WINDOW_START, end, Decimal(100000), "always-on-btc", params, out)
    return asyncio.run(run_backtest(spec, ds, strategy=strategy))


@pytest.mark.slow
def test_a_strategy_without_a_bound_runs_every_scan_and_trades_the_same(tmp_path: Path) -> None:
    own = OwnStrategy(CarryParams())
    assert not isinstance(own, PublishesQuietHours) and isinstance(AlwaysOnBTC(), PublishesQuietHours)
    plain = _run(tmp_path / "own", own)
    bounded = _run(tmp_path / "bounded", None)
    same = assert_same_run(plain, bounded, rel=1e-9)  # jumped rows are float sums of the same prices
    assert same["fills"] and same["funding"], "the window must trade and earn funding"
    assert plain.stats.scans == plain.stats.scan_hours, "without a bound every scan runs"
    assert bounded.stats.fast_forwarded > 24 * DAYS // 2, "with one most hours are jumped"
    assert plain.summary.net_pnl == pytest.approx(bounded.summary.net_pnl, abs=0.005)
