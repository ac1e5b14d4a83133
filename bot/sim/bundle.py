"""Builds the compact dataset shipped in ``bot/data/history`` from a full history folder
(``bot.sim.history.shared_data_dir``).

Rows are filtered by ``start_ms <= ts_ms < end_ms`` with every column read as text, so the numbers in
the bundle are byte-for-byte the source's strings (no reformatting, no exponents).
Run: ``python -m bot.sim.bundle`` (uses the defaults below).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bot.sim.history import KLINE_KINDS, bundled_data_dir, funding_path, kline_path, shared_data_dir

# LINK and AVAX perp klines only start 2025-05-01 in the full history, so LTC and ADA (full spot, perp and
# mark coverage over the window) take their place.
BUNDLE_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT", "LTCUSDT", "ADAUSDT")
BUNDLE_START_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
BUNDLE_END_MS = 1_779_148_800_000  # 2026-05-19 00:00 UTC (after the last 1h kline of every symbol)


def trim_file(src: Path, dst: Path, start_ms: int, end_ms: int) -> int:
    """Copy the rows of one gzip CSV whose ts_ms is in the window; returns the row count."""
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    ts = df["ts_ms"].astype("int64")
    kept = df[(ts >= start_ms) & (ts < end_ms)]
    dst.parent.mkdir(parents=True, exist_ok=True)
    kept.to_csv(dst, index=False, compression={"method": "gzip", "mtime": 0})
    return len(kept)


def build_bundle(
    src_dir: Path,
    dst_dir: Path,
    symbols: tuple[str, ...] = BUNDLE_SYMBOLS,
    start_ms: int = BUNDLE_START_MS,
    end_ms: int = BUNDLE_END_MS,
) -> dict[str, int]:
    """Trim funding and kline files of ``symbols``; returns rows per written file (relative path)."""
    counts: dict[str, int] = {}
    for symbol in symbols:
        paths = [funding_path(src_dir, symbol)] + [kline_path(src_dir, k, symbol) for k in KLINE_KINDS]
        for src in paths:
            if not src.exists():
                continue
            rel = src.relative_to(src_dir)
            counts[str(rel)] = trim_file(src, dst_dir / rel, start_ms, end_ms)
    return counts


if __name__ == "__main__":
    for name, rows in build_bundle(shared_data_dir(), bundled_data_dir()).items():
        print(f"{name}\t{rows}")
