import gzip
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.cli import parse_time
from bot.format import iso_utc
from bot.sim.history import bundled_data_dir
from bot.sweep.engine import SweepRequest
from bot.sweep.runners import InlineRunner
from bot.sweep.space import load_space
from bot.sweep.storage import open_storage
from bot.sweep.walkforward import WalkForwardError, add_span, parse_span, run_walk_forward, windows
from bot.sweep.worker import Window

DAY = 86_400_000
SYMBOLS = ("SOLUSDT", "DOGEUSDT", "XRPUSDT")


def test_rolling_and_anchored_windows_and_calendar_months() -> None:
    t0 = parse_time("2025-01-31", "")
    assert iso_utc(add_span(t0, parse_span("1M", "--test"))) == "2025-02-28T00:00:00Z"
    assert iso_utc(add_span(t0, parse_span("1Y", "--test"))) == "2026-01-31T00:00:00Z"
    start = parse_time("2025-01-01", "")
    end = parse_time("2025-01-11", "")
    rolling = windows(start, end, parse_span("4D", ""), parse_span("2D", ""), anchored=False)
    assert [(w.train, w.test) for w in rolling] == [
        ((start, start + 4 * DAY), (start + 4 * DAY, start + 6 * DAY)),
        ((start + 2 * DAY, start + 6 * DAY), (start + 6 * DAY, start + 8 * DAY)),
        ((start + 4 * DAY, start + 8 * DAY), (start + 8 * DAY, start + 10 * DAY)),
    ]
    anchored = windows(start, end, parse_span("4D", ""), parse_span("2D", ""), anchored=True)
    assert [w.train[0] for w in anchored] == [start] * 3 and [w.test for w in anchored] == [w.test for w in rolling]
    with pytest.raises(WalkForwardError, match="is longer than the data"):
        windows(start, end, parse_span("9D", ""), parse_span("2D", ""), False, "9D", "2D")


def _copy_data(dst: Path) -> Path:
    src = bundled_data_dir()
    for sub in ("funding", "klines"):
        (dst / sub).mkdir(parents=True)
        for sym in SYMBOLS:
            for path in (src / sub).glob(f"*_{sym}*.csv.gz"):
                shutil.copy(path, dst / sub / path.name)
    return dst


def _rewrite(path: Path, lo: int, hi: int, column: str, change: float) -> int:
    """Multiply ``column`` of the rows with lo <= ts_ms < hi; how many rows changed."""
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    head = lines[0].split(",")
    i, ts_i = head.index(column), head.index("ts_ms")
    n = 0
    for k in range(1, len(lines)):
        cells = lines[k].split(",")
        if lo <= int(cells[ts_i]) < hi:
            cells[i] = repr(float(cells[i]) * change)
            lines[k] = ",".join(cells)
            n += 1
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return n


@pytest.mark.slow
@pytest.mark.timeout(300)  # 30 s on a loaded 2-core machine
def test_walk_forward_never_lets_a_test_window_reach_its_training(tmp_path: Path) -> None:
    """Rewriting the data inside window 1's test span (funding and perp prices) changes that window's
    out-of-sample figures, and neither its train trials nor the parameters chosen for it."""
    space = tmp_path / "space.toml"
    space.write_text('[strategy]\nentry_threshold_apr = ["0.08", "0.15"]\n')
    start, end = parse_time("2025-07-16", ""), parse_time("2025-07-24", "")
    pairs = windows(start, end, parse_span("4D", ""), parse_span("2D", ""), anchored=False)
    assert len(pairs) == 2
    test_lo, test_hi = pairs[0].test

    def run(data: Path, tag: str) -> list:
        req = SweepRequest(
            load_space(space), Window(str(data), SYMBOLS, start, end), Decimal(100000), "grid", study_name=f"wf-{tag}"
        )
        storage = open_storage(f"sqlite+aiosqlite:///{(tmp_path / f'{tag}.db').as_posix()}")
        return run_walk_forward(req, pairs, InlineRunner(), storage).results

    original = run(_copy_data(tmp_path / "a"), "a")
    changed_dir = _copy_data(tmp_path / "b")
    n = 0
    for sym in SYMBOLS:
        n += _rewrite(changed_dir / "funding" / f"binance_{sym}.csv.gz", test_lo, test_hi, "funding_rate", 25.0)
        n += _rewrite(changed_dir / "klines" / f"binance_perp_{sym}_1h.csv.gz", test_lo, test_hi, "close", 0.97)
    assert n > 100
    changed = run(changed_dir, "b")
    a, b = original[0], changed[0]
    assert a.chosen is not None and b.chosen is not None
    assert [(r.values, r.objective) for r in a.study.rows] == [(r.values, r.objective) for r in b.study.rows]
    assert a.chosen.values == b.chosen.values
    assert a.out_of_sample is not None and b.out_of_sample is not None
    assert a.out_of_sample.net_pnl != b.out_of_sample.net_pnl, "the rewrite is inside the test window"
    # window 2 trains on days 3..6, which hold window 1's test span: its training may (and does) see it
    assert [r.objective for r in original[1].study.rows] != [r.objective for r in changed[1].study.rows]
