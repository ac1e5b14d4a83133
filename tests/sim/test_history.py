from __future__ import annotations

import gzip

import numpy as np
import pytest

from bot.domain import HOUR_MS
from bot.sim.history import bundled_data_dir, load_funding, load_klines, load_symbol, missing_hours, shared_data_dir


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write(text)


def test_gaps_stay_gaps_and_mark_falls_back_to_perp(tmp_path):
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
    rows = [t0, t0 + HOUR_MS, t0 + 4 * HOUR_MS]  # hours 2 and 3 missing
    body = "ts_ms,open,high,low,close,volume\n" + "".join(f"{t},10,11,9,10.5,1\n" for t in rows)
    _write(tmp_path / "klines/binance_perp_XUSDT_1h.csv.gz", body)
    _write(tmp_path / "klines/binance_spot_XUSDT_1h.csv.gz", body)
    _write(
        tmp_path / "funding/binance_XUSDT.csv.gz",
        "ts_ms,symbol,funding_rate,mark_price,interval_hours\n"
        f"{t0},XUSDT,0.0001,,\n{t0 + 4 * HOUR_MS},XUSDT,0.0002,,\n{t0 + 8 * HOUR_MS},XUSDT,0.00015,,4\n",
    )
    h = load_symbol(tmp_path, "XUSDT")
    assert h.mark_from_perp is True
    assert list(h.mark["close"]) == [10.5, 10.5, 10.5]
    assert len(h.perp) == 3  # nothing forward-filled
    gaps = missing_hours(h.perp, t0, t0 + 5 * HOUR_MS)
    assert list(gaps) == [t0 + 2 * HOUR_MS, t0 + 3 * HOUR_MS]
    # blank intervals derived from spacing (4 h), never assumed 8 h
    assert list(h.funding["interval_hours"]) == [4, 4, 4]
    assert list(h.funding["interval_derived"]) == [True, True, False]


def test_bundled_dataset_is_real_and_exact():
    d = bundled_data_dir()
    f = load_funding(d, "BTCUSDT")
    assert f["ts_ms"].min() >= 1_735_689_600_000
    assert (f["ts_ms"] % HOUR_MS == 0).all()
    k = load_klines(d, "spot", "BTCUSDT")
    assert len(k) > 10_000
    first = k.iloc[0]
    assert (first["open"], first["close"]) == (93576.0, 94401.14)
    for sym in ("ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT", "LTCUSDT", "ADAUSDT"):
        assert load_klines(d, "perp", sym) is not None and load_klines(d, "mark", sym) is not None


def test_bundle_rows_match_source_strings():
    src = shared_data_dir()
    if not src.exists():
        pytest.skip("shared/data not present")
    with gzip.open(bundled_data_dir() / "funding/binance_ETHUSDT.csv.gz", "rt") as f:
        bundled = f.read().splitlines()
    with gzip.open(src / "funding/binance_ETHUSDT.csv.gz", "rt") as f:
        source = set(f.read().splitlines())
    assert all(line in source for line in bundled)


def test_interval_change_is_read_from_real_data():
    src = shared_data_dir()
    if not src.exists():
        pytest.skip("shared/data not present")
    f = load_funding(src, "SOLUSDT", 1_667_952_000_000, 1_668_124_800_000)  # 2022-11-09 .. 11-11
    assert set(np.unique(f["interval_hours"])) == {8, 4, 2}


def test_parsed_files_are_cached_but_callers_get_their_own_copies() -> None:
    d = bundled_data_dir()
    first = load_klines(d, "spot", "BTCUSDT", 1_735_689_600_000, 1_735_776_000_000)
    assert first is not None and len(first) == 24
    first.loc[:, "close"] = -1.0  # a caller scribbling on its frame must not reach the next caller
    again = load_klines(d, "spot", "BTCUSDT", 1_735_689_600_000, 1_735_776_000_000)
    assert again is not None and (again["close"] > 0).all()
    f1 = load_funding(d, "BTCUSDT")
    f1.loc[:, "funding_rate"] = 0.0
    assert load_funding(d, "BTCUSDT")["funding_rate"].ne(0.0).any()
