"""Backtest data: the history files (``bot.sim.history``) loaded onto one hourly grid, gaps and fallbacks named.

The simulation core replays prices from ``bot.sim.history``; this module reads the same files into
aligned numpy arrays so the runner can decide cheaply (vectorised) which hours a symbol may be traded,
where its data has gaps, where the mark price falls back to the perp close, and where its funding
interval changes. Nothing is filled: a missing candle stays NaN and makes the symbol untradable there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bot.domain import HOUR_MS, MINUTE_MS, exchange_id
from bot.domain import unified_symbol as domain_unified_symbol
from bot.format import iso_utc
from bot.sim.history import DataFileError, available_symbols, kline_path, load_funding, load_klines, read_history_csv

_MINUTE_FILE = re.compile(r"binance_perp_(?P<sym>[A-Z0-9]+)_1m_(?P<date>[0-9-]+)\.csv\.gz$")


class DataError(ValueError):
    """The data folder cannot support the requested backtest; the message says what is missing."""


BAD_DATA = (DataError, DataFileError)  # what a backtest reports as one line (exit 2), never as a traceback
_MINUTE_COLUMNS = ("ts_ms", "open", "high", "low", "close")


def unified_symbol(binance_id: str) -> str:
    """'BTCUSDT' -> 'BTC/USDT' (``bot.domain.unified_symbol``; a bad id is a DataError)."""
    try:
        return domain_unified_symbol(binance_id)
    except ValueError as err:
        raise DataError(str(err)) from None


@dataclass(frozen=True)
class Gap:
    """Hours ``[start_ms, end_ms)`` inside a symbol's coverage where spot or perp candles are missing."""

    start_ms: int
    end_ms: int
    legs: tuple[str, ...]

    @property
    def hours(self) -> int:
        return (self.end_ms - self.start_ms) // HOUR_MS


@dataclass(frozen=True)
class IntervalChange:
    ts_ms: int
    old_hours: int
    new_hours: int


@dataclass
class SymbolSeries:
    """One symbol on the common grid. Prices are float (analytics only; the sim trades in Decimal)."""

    symbol: str  # Binance id, BTCUSDT
    unified: str  # BTC/USDT
    spot_close: np.ndarray
    perp_close: np.ndarray
    mark_close: np.ndarray  # perp close where the mark candle is missing
    mark_fallback: np.ndarray  # bool: mark taken from the perp close at this hour
    mark_file_missing: bool
    funding_ts: np.ndarray  # int64 settlement instants
    funding_rate: np.ndarray  # float
    funding_interval: np.ndarray  # int64 hours per settlement
    first_ms: int | None  # first hour with spot, perp and funding started (None: never tradable here)
    last_ms: int | None  # last such hour
    gaps: list[Gap] = field(default_factory=list)
    interval_changes: list[IntervalChange] = field(default_factory=list)

    @property
    def has_data(self) -> np.ndarray:
        """bool per grid hour: both legs have a candle."""
        return ~(np.isnan(self.spot_close) | np.isnan(self.perp_close))

    @property
    def gap_hours(self) -> int:
        return sum(g.hours for g in self.gaps)

    @property
    def mark_fallback_hours(self) -> int:
        return int(self.mark_fallback.sum())


@dataclass
class Dataset:
    data_dir: Path
    grid: np.ndarray  # int64 hour open times, [start, end)
    series: dict[str, SymbolSeries]  # by Binance id
    minute_windows: dict[str, list[tuple[int, int]]]  # Binance id -> [start, end) ms with 1m perp candles

    @property
    def start_ms(self) -> int:
        return int(self.grid[0])

    @property
    def end_ms(self) -> int:
        return int(self.grid[-1]) + HOUR_MS

    @property
    def symbol_hours(self) -> int:
        return len(self.grid) * len(self.series)

    def data_notes(self) -> dict[str, dict[str, object]]:
        """Per symbol: gaps, mark fallback and interval changes, JSON-ready (for the report)."""
        out: dict[str, dict[str, object]] = {}
        for sym, s in self.series.items():
            out[sym] = {
                "first_ms": s.first_ms,
                "last_ms": s.last_ms,
                "gap_hours": s.gap_hours,
                "gaps": [{"start_ms": g.start_ms, "end_ms": g.end_ms, "legs": list(g.legs)} for g in s.gaps],
                "mark_fallback_hours": s.mark_fallback_hours,
                "mark_file_missing": s.mark_file_missing,
                "interval_changes": [
                    {"ts_ms": c.ts_ms, "old_hours": c.old_hours, "new_hours": c.new_hours} for c in s.interval_changes
                ],
                "minute_windows": [list(w) for w in self.minute_windows.get(sym, [])],
            }
        return out


def _on_grid(df: pd.DataFrame | None, grid: np.ndarray) -> np.ndarray:
    out = np.full(len(grid), np.nan)
    if df is None or df.empty:
        return out
    ts = df["ts_ms"].to_numpy(np.int64)
    idx = (ts - grid[0]) // HOUR_MS
    ok = (ts % HOUR_MS == 0) & (idx >= 0) & (idx < len(grid))
    out[idx[ok]] = df["close"].to_numpy(np.float64)[ok]
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``mask`` is True."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _interval_changes(ts: np.ndarray, interval: np.ndarray) -> list[IntervalChange]:
    if len(interval) < 2:
        return []
    where = np.flatnonzero(interval[1:] != interval[:-1]) + 1
    return [IntervalChange(int(ts[i]), int(interval[i - 1]), int(interval[i])) for i in where]


def resolve_symbols(data_dir: Path, symbols: list[str] | None) -> list[str]:
    """Binance ids to load: the requested ones (checked) or every symbol with funding and perp klines."""
    known = available_symbols(data_dir)
    if not symbols:
        if not known:
            raise DataError(f"no symbol in {data_dir} has both funding/binance_<SYM>.csv.gz and perp klines")
        return known
    wanted = [exchange_id(s) for s in symbols]
    missing = [s for s in wanted if s not in known]
    if missing:
        why = "; ".join(f"{s}: no {' and no '.join(_missing_files(data_dir, s))}" for s in missing)
        raise DataError(f"{why} in {data_dir}; symbols with both: {', '.join(known)}")
    return wanted


def _missing_files(data_dir: Path, symbol: str) -> list[str]:
    """Which of a symbol's files a backtest needs are not in ``data_dir`` (funding, perp and spot klines)."""
    parts = [("funding file", Path(data_dir) / "funding" / f"binance_{symbol}.csv.gz")]
    parts += [(f"{kind} klines", kline_path(data_dir, kind, symbol)) for kind in ("perp", "spot")]
    return [name for name, path in parts if not path.exists()]


def load_minute_windows(data_dir: Path, symbols: list[str]) -> dict[str, list[tuple[int, int]]]:
    """[start, end) spans covered by ``klines_1m/binance_perp_<SYM>_1m_<date>.csv.gz`` files."""
    out: dict[str, list[tuple[int, int]]] = {}
    folder = Path(data_dir) / "klines_1m"
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("binance_perp_*_1m_*.csv.gz")):
        m = _MINUTE_FILE.search(path.name)
        if not m or m["sym"] not in symbols:
            continue
        ts = read_history_csv(path, _MINUTE_COLUMNS, ("ts_ms",))["ts_ms"].to_numpy(np.int64)
        if len(ts):
            out.setdefault(m["sym"], []).append((int(ts.min()), int(ts.max()) + MINUTE_MS))
    return out


def load_minute_closes(data_dir: Path, symbol: str, start_ms: int, end_ms: int) -> pd.DataFrame:
    """1-minute perp candles of ``symbol`` in ``[start_ms, end_ms)`` from every file that has them."""
    frames = []
    for path in sorted((Path(data_dir) / "klines_1m").glob(f"binance_perp_{symbol}_1m_*.csv.gz")):
        df = read_history_csv(path, _MINUTE_COLUMNS, _MINUTE_COLUMNS)
        df["ts_ms"] = df["ts_ms"].astype("int64")
        frames.append(df[(df["ts_ms"] >= start_ms) & (df["ts_ms"] < end_ms)])
    if not frames:
        return pd.DataFrame(columns=["ts_ms", "open", "high", "low", "close"])
    return pd.concat(frames).drop_duplicates("ts_ms").sort_values("ts_ms").reset_index(drop=True)


def load_dataset(
    data_dir: Path,
    symbols: list[str] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Dataset:
    """Load ``symbols`` (Binance ids or unified) from ``data_dir`` onto the hourly grid ``[start, end)``.

    Without ``start``/``end`` the grid spans from the first to the last hour any chosen symbol is
    tradable (spot and perp candles and a funding settlement at or before that hour).
    """
    data_dir = Path(data_dir)
    ids = resolve_symbols(data_dir, symbols)
    raw = {}
    lo, hi = None, None
    for sym in ids:
        spot = load_klines(data_dir, "spot", sym)
        perp = load_klines(data_dir, "perp", sym)
        mark = load_klines(data_dir, "mark", sym)
        funding = load_funding(data_dir, sym)
        raw[sym] = (spot, perp, mark, funding)
        if spot is None or spot.empty or perp is None or perp.empty or funding.empty:
            continue
        first = max(int(spot["ts_ms"].iloc[0]), int(perp["ts_ms"].iloc[0]), int(funding["ts_ms"].iloc[0]))
        last = min(int(spot["ts_ms"].iloc[-1]), int(perp["ts_ms"].iloc[-1]))
        if last < first:
            continue
        lo = first if lo is None else min(lo, first)
        hi = last if hi is None else max(hi, last)
    if lo is None or hi is None:
        gaps = [f"{s}: no {' and no '.join(m)}" for s in ids if (m := _missing_files(data_dir, s))]
        why = f" ({'; '.join(gaps)})" if gaps else ""
        raise DataError(f"none of {', '.join(ids)} has overlapping spot, perp and funding data in {data_dir}{why}")
    start_ms = lo if start_ms is None else start_ms
    end_ms = hi + HOUR_MS if end_ms is None else end_ms
    start_ms = -(-int(start_ms) // HOUR_MS) * HOUR_MS
    if end_ms <= start_ms:
        raise DataError(f"empty window: the end {iso_utc(end_ms)} is not after the start {iso_utc(start_ms)}")
    grid = np.arange(start_ms, end_ms, HOUR_MS, dtype=np.int64)

    series: dict[str, SymbolSeries] = {}
    for sym, (spot, perp, mark, funding) in raw.items():
        spot_c, perp_c, mark_c = _on_grid(spot, grid), _on_grid(perp, grid), _on_grid(mark, grid)
        fallback = np.isnan(mark_c) & ~np.isnan(perp_c)
        mark_c = np.where(fallback, perp_c, mark_c)
        f_ts = funding["ts_ms"].to_numpy(np.int64)
        f_rate = funding["funding_rate"].to_numpy(np.float64)
        f_int = funding["interval_hours"].to_numpy(np.int64)
        has_both = ~(np.isnan(spot_c) | np.isnan(perp_c))
        funded = grid >= (f_ts[0] if len(f_ts) else np.iinfo(np.int64).max)
        live = np.flatnonzero(has_both & funded)
        s = SymbolSeries(
            symbol=sym,
            unified=unified_symbol(sym),
            spot_close=spot_c,
            perp_close=perp_c,
            mark_close=mark_c,
            mark_fallback=fallback,
            mark_file_missing=mark is None,
            funding_ts=f_ts,
            funding_rate=f_rate,
            funding_interval=f_int,
            first_ms=int(grid[live[0]]) if len(live) else None,
            last_ms=int(grid[live[-1]]) if len(live) else None,
        )
        if len(live):
            a, b = live[0], live[-1] + 1
            inside = np.zeros(len(grid), dtype=bool)
            inside[a:b] = True
            for i, j in _runs(inside & ~has_both):
                legs = tuple(leg for leg, arr in (("spot", spot_c), ("perp", perp_c)) if np.isnan(arr[i:j]).any())
                s.gaps.append(Gap(int(grid[i]), int(grid[j - 1]) + HOUR_MS, legs))
        a = max(int(np.searchsorted(f_ts, grid[0])) - 1, 0)  # the settlement before the window sets the old value
        b = int(np.searchsorted(f_ts, grid[-1] + HOUR_MS))
        s.interval_changes = _interval_changes(f_ts[a:b], f_int[a:b])
        series[sym] = s
    if not any(s.first_ms is not None for s in series.values()):
        raise DataError(  # lo and hi are known here: a symbol set without any overlap was refused above
            f"no hour from {iso_utc(int(grid[0]))} to {iso_utc(int(grid[-1]) + HOUR_MS)} has spot, perp and "
            f"funding data for {', '.join(ids)}; they have data from {iso_utc(lo)} to {iso_utc(hi + HOUR_MS)}: "
            "choose --start/--end inside that range"
        )
    lo_ms, hi_ms = int(grid[0]), int(grid[-1]) + HOUR_MS
    minute_windows = {}  # the 1-minute windows inside the run (the report names only those)
    for sym, spans in load_minute_windows(data_dir, ids).items():
        kept = [(max(a, lo_ms), min(b, hi_ms)) for a, b in spans if a < hi_ms and b > lo_ms]
        if kept:
            minute_windows[sym] = kept
    return Dataset(data_dir, grid, series, minute_windows)
