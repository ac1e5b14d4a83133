from __future__ import annotations

import itertools

import numpy as np
import pytest

from bot.domain import HOUR_MS
from bot.sim.history import shared_data_dir
from bot.sim.source import CandleSeries, HistoryReplay, RandomWalk

T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS


def test_path_goes_through_the_candle_extremes_in_direction_order():
    ts = np.array([T0, T0 + HOUR_MS, T0 + 3 * HOUR_MS], dtype=np.int64)
    s = CandleSeries(
        ts,
        np.array([100.0, 105.0, 90.0]),
        np.array([110.0, 106.0, 91.0]),
        np.array([95.0, 80.0, 89.0]),
        np.array([105.0, 82.0, 90.5]),
    )
    third = HOUR_MS // 3
    # up candle: open -> low -> high -> close
    assert s.price(T0) == 100.0
    assert s.price(T0 + third) == pytest.approx(95.0, rel=1e-6)
    assert s.price(T0 + 2 * third) == pytest.approx(110.0, rel=1e-6)
    # down candle: open -> high -> low -> close
    assert s.price(T0 + HOUR_MS + third) == pytest.approx(106.0, rel=1e-6)
    assert s.price(T0 + HOUR_MS + 2 * third) == pytest.approx(80.0, rel=1e-6)
    assert s.price(T0 + 2 * HOUR_MS + 5) is None  # gap hour
    assert s.price(T0 - 1) is None
    lo, hi = s.price_range(T0 + 10, T0 + 2 * HOUR_MS - 1)
    assert (lo, hi) == (pytest.approx(80.0), pytest.approx(110.0))
    # a short interval sees only the part of the path inside it
    lo, hi = s.price_range(T0, T0 + third // 2)
    assert lo == pytest.approx(97.5, rel=1e-4) and hi == 100.0
    assert [k.open_ms for k in s.klines(T0, T0 + 4 * HOUR_MS)] == list(ts)


def test_random_walk_is_seeded_and_has_per_symbol_intervals():
    a = RandomWalk(seed=3, start_ms=T0, hours=48)
    b = RandomWalk(seed=3, start_ms=T0, hours=48)
    c = RandomWalk(seed=4, start_ms=T0, hours=48)
    t = T0 + 17 * HOUR_MS + 123_456
    assert a.price("perp", "ETHUSDT", t) == b.price("perp", "ETHUSDT", t) != c.price("perp", "ETHUSDT", t)
    for sym, hours in (("BTCUSDT", 8), ("ETHUSDT", 4), ("SOLUSDT", 1)):
        rows = a.settlements(sym)
        assert {r.interval_hours for r in rows} == {hours}
        assert all(r.ts_ms % (hours * HOUR_MS) == 0 for r in rows)
    assert a.price("index", "BTCUSDT", t) == a.price("spot", "BTCUSDT", t)
    assert a.price("spot", "BTCUSDT", T0 + 48 * HOUR_MS) is None  # beyond the horizon


def test_random_walk_follows_an_interval_change():
    change = T0 + 24 * HOUR_MS - (T0 + 24 * HOUR_MS) % (8 * HOUR_MS)
    w = RandomWalk(seed=1, symbols=("BTCUSDT",), start_ms=T0, hours=72, interval_changes={"BTCUSDT": [(change, 2)]})
    ts = [r.ts_ms for r in w.settlements("BTCUSDT")]
    gaps = np.diff(ts) // HOUR_MS
    assert 8 in gaps and 2 in gaps
    assert all(g == 2 for g, t in zip(gaps, ts[1:], strict=True) if t > change + 2 * HOUR_MS)


def test_history_replay_follows_real_interval_change():
    src_dir = shared_data_dir()
    if not src_dir.exists():
        pytest.skip("shared/data not present")
    src = HistoryReplay(src_dir, ["SOLUSDT"], 1_667_952_000_000, 1_668_124_800_000)
    rows = src.settlements_between("SOLUSDT", 1_667_952_000_000, 1_668_124_800_000)
    spacing = {(b.ts_ms - a.ts_ms) // HOUR_MS for a, b in itertools.pairwise(rows)}
    assert spacing == {8, 4, 2}
    assert src.mark_from_perp["SOLUSDT"] is True  # SOL mark klines only from 2024
