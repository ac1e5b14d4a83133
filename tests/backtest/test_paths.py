"""The float forecast the fast-forward certificates read (bot/backtest/paths.py) against the strategy's own
Decimal forecast, on real bundled data through the real snapshot builder and simulator."""

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from bot.backtest.core import build_core
from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestParams
from bot.backtest.paths import build_paths
from bot.backtest.quiet import APR_MARGIN
from bot.backtest.runner import BacktestSpec
from bot.sim.history import bundled_data_dir
from strategies.base import Limits
from strategies.forecast import forecast_funding

SYMBOLS = ["BTCUSDT", "DOGEUSDT", "XRPUSDT"]


async def _compare(tmp_path: Path) -> tuple[int, float, int]:
    ds = load_dataset(bundled_data_dir(), SYMBOLS, None, None)
    spec = BacktestSpec(bundled_data_dir(), SYMBOLS, ds.start_ms, ds.end_ms, Decimal(100000), "carry", BacktestParams())
    core = await build_core(spec, ds, tmp_path / "ledger.db")
    params = spec.params.strategy
    paths = build_paths(core.source, SYMBOLS, ds.grid, params)
    await core.builder.load_markets()
    compared, worst, steady_hours = 0, 0.0, 0
    try:
        # the first days (history still short) densely, then every 97 hours to the end
        for i in [*range(0, 300, 5), *range(300, len(ds.grid), 97)]:
            t = int(ds.grid[i])
            core.clock.set(t)
            core.exchange.step(t)
            snapshot, _ = await core.builder.build(t, (), Decimal(100000), Limits())
            for market in snapshot.markets:
                path = paths[market.symbol.replace("/", "")]
                if not path.steady[i]:
                    continue
                steady_hours += 1
                exact = forecast_funding(market, t, params).apr
                worst = max(worst, abs(float(exact) - path.apr[i]))
                compared += 1
    finally:
        await core.close()
    return compared, worst, steady_hours


@pytest.mark.slow
def test_float_forecast_matches_the_strategy_far_inside_the_certificate_margin(tmp_path: Path) -> None:
    compared, worst, _ = asyncio.run(_compare(tmp_path))
    assert compared > 300
    assert worst < APR_MARGIN / 10, worst  # measured: about 2.8e-6 APR (the predicted rate's quantum)


def test_forecast_inputs_name_identical_windows_only() -> None:
    from bot.backtest.paths import forecast_inputs

    grid = np.arange(0, 40) * 3_600_000 * 8 + 1
    ts = np.arange(0, 41, dtype=np.int64) * 3_600_000 * 8
    same = np.full(41, 0.0001)
    other = same.copy()
    other[20] = 0.0002
    pred = np.full(40, 0.0001)
    keys: dict[bytes, int] = {}
    a, b = forecast_inputs(ts, same, pred, grid, keys), forecast_inputs(ts, same.copy(), pred.copy(), grid, keys)
    c = forecast_inputs(ts, other, pred, grid, keys)
    assert (a == b).all() and (a >= 0).all()
    assert (a[:19] == c[:19]).all()  # windows that end before the change read the same settlements
    assert (a[19:] != c[19:]).all()  # every window that reads settlement 20 differs
    moved = pred.copy()
    moved[5] = 0.00011
    d = forecast_inputs(ts, same, moved, grid, keys)
    assert d[5] != a[5] and (np.delete(d, 5) == np.delete(a, 5)).all()  # the predicted rate is an input too
