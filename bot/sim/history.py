"""Loader for the history files (docs/architecture.md, "History data"), full or the bundle in ``bot/data``.

Layout::

    funding/binance_<SYM>.csv.gz           ts_ms,symbol,funding_rate,mark_price,interval_hours
    klines/binance_{spot,perp,mark}_<SYM>_1h.csv.gz   ts_ms,open,high,low,close[,volume]

Floats are fine here (analytics and loading); the simulation converts to Decimal at its boundary.
Gaps stay gaps: nothing is forward-filled; ``missing_hours`` says which hours have no candle.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from bot.domain import HOUR_MS

KLINE_KINDS = ("spot", "perp", "mark")
_KLINE_COLUMNS = ("ts_ms", "open", "high", "low", "close", "volume")
_KLINE_REQUIRED = _KLINE_COLUMNS[:5]
_FUNDING_COLUMNS = ("ts_ms", "symbol", "funding_rate", "mark_price", "interval_hours")
_UNREADABLE = (EOFError, OSError, zlib.error, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError)


class DataFileError(ValueError):
    """A history file that cannot be read as the layout says; the message names the file, the line and
    the fix (the loaders never hand a half-parsed file to the simulation)."""


def _lines_readable(path: Path) -> int:
    """How many lines of a damaged file decompress and decode (to say where it breaks)."""
    n = 0
    try:
        with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as fh:
            for _ in fh:
                n += 1
    except _UNREADABLE:
        pass
    return n


def _first_bad_number(values: pd.Series, col: str, *, optional: bool) -> tuple[int, str] | None:
    """(file line, what it holds) of the first cell of ``values`` that is not a number (blank counts as
    bad unless ``optional``; ``ts_ms`` must be whole), or None."""
    if pd.api.types.is_integer_dtype(values):
        return None
    if pd.api.types.is_float_dtype(values) and col != "ts_ms" and (optional or not values.isna().any()):
        return None  # pandas parsed every cell as a number
    text = values.astype(str).str.strip()
    blank = values.isna() | text.eq("")
    num = pd.to_numeric(text.mask(blank), errors="coerce")
    bad = num.isna() & ~blank
    if not optional:
        bad |= blank
    if col == "ts_ms":
        bad |= num.notna() & (num % 1 != 0)
    if not bad.any():
        return None
    i = int(np.flatnonzero(bad.to_numpy())[0])
    return i + 2, "blank" if blank.iloc[i] else f"{values.iloc[i]!r}, not a {'whole ' if col == 'ts_ms' else ''}number"


def read_history_csv(
    path: Path,
    required: Sequence[str],
    numeric: Sequence[str] = (),
    optional_numeric: Sequence[str] = (),
    *,
    as_text: bool = False,
) -> pd.DataFrame:
    """Read one history CSV (gzip or plain) and check it: the ``required`` columns are present, every
    ``numeric`` one holds a number on every row (``ts_ms`` a whole one) and ``optional_numeric`` ones a
    number or a blank. Raises ``DataFileError`` naming the file and the line (line 1 is the header).
    ``as_text`` keeps every cell as its source string (for exact decimal rates)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False) if as_text else pd.read_csv(path)
    except _UNREADABLE as err:
        what = "truncated" if isinstance(err, EOFError) else f"corrupt ({err})"
        n = _lines_readable(path)
        where = f"readable up to line {n}" if n else "unreadable from line 1"
        raise DataFileError(f"{path}: {what}; {where}: re-download or remove the file") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataFileError(
            f"{path}: line 1 (header) lacks column(s) {', '.join(missing)}; expected {', '.join(required)}, "
            f"found {', '.join(map(str, df.columns)) or 'none'}"
        )
    for col in (*numeric, *optional_numeric):
        if col in df.columns and (bad := _first_bad_number(df[col], col, optional=col in optional_numeric)):
            line, shown = bad
            raise DataFileError(f"{path}: line {line}: {col} is {shown}; fix or remove that row")
    return df


def bundled_data_dir() -> Path:
    """The compact real dataset shipped inside the package (``bot/data/history``)."""
    return Path(__file__).resolve().parent.parent / "data" / "history"


def shared_data_dir() -> Path:
    """The full ``shared/data`` folder next to the checkout, when present (tests skip otherwise)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def funding_path(data_dir: Path, symbol: str) -> Path:
    return Path(data_dir) / "funding" / f"binance_{symbol}.csv.gz"


def kline_path(data_dir: Path, kind: str, symbol: str) -> Path:
    if kind not in KLINE_KINDS:
        raise ValueError(f"kline kind must be one of {KLINE_KINDS}, got {kind!r}")
    return Path(data_dir) / "klines" / f"binance_{kind}_{symbol}_1h.csv.gz"


def available_symbols(data_dir: Path) -> list[str]:
    """Symbols that have a Binance funding file and perp klines in ``data_dir``."""
    funding_dir = Path(data_dir) / "funding"
    out = []
    for path in sorted(funding_dir.glob("binance_*.csv.gz")):
        symbol = path.name[len("binance_") : -len(".csv.gz")]
        if kline_path(data_dir, "perp", symbol).exists():
            out.append(symbol)
    return out


def load_klines(
    data_dir: Path, kind: str, symbol: str, start_ms: int | None = None, end_ms: int | None = None
) -> pd.DataFrame | None:
    """1h klines as floats (``volume`` is NaN for mark klines); None when the file does not exist.

    Rows are sorted by open time, duplicates dropped; ``start_ms <= ts_ms < end_ms`` when given.
    """
    path = kline_path(data_dir, kind, symbol)
    if not path.exists():
        return None
    return _window(_parsed_klines(*_file_key(path)), start_ms, end_ms).reset_index(drop=True)


def _file_key(path: Path) -> tuple[str, int, int]:
    """A file's identity for the parse cache: a rewritten file (new mtime or size) is parsed again."""
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=256)
def _parsed_klines(path: str, _mtime_ns: int, _size: int) -> pd.DataFrame:
    """One kline file parsed once per process (the backtest loader, the sim replay and each baseline
    run read the same files); callers only ever get windowed copies, never this frame."""
    df = read_history_csv(Path(path), _KLINE_REQUIRED, _KLINE_REQUIRED, ("volume",))
    df["ts_ms"] = df["ts_ms"].astype("int64")
    if "volume" not in df.columns:
        df["volume"] = np.nan
    df = df.loc[:, list(_KLINE_COLUMNS)]
    for col in _KLINE_COLUMNS[1:]:
        df[col] = df[col].astype("float64")
    return df.drop_duplicates("ts_ms").sort_values("ts_ms").reset_index(drop=True)


def load_funding(data_dir: Path, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> pd.DataFrame:
    """Funding settlements: ts_ms, funding_rate (float), rate_text (the source string, exact),
    mark_price (NaN when blank), interval_hours (int) and interval_derived (True where the source left
    it blank and it was derived from the spacing to the neighbouring settlements, never assumed 8 h).
    """
    path = funding_path(data_dir, symbol)
    if not path.exists():
        raise FileNotFoundError(f"no funding file for {symbol}: {path}")
    return _window(_parsed_funding(*_file_key(path)), start_ms, end_ms).reset_index(drop=True)


@lru_cache(maxsize=128)
def _parsed_funding(path: str, _mtime_ns: int, _size: int) -> pd.DataFrame:
    """One funding file parsed once per process; callers get windowed copies (see ``_parsed_klines``)."""
    raw = read_history_csv(
        Path(path), ("ts_ms", "funding_rate"), ("ts_ms", "funding_rate"), ("mark_price", "interval_hours"), as_text=True
    )
    for col in _FUNDING_COLUMNS:
        if col not in raw.columns:
            raw[col] = ""
    df = pd.DataFrame(
        {
            "ts_ms": raw["ts_ms"].astype("int64"),
            "funding_rate": raw["funding_rate"].astype("float64"),
            "rate_text": raw["funding_rate"],
            "mark_price": pd.to_numeric(raw["mark_price"].replace("", np.nan), errors="coerce"),
            "interval_raw": pd.to_numeric(raw["interval_hours"].replace("", np.nan), errors="coerce"),
        }
    )
    df = df.drop_duplicates("ts_ms").sort_values("ts_ms").reset_index(drop=True)
    prev_gap = df["ts_ms"].diff() / HOUR_MS
    next_gap = (-df["ts_ms"].diff(-1)) / HOUR_MS
    # A blank interval is the spacing to the previous settlement; where the previous row is missing or
    # further away (a hole in the data), the spacing to the next one is the better guess.
    spacing = pd.concat([prev_gap, next_gap], axis=1).min(axis=1)
    derived = df["interval_raw"].isna()
    df["interval_hours"] = df["interval_raw"].where(~derived, spacing).fillna(8).round().astype("int64")
    df["interval_derived"] = derived
    return df.drop(columns=["interval_raw"])


def missing_hours(klines: pd.DataFrame | None, start_ms: int, end_ms: int) -> np.ndarray:
    """Open times (ms) of the hours in ``[start_ms, end_ms)`` that have no candle."""
    first = -(-start_ms // HOUR_MS) * HOUR_MS
    grid = np.arange(first, end_ms, HOUR_MS, dtype=np.int64)
    if klines is None or klines.empty:
        return grid
    present = klines["ts_ms"].to_numpy(dtype=np.int64)
    return grid[~np.isin(grid, present)]


@dataclass(frozen=True)
class SymbolHistory:
    """Everything loaded for one symbol. ``mark_from_perp`` says the perp close stands in for a
    missing mark-price file (mark and perp differ by a few bp on Binance; the flag lets a report say so).
    """

    symbol: str
    spot: pd.DataFrame | None
    perp: pd.DataFrame | None
    mark: pd.DataFrame | None
    funding: pd.DataFrame
    mark_from_perp: bool


def load_symbol(data_dir: Path, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> SymbolHistory:
    spot = load_klines(data_dir, "spot", symbol, start_ms, end_ms)
    perp = load_klines(data_dir, "perp", symbol, start_ms, end_ms)
    mark = load_klines(data_dir, "mark", symbol, start_ms, end_ms)
    mark_from_perp = False
    if (mark is None or mark.empty) and perp is not None and not perp.empty:
        mark = perp.copy()
        mark["volume"] = np.nan
        mark_from_perp = True
    funding = load_funding(data_dir, symbol, start_ms, end_ms)
    return SymbolHistory(symbol, spot, perp, mark, funding, mark_from_perp)


def _window(df: pd.DataFrame, start_ms: int | None, end_ms: int | None) -> pd.DataFrame:
    """Rows with ``start_ms <= ts_ms < end_ms``, always a copy (the cached frames stay untouched)."""
    keep = np.ones(len(df), dtype=bool)
    if start_ms is not None:
        keep &= df["ts_ms"].to_numpy() >= start_ms
    if end_ms is not None:
        keep &= df["ts_ms"].to_numpy() < end_ms
    return df[keep].copy()
