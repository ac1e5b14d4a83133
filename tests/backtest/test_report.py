import json
from pathlib import Path

import numpy as np
import pytest

from bot.backtest.report import data_warnings, write_report
from bot.backtest.result import BacktestResult, RunStats, Summary, SymbolRow, Timeline, max_drawdown


def _result() -> BacktestResult:
    ts = 1_767_225_600_000 + np.arange(5, dtype=np.int64) * 3_600_000
    tl = Timeline.empty(ts, ["BTC/USDT"], 1000.0)
    tl.equity[:] = [1000.0, 1010.0, 990.0, 1005.0, 1020.0]
    tl.funding_cum[:] = [0, 5, 5, 10, 10]
    tl.funding_by_symbol["BTC/USDT"] = tl.funding_cum.copy()
    tl.collateral_ratio[:] = [np.nan, 0.5, 0.45, 0.5, 0.52]
    summary = Summary(
        "funding_carry",
        1000.0,
        int(ts[0]),
        int(ts[-1]) + 3_600_000,
        5,
        1020.0,
        20.0,
        35.04,
        10.0,
        1.0,
        11.0,
        0.3,
        0.0198,
        20.0,
        0.45,
        0,
        1,
        500.0,
        2,
        0.8,
    )
    notes = {
        "BTCUSDT": {
            "first_ms": int(ts[0]),
            "last_ms": int(ts[-1]),
            "gap_hours": 2,
            "gaps": [{"start_ms": int(ts[1]), "end_ms": int(ts[3]), "legs": ["spot"]}],
            "mark_fallback_hours": 5,
            "mark_file_missing": True,
            "interval_changes": [{"ts_ms": int(ts[2]), "old_hours": 8, "new_hours": 4}],
            "minute_windows": [],
        }
    }
    rows = [SymbolRow("BTC/USDT", 10.0, 1.0, 0.3, 2, 4, 2, 2, 5, 1)]
    return BacktestResult(summary, rows, tl, notes, RunStats(5, 5, 0, 0, 0.01), "sqlite+aiosqlite:///x.db")


@pytest.mark.slow
def test_report_files_and_self_contained_html(tmp_path: Path) -> None:
    result = _result()
    result.baselines["always_on_btc"] = result.summary
    paths = write_report(result, tmp_path)
    for key in (
        "summary",
        "symbols",
        "equity",
        "funding",
        "funding_rates",
        "collateral",
        "html",
        "round_trips",
        "monthly",
    ):
        assert paths[key].exists() and paths[key].stat().st_size > 0
    assert paths["equity"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") == 4 and "always_on_btc" in page
    data = json.loads(paths["summary"].read_text())
    assert data["summary"]["net_pnl"] == 20.0 and data["symbols"][0]["gap_hours"] == 2


def test_data_warnings_name_gaps_fallback_and_interval_changes() -> None:
    text = " ".join(data_warnings(_result()))
    assert "2 gap hours not traded" in text
    assert "perp close stands in for the mark price for 5 hours" in text
    assert "8h -> 4h" in text


def test_max_drawdown_from_running_peak() -> None:
    frac, usdt = max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 125.0]), 100.0)
    assert usdt == 30.0 and abs(frac - 0.25) < 1e-12


def test_max_drawdown_counts_a_loss_in_the_first_hour() -> None:
    """A two-hour run that lost 60 in its first hour (entry costs, a price move) had a drawdown of 0."""
    frac, usdt = max_drawdown(np.array([9940.0, 9945.0]), 10000.0)
    assert usdt == 60.0 and abs(frac - 0.006) < 1e-12


def test_pnl_components_add_up_to_net_pnl_from_the_capital() -> None:
    """The equity chart's lines: funding - fees + price/basis = equity - capital at every hour (the
    price/basis line started from the first hour's equity, after that hour's entry costs)."""
    tl = _result().timeline
    tl.fees_cum[:] = [3.0, 3.0, 3.0, 4.0, 4.0]
    np.testing.assert_allclose(tl.funding_cum - tl.fees_cum + tl.basis_cum, tl.equity - 1000.0)
    assert tl.basis_cum[0] == 3.0  # equity 1000 after paying 3 of fees: price/basis made those 3 back


def test_a_window_wider_than_the_data_is_reported() -> None:
    """--start/--end beyond a symbol's data: the APR is over the whole window, so the report says where
    the data stops (it said nothing, and time in market looked complete)."""
    result = _result()
    note = result.data_notes["BTCUSDT"]
    note["first_ms"] = result.summary.start_ms + 3_600_000
    note["last_ms"] = result.summary.end_ms - 3 * 3_600_000
    lines = data_warnings(result)
    assert "BTCUSDT: data starts 2026-01-01 01:00; not traded before." in lines
    assert "BTCUSDT: data ends 2026-01-01 02:00; not traded after (pairs closed before)." in lines


@pytest.mark.slow
def test_predictor_tracking_is_measured_on_the_runs_data_and_reported(tmp_path: Path) -> None:
    from bot.backtest.data import load_dataset
    from bot.backtest.predictor import predictor_tracking
    from bot.sim.history import bundled_data_dir
    from bot.sim.source import HistoryReplay

    start, end = 1_740_787_200_000, 1_743_465_600_000  # March 2025
    ds = load_dataset(bundled_data_dir(), ["BTCUSDT", "SOLUSDT"], start, end)
    source = HistoryReplay(bundled_data_dir(), ["BTCUSDT", "SOLUSDT"], start, end)
    tracking = predictor_tracking(source, ds)
    assert tracking["all"]["settlements"] == 2 * 93  # 31 days x 3 settlements, both symbols
    assert 0 < tracking["all"]["mae"] < 0.001 and 0.3 < tracking["all"]["corr"] < 1
    result = _result()
    result.predictor = tracking
    page = write_report(result, tmp_path)["html"].read_text()
    assert "Predicted funding rate against the settled one" in page and "SOL/USDT: 93 settlements" in page
    assert json.loads((tmp_path / "summary.json").read_text())["predictor"]["symbols"]["BTC/USDT"]["mae"] > 0
