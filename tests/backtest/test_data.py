from pathlib import Path

import numpy as np
import pytest

from bot.backtest.data import DataError, load_dataset

from .backtest_datafiles import HOUR_MS, T0, flat_symbol


def test_gaps_are_reported_not_filled(tmp_path: Path) -> None:
    flat_symbol(tmp_path, "BTCUSDT", 24, 100.0, 100.0, [(0, "0.0001", 8), (8, "0.0001", 8)], gap=range(10, 13))
    ds = load_dataset(tmp_path)
    s = ds.series["BTCUSDT"]
    gaps = [(g.start_ms, g.end_ms, g.legs) for g in s.gaps]
    assert gaps == [(T0 + 10 * HOUR_MS, T0 + 13 * HOUR_MS, ("spot", "perp"))]
    assert s.gap_hours == 3
    assert np.isnan(s.spot_close[10:13]).all() and not s.has_data[11]
    assert ds.data_notes()["BTCUSDT"]["gap_hours"] == 3


def test_mark_fallback_and_interval_change(tmp_path: Path) -> None:
    funding = [(0, "0.0001", 8), (8, "0.0002", 8), (12, "0.0003", 4), (16, "-0.0001", 4)]
    flat_symbol(tmp_path, "SOLUSDT", 20, 50.0, 50.1, funding, mark=False)
    ds = load_dataset(tmp_path, ["SOL/USDT"])
    s = ds.series["SOLUSDT"]
    assert s.mark_file_missing and s.mark_fallback_hours == 20
    assert np.array_equal(s.mark_close, s.perp_close)
    assert [(c.old_hours, c.new_hours) for c in s.interval_changes] == [(8, 4)]


def test_unknown_symbol_is_a_clear_error(tmp_path: Path) -> None:
    flat_symbol(tmp_path, "BTCUSDT", 4, 1.0, 1.0, [(0, "0", 8)])
    with pytest.raises(DataError, match="ETHUSDT"):
        load_dataset(tmp_path, ["ETH/USDT"])


def test_window_without_data_names_the_range_instead_of_failing_later(tmp_path: Path) -> None:
    """A --start/--end outside the data was a ValueError deep in the simulator; now it says which
    range the chosen symbols cover."""
    flat_symbol(tmp_path, "BTCUSDT", 4, 1.0, 1.0, [(0, "0", 8)])
    with pytest.raises(DataError, match=r"no hour from .* they have data from .*: choose --start/--end"):
        load_dataset(tmp_path, ["BTC/USDT"], T0 + 100 * HOUR_MS, T0 + 200 * HOUR_MS)
    partly_inside = load_dataset(tmp_path, ["BTC/USDT"], T0 + 2 * HOUR_MS, T0 + 200 * HOUR_MS)
    assert partly_inside.series["BTCUSDT"].first_ms == T0 + 2 * HOUR_MS
