"""The carry's quiet-hours bound's break-even floor (strategies/carry_quiet.py) against the strategy's own Decimal
economics, on real bundled data through the real snapshot builder and simulator: below the floor no size
breaks even in time (sound), and the floor sits close to the real entry bound (it does its job)."""

import asyncio
from decimal import Decimal, localcontext
from pathlib import Path

import pytest

from bot.backtest.core import build_core
from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestParams
from bot.backtest.runner import BacktestSpec, market_view
from bot.sim.history import bundled_data_dir
from strategies.analysis import DECIMAL_CONTEXT, analyse
from strategies.base import Limits
from strategies.carry_quiet import CarryQuiet
from strategies.economics import break_even_limit_hours
from strategies.params import CarryParams

pytestmark = pytest.mark.slow  # every test here is over ~2 s

SYMBOLS = ["BTCUSDT", "DOGEUSDT", "LTCUSDT", "ADAUSDT", "XRPUSDT"]


async def _ratios(tmp_path: Path, params: CarryParams) -> list[float]:
    """Per sampled (hour, symbol, size): floor / the forecast APR at which that size just breaks even."""
    ds = load_dataset(bundled_data_dir(), SYMBOLS, None, None)
    spec = BacktestSpec(
        bundled_data_dir(), SYMBOLS, ds.start_ms, ds.end_ms, Decimal(100000), "carry", BacktestParams(strategy=params)
    )
    core = await build_core(spec, ds, tmp_path / "ledger.db")
    _, view = market_view(spec, ds, core, {})
    quiet = CarryQuiet(params, view)
    limit = break_even_limit_hours(params)
    await core.builder.load_markets()
    ratios: list[float] = []
    try:
        for i in range(0, len(ds.grid), 53):
            t = int(ds.grid[i])
            core.clock.set(t)
            core.exchange.step(t)
            snapshot, _ = await core.builder.build(t, (), Decimal(100000), Limits())
            for market in snapshot.markets:
                with localcontext(DECIMAL_CONTEXT):
                    a = analyse(market, snapshot, params)
                    if a.forecast.apr <= 0:
                        continue
                    cap = a.filters.round(a.cap_qty)
                    for qty in {a.filters.min_qty(), cap, a.filters.round(cap * 3)}:
                        econ = a.economics(qty)
                        if qty <= 0 or econ.break_even_hours is None:
                            continue
                        # break-even scales as 1/apr: the apr at which this size would just pass the limit
                        needed = a.forecast.apr * econ.break_even_hours / limit
                        ratios.append(quiet.entry_floor[market.symbol.replace("/", "")][i] / float(needed))
    finally:
        await core.close()
    return ratios


@pytest.mark.parametrize("fee_kind,basis_bps", [("taker", 5), ("maker", 0)])
def test_break_even_floor_is_below_every_sizes_entry_bound_and_close_to_it(
    tmp_path: Path, fee_kind: str, basis_bps: int
) -> None:
    params = CarryParams(fee_kind=fee_kind, basis_cost_bps=basis_bps)
    ratios = asyncio.run(_ratios(tmp_path, params))
    assert len(ratios) > 500
    assert max(ratios) < 1, max(ratios)  # sound: below the floor, no size breaks even within the limit
    close = sorted(ratios)[len(ratios) // 2]
    assert close > 0.9, close  # useful: the typical floor is within 10% of the real bound
