import gzip
from pathlib import Path

from bot.backtest.data import load_dataset, load_minute_windows
from bot.backtest.minute import MinuteOverlay
from bot.sim.source import HistoryReplay

from .backtest_datafiles import HOUR_MS, T0, flat_symbol


def test_minute_candles_override_perp_and_mark_inside_their_window(tmp_path: Path) -> None:
    flat_symbol(tmp_path, "BTCUSDT", 6, 100.0, 100.0, [(0, "0.0001", 8)])
    path = tmp_path / "klines_1m" / "binance_perp_BTCUSDT_1m_2026-01-01.csv.gz"
    path.parent.mkdir()
    rows = ["ts_ms,open,high,low,close,volume"]
    for m in range(60):  # hour 2: a dip to 80 at minute 30
        p = 80.0 if m == 30 else 100.0
        rows.append(f"{T0 + 2 * HOUR_MS + m * 60_000},{p},{p},{p},{p},1")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    windows = load_minute_windows(tmp_path, ["BTCUSDT"])
    assert windows == {"BTCUSDT": [(T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS)]}
    src = MinuteOverlay.from_files(HistoryReplay(tmp_path, ["BTCUSDT"]), tmp_path, windows)
    t = T0 + 2 * HOUR_MS + 30 * 60_000
    assert src.price("perp", "BTCUSDT", t) == 80.0
    assert src.price("mark", "BTCUSDT", t) == 80.0
    assert src.price("spot", "BTCUSDT", t) == 100.0  # no 1m spot data: the hourly replay answers
    assert src.price("perp", "BTCUSDT", T0 + 4 * HOUR_MS) == 100.0
    assert src.price_range("perp", "BTCUSDT", T0 + 2 * HOUR_MS, t + 60_000)[0] == 80.0
    # a run that does not reach the window neither loads nor reports it
    assert load_dataset(tmp_path, ["BTCUSDT"], T0, T0 + 2 * HOUR_MS).minute_windows == {}
    assert load_dataset(tmp_path, ["BTCUSDT"], T0, T0 + 6 * HOUR_MS).minute_windows == windows
