"""How well the simulator's predicted funding rate tracked the settled one on a run's data.

The predicted rate (bot/sim/premium.py) is built from the replayed prices only, so it is an estimate;
the strategy trades on it. Measured at the last quote before each settlement in the window (the hour
that settles, i.e. what ``premiumIndex`` showed just before the instant): mean absolute error and
correlation per symbol and over all settlements, so a reader knows how much the forecast could see.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bot.backtest.data import Dataset


def predictor_tracking(source: Any, ds: Dataset) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {}
    all_pred: list[np.ndarray] = []
    all_rate: list[np.ndarray] = []
    for sid, s in sorted(ds.series.items()):
        ts = np.asarray(s.funding_ts, dtype=np.int64)
        keep = (ts > ds.start_ms) & (ts <= ds.end_ms)
        if not keep.any():
            continue
        ts, rate = ts[keep], np.asarray(s.funding_rate, dtype=np.float64)[keep]
        pred = source.predicted_rates_at(sid, ts - 1)
        ok = ~np.isnan(pred) & ~np.isnan(rate)
        if not ok.any():
            continue
        per[s.unified] = _stats(pred[ok], rate[ok])
        all_pred.append(pred[ok])
        all_rate.append(rate[ok])
    total = _stats(np.concatenate(all_pred), np.concatenate(all_rate)) if all_pred else None
    return {
        "measured": "predicted rate quoted just before each settlement vs the settled rate",
        "all": total,
        "symbols": per,
    }


def _stats(pred: np.ndarray, rate: np.ndarray) -> dict[str, Any]:
    corr = float(np.corrcoef(pred, rate)[0, 1]) if len(pred) > 1 and pred.std() > 0 and rate.std() > 0 else None
    return {
        "settlements": len(pred),
        "mae": float(np.abs(pred - rate).mean()),
        "corr": corr,
        "mean_settled": float(rate.mean()),
        "mean_predicted": float(pred.mean()),
    }


def tracking_lines(tracking: dict[str, Any] | None) -> list[str]:
    """One sentence per symbol and one overall, for the text and HTML reports."""
    if not tracking or not tracking.get("all"):
        return []

    def line(name: str, st: dict[str, Any]) -> str:
        corr = "n/a" if st["corr"] is None else f"{st['corr']:.3f}"
        return (
            f"{name}: {st['settlements']} settlements, mean absolute error {st['mae'] * 100:.4f}% per "
            f"settlement, correlation {corr}"
        )

    out = [line("all symbols", tracking["all"])]
    out += [line(sym, st) for sym, st in tracking["symbols"].items()]
    return out
