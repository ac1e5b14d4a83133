"""Fast-forward (bot/backtest/fastforward.py) on and off, on real bundled data: the same fills, funding,
transfers, pairs and snapshots, the same equity path (to float rounding), and the jumps really happen."""

import asyncio
import math
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestParams
from bot.backtest.result import BacktestResult
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.config import TreasuryConfig
from strategies.params import CarryParams

from .backtest_datafiles import HOUR_MS, T0, write_funding, write_klines
from .equivalence import assert_same_run, run_window, with_options

REL = 1e-9  # fast-forwarded timeline rows are float sums of the same prices: far below a cent


def _pair(
    tmp_path: Path,
    base: BacktestParams,
    days: int,
    symbols: list[str] | None = None,
    start_day: int = 0,
    **opts: object,
) -> tuple[BacktestResult, BacktestResult]:
    kw = {"days": days, "symbols": symbols, "start_day": start_day}
    fast = run_window(tmp_path / "ff", with_options(base, fast_forward=True, **opts), **kw)  # type: ignore[arg-type]
    slow = run_window(tmp_path / "hourly", with_options(base, fast_forward=False, **opts), **kw)  # type: ignore[arg-type]
    return fast, slow


@pytest.mark.slow
def test_fast_forward_changes_nothing_while_pairs_are_held(tmp_path: Path) -> None:
    fast, slow = _pair(tmp_path, BacktestParams(), days=12)
    same = assert_same_run(fast, slow, rel=REL)
    assert same["fills"] and same["funding"], "the window must trade and earn funding"
    assert fast.stats.fast_forwarded > 100 and fast.stats.stretches > 1
    assert slow.stats.fast_forwarded == 0
    assert fast.summary.net_pnl == pytest.approx(slow.summary.net_pnl, abs=0.005)


@pytest.mark.slow
def test_fast_forward_stops_where_the_treasury_acts(tmp_path: Path) -> None:
    tight = TreasuryConfig(target_ratio="0.5", low_ratio="0.46", high_ratio="0.54", min_transfer="1")
    fast, slow = _pair(tmp_path, BacktestParams(treasury=tight), days=10)
    same = assert_same_run(fast, slow, rel=REL)
    assert len(same["transfers"]) > len({f[0] for f in same["fills"]}), "the treasury must act between trades"
    assert fast.stats.fast_forwarded > 0


@pytest.mark.slow
def test_fast_forward_with_a_slower_scan_cadence(tmp_path: Path) -> None:
    fast, slow = _pair(tmp_path, BacktestParams(), days=12, eval_every_hours=8)
    assert_same_run(fast, slow, rel=REL)
    assert fast.stats.fast_forwarded > 100


@pytest.mark.slow
def test_fast_forward_across_gaps_and_mark_fallbacks(tmp_path: Path) -> None:
    # On day 414 of the bundled data BNB's candles end and DOGE's mark candles stop for 46 days (the
    # simulator then margins at its last known mark): the run must still match hour for hour.
    fast, slow = _pair(tmp_path, BacktestParams(), days=14, symbols=["BNBUSDT", "DOGEUSDT", "BTCUSDT"], start_day=406)
    assert_same_run(fast, slow, rel=REL)
    assert fast.stats.fast_forwarded > 0


@pytest.mark.slow
def test_fast_forward_with_every_slot_held_and_switches(tmp_path: Path) -> None:
    # Four slots over five symbols: the book is full from the first hour, so every certified hour also
    # proves no candidate can switch in; LTC switches in. The defaults' forecast, anchored on the baseline
    # rate, switches nothing in this window: a forecast of the symbols' own rates (a short half-life) and
    # switches paid back within the whole horizon do.
    symbols = ["BTCUSDT", "ETHUSDT", "ADAUSDT", "XRPUSDT", "LTCUSDT"]
    params = BacktestParams(
        strategy=CarryParams(
            max_break_even_fraction=Decimal(1),
            baseline_weight=Decimal(0),
            predicted_weight=Decimal("0.5"),
            history_half_life_hours=Decimal(24),
            max_per_symbol_fraction=Decimal("0.25"),
            resize_tolerance_fraction=Decimal("0.2"),
        )
    )
    fast, slow = _pair(tmp_path, params, days=12, symbols=symbols)
    same = assert_same_run(fast, slow, rel=REL)
    # with every slot held from the first hour, the fifth symbol opens only as a switch (enter_switch)
    assert [e for e in same["events"] if "opening: LTC/USDT 0/0" in e[2]], "the window must switch"
    assert fast.stats.fast_forwarded > 100


@pytest.mark.parametrize("strategy", ["always-on", "always-on-btc", "top-n"])
@pytest.mark.slow
def test_baselines_fast_forward_with_their_own_certificates(tmp_path: Path, strategy: str) -> None:
    kw = {"days": 12, "strategy": strategy, "symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"]}
    fast = run_window(tmp_path / "ff", with_options(fast_forward=True), **kw)  # type: ignore[arg-type]
    slow = run_window(tmp_path / "hourly", with_options(fast_forward=False), **kw)  # type: ignore[arg-type]
    same = assert_same_run(fast, slow, rel=REL)
    assert same["fills"]
    assert fast.stats.fast_forwarded > 24


@pytest.mark.slow
def test_flat_hours_value_the_fee_dust_at_each_hour(tmp_path: Path) -> None:
    # Top-N trades, then holds nothing for hours 80-87 while BTC/ETH/SOL dust (spot fees paid in the coin)
    # stays in the spot wallet. Those flat hours must show the dust at each hour's price, whether they
    # run hour by hour, in the idle skip, or fast-forwarded (found by a randomized comparison).
    strategy = CarryParams(
        max_symbols=4,
        resize_tolerance_fraction=Decimal("0.3"),
        entry_threshold_apr=Decimal("0.15"),
        max_total_fraction=Decimal("0.5"),
        hold_horizon_hours=Decimal(168),
    )
    tre = TreasuryConfig(target_ratio="0.5", low_ratio="0.35", high_ratio="0.7", min_transfer="1")
    base = BacktestParams(strategy=strategy, treasury=tre)
    kw = {"days": 5, "strategy": "top-n", "symbols": ["ETHUSDT", "SOLUSDT", "BTCUSDT"], "start_day": 311}
    runs = [
        run_window(tmp_path / name, with_options(base, eval_every_hours=8, **opts), **kw)  # type: ignore[arg-type]
        for name, opts in (
            ("hourly", {"fast_forward": False, "skip_idle_hours": False}),
            ("idle-skip", {"fast_forward": False, "skip_idle_hours": True}),
            ("ff", {"fast_forward": True}),
        )
    ]
    hourly = runs[0]
    assert (hourly.timeline.notional[80:88] == 0).all(), "the window must have flat hours"
    for other in runs[1:]:
        assert_same_run(other, hourly, rel=REL)


def _hand_made_pair(
    root: Path, hours: int, mark_from: int | None, perp_gap: range = range(0)
) -> tuple[BacktestResult, BacktestResult]:
    """always-on-btc on hand-made BTCUSDT candles, fast-forward on and off."""
    price = [100.0 + 3 * math.sin(h / 17) for h in range(hours)]
    write_klines(root, "spot", "BTCUSDT", [(h, price[h]) for h in range(hours)])
    write_klines(root, "perp", "BTCUSDT", [(h, price[h] * 1.0002) for h in range(hours) if h not in perp_gap])
    if mark_from is not None:
        write_klines(root, "mark", "BTCUSDT", [(h, price[h] * 1.0001) for h in range(mark_from, hours)])
    write_funding(root, "BTCUSDT", [(h, "0.0001", 8) for h in range(0, hours, 8)])
    runs = []
    for ff in (True, False):
        ds = load_dataset(root, None, T0, T0 + hours * HOUR_MS)
        spec = BacktestSpec(
            root,
            None,
            T0,
            T0 + hours * HOUR_MS,
            Decimal(10000),
            "always-on-btc",
            with_options(BacktestParams(), fast_forward=ff),
            out_dir=root / f"out{ff}",
        )
        runs.append(asyncio.run(run_backtest(spec, ds)))
    return runs[0], runs[1]


@pytest.mark.slow
def test_fast_forward_before_the_first_mark_candle(tmp_path: Path) -> None:
    """A perp whose mark history starts later than its trades (BTCUSDT and BNBUSDT in the shared data):
    the simulator margins and pays funding at the perp price until then. The certificates valued the
    position at NaN there and ran every hour for real; now they jump, with the same ledger."""
    hours = 240
    fast, slow = _hand_made_pair(tmp_path, hours, mark_from=120)
    same = assert_same_run(fast, slow, rel=REL)
    assert same["fills"] and len(same["funding"]) == hours // 8 - 1
    assert fast.stats.fast_forwarded > hours - 20, "the hours before the mark history must jump too"


@pytest.mark.slow
def test_a_settlement_without_a_price_ends_the_stretch_only_there(tmp_path: Path) -> None:
    """No mark file and a perp candle missing at the settlement of hour 160 (SOLUSDT in 2020 misses the
    first candle of every month): the simulator pays that one at its last known perp price, which the
    certificates do not know, so the hour runs for real; the hours before it used to run for real too."""
    hours = 240
    fast, slow = _hand_made_pair(tmp_path, hours, mark_from=None, perp_gap=range(160, 161))
    same = assert_same_run(fast, slow, rel=REL)
    assert same["fills"] and same["funding"]
    assert fast.stats.fast_forwarded > 200, "only the hours around the unknown settlement run for real"
