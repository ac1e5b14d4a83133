"""Hand-made data files in the history layout (bot.sim.history), for small backtests whose result is known by hand."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

HOUR_MS = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def write_klines(root: Path, kind: str, symbol: str, rows: Sequence[tuple[int, float]]) -> None:
    """Flat candles (open = high = low = close) at the given (hour index, price); missing hours are gaps."""
    path = root / "klines" / f"binance_{kind}_{symbol}_1h.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "ts_ms,open,high,low,close" + ("" if kind == "mark" else ",volume")
    lines = [header]
    for h, p in rows:
        vol = "" if kind == "mark" else ",1000"
        lines.append(f"{T0 + h * HOUR_MS},{p},{p},{p},{p}{vol}")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def write_funding(root: Path, symbol: str, rows: Sequence[tuple[int, str, int | None]]) -> None:
    """Settlements at (hour index, rate text, interval hours or None for blank)."""
    path = root / "funding" / f"binance_{symbol}.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["ts_ms,symbol,funding_rate,mark_price,interval_hours"]
    for h, rate, iv in rows:
        lines.append(f"{T0 + h * HOUR_MS},{symbol},{rate},,{'' if iv is None else iv}")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def flat_symbol(
    root: Path,
    symbol: str,
    hours: int,
    spot: float,
    perp: float,
    funding: Sequence[tuple[int, str, int | None]],
    mark: bool = True,
    gap: range = range(0),
) -> None:
    write_klines(root, "spot", symbol, [(h, spot) for h in range(hours) if h not in gap])
    write_klines(root, "perp", symbol, [(h, perp) for h in range(hours) if h not in gap])
    if mark:
        write_klines(root, "mark", symbol, [(h, perp) for h in range(hours)])
    write_funding(root, symbol, funding)
