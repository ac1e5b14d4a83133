"""Binance's funding rule and the causal predicted rate (bot/sim/premium.py)."""

from __future__ import annotations

import gzip
import itertools
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.domain import HOUR_MS
from bot.sim.history import bundled_data_dir
from bot.sim.premium import FORMULA_CHANGE_MS, FundingRule, funding_rate, predicted_rates
from bot.sim.source import HistoryReplay

RULE = FundingRule(interest_8h=0.0001, cap=0.003, floor=-0.003)
BEFORE, AFTER = FORMULA_CHANGE_MS - 8 * HOUR_MS, FORMULA_CHANGE_MS + 8 * HOUR_MS


@pytest.mark.parametrize(
    ("premium", "hours", "settle", "expected"),
    [
        (0.0003, 8, BEFORE, 0.0001),  # |I - P| <= 0.05%: the interest rate
        (0.0008, 8, BEFORE, 0.0003),  # P + clamp(0.01% - 0.08%) = 0.08% - 0.05%
        (-0.0008, 8, BEFORE, -0.0003),  # P + 0.05%
        (0.0008, 4, BEFORE, 0.0003),  # old rule: I scaled to 4 h (0.005%), clamp not scaled
        (0.0, 2, BEFORE, 0.000025),  # 2 h interest component: 0.0025% (2h SOLUSDT 2022-23)
        (0.0008, 4, AFTER, 0.00015),  # new rule: [0.08% - 0.05%] * 4/8
        (0.0, 4, AFTER, 0.00005),  # 0.01% / 2 (4h AXSUSDT 2026 quiet settlements)
        (0.02, 8, BEFORE, 0.003),  # capped
        (-0.02, 8, AFTER, -0.003),  # floored
    ],
)
def test_funding_rate_follows_binance_formula(premium, hours, settle, expected):
    assert float(funding_rate(premium, hours, settle, RULE)) == pytest.approx(expected, abs=1e-12)


def test_no_interest_component_for_bnb_style_rule():
    rule = FundingRule(interest_8h=0.0, cap=0.003, floor=-0.003)
    assert float(funding_rate(0.0002, 8, BEFORE, rule)) == 0.0


def test_average_premium_weights_later_samples_more_and_resets_at_settlement():
    t0 = BEFORE - 16 * HOUR_MS
    spot = np.full(16, 100.0)
    # premiums 0.1%, 0.2%, 0.3% in the first three hours of the interval, then a gap
    perp = np.full(16, np.nan)
    perp[0:3] = [100.1, 100.2, 100.3]
    perp[8:10] = [100.0, 99.9]  # next interval: 0, -0.1%
    settle_ts = np.array([t0, t0 + 8 * HOUR_MS, t0 + 16 * HOUR_MS])
    rates = predicted_rates(t0, perp, spot, settle_ts, np.array([8, 8, 8]), RULE)
    p2 = (1 * 0.001 + 2 * 0.002 + 3 * 0.003) / 6  # weights 1, 2, 3
    assert rates[0] == pytest.approx(0.0005, abs=1e-12)  # P = 0.1%: 0.1% + clamp(0.01% - 0.1%) = 0.05%
    assert rates[2] == pytest.approx(round(p2 + max(-0.0005, min(0.0005, 0.0001 - p2)), 8), abs=1e-12)
    assert rates[7] == rates[2]  # gap hours add no sample
    assert rates[8] == pytest.approx(0.0001, abs=1e-12)  # new interval: its own first sample (premium 0)
    p9 = (1 * 0.0 + 2 * -0.001) / 3
    assert rates[9] == pytest.approx(round(p9 + 0.0005, 8), abs=1e-12)


def _window_copy(src_dir: Path, dst: Path, symbol: str, start: int, end: int, t: int, perturb: bool) -> None:
    """Copy ``symbol``'s bundled files cut to [start, end); with ``perturb``, change every value that
    lies after ``t``: the later candles, the high/low/close of the candle holding ``t``, later rates."""
    for sub, name in [("funding", f"binance_{symbol}.csv.gz")] + [
        ("klines", f"binance_{k}_{symbol}_1h.csv.gz") for k in ("spot", "perp", "mark")
    ]:
        df = pd.read_csv(src_dir / sub / name)
        df = df[(df.ts_ms >= start) & (df.ts_ms < end)].copy()
        if perturb:
            if sub == "funding":
                later = df.ts_ms > t
                df.loc[later, "funding_rate"] = df.loc[later, "funding_rate"] * -3 + 0.0042
            else:
                later = df.ts_ms > t
                factor = 1.07 if "spot" in name else 1.075  # the premium moves too
                for col in ("open", "high", "low", "close"):
                    df.loc[later, col] = df.loc[later, col] * factor
                current = df.ts_ms == (t // HOUR_MS) * HOUR_MS
                for col in ("high", "low", "close"):
                    df.loc[current, col] = df.loc[current, col] * 0.93
        (dst / sub).mkdir(parents=True, exist_ok=True)
        with gzip.open(dst / sub / name, "wt") as fh:
            df.to_csv(fh, index=False)


@pytest.mark.parametrize("offset_h", [0.0, 0.5, 3.25, 7.9])
def test_predicted_rate_is_causal(tmp_path: Path, offset_h: float):
    """Changing any data after t changes no predicted rate at or before t."""
    start, end = 1_740_787_200_000, 1_741_392_000_000  # 2025-03-01 .. 2025-03-08
    settle = start + 4 * 8 * HOUR_MS
    t = settle + int(offset_h * HOUR_MS)
    for name, perturb in (("a", False), ("b", True)):
        _window_copy(bundled_data_dir(), tmp_path / name, "BTCUSDT", start, end, t, perturb)
    a = HistoryReplay(tmp_path / "a", ["BTCUSDT"])
    b = HistoryReplay(tmp_path / "b", ["BTCUSDT"])
    assert a.settlements("BTCUSDT")[-1].rate != b.settlements("BTCUSDT")[-1].rate  # the future did change
    times = [*list(range(start, t + 1, 7 * 60000)), t]
    assert [a.predicted_rate("BTCUSDT", x) for x in times] == [b.predicted_rate("BTCUSDT", x) for x in times]
    later = t + 2 * HOUR_MS
    assert a.predicted_rate("BTCUSDT", later) != b.predicted_rate("BTCUSDT", later)  # the test can fail


def test_coming_settlement_cannot_be_recovered_from_the_quotes():
    """The old blend let next = prev + (pred - prev) / frac recover the coming rate exactly."""
    src = HistoryReplay(bundled_data_dir(), ["BTCUSDT"], 1_735_689_600_000, 1_738_368_000_000)
    rows = list(src.settlements("BTCUSDT"))
    exact = moved = 0
    for prev, nxt in itertools.pairwise(rows):
        if nxt.rate == prev.rate:
            continue  # nothing to recover
        moved += 1
        t = prev.ts_ms + HOUR_MS
        pred = src.predicted_rate("BTCUSDT", t)
        frac = Decimal(t - prev.ts_ms) / Decimal(nxt.ts_ms - prev.ts_ms)
        recovered = prev.rate + (pred - prev.rate) / frac
        exact += abs(recovered - nxt.rate) < Decimal("0.0000001")
    assert moved > 40 and exact == 0
