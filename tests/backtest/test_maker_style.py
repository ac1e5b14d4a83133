"""``[execution] style = "maker"`` in a backtest: the executor's pauses move simulated time, so resting orders
fill when the replayed path trades through them; the same data in taker style fills nothing as maker."""

from __future__ import annotations

import asyncio
import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.params import BacktestConfigError, BacktestParams, parse_backtest_config
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.domain import Leg
from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger

from .backtest_datafiles import HOUR_MS, T0, write_funding

HOURS = 12


def _candles(root: Path, kind: str, symbol: str) -> None:
    """Hour 0 dips 0.5 % and comes back (open, low, high, close), then flat; at a price BTCUSDT's filters
    (its minimum price) accept for limit orders."""
    path = root / "klines" / f"binance_{kind}_{symbol}_1h.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["ts_ms,open,high,low,close" + ("" if kind == "mark" else ",volume")]
    for h in range(HOURS):
        o, hi, lo, c = (60000, 60300, 59700, 60000) if h == 0 else (60000,) * 4
        lines.append(f"{T0 + h * HOUR_MS},{o},{hi},{lo},{c}" + ("" if kind == "mark" else ",1000"))
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


# Before issue 18's tuning: both legs may follow at market, one tick inside the touch, two minutes.
QUICK = {"maker_follow": "both", "maker_price": "inside", "maker_timeout_s": 120, "maker_max_reprices": 5}


def _run(root: Path, style: str, **execution: object) -> tuple[list, list]:
    for kind in ("spot", "perp", "mark"):
        _candles(root, kind, "BTCUSDT")
    write_funding(root, "BTCUSDT", [(8 * k, "0.0001", 8) for k in range(2)])
    params = parse_backtest_config({"execution": {"style": style, **execution}}, "test")
    spec = BacktestSpec(root, None, T0, T0 + HOURS * HOUR_MS, Decimal(100000), "always-on-btc", params, root / "out")
    result = asyncio.run(run_backtest(spec))

    async def rows() -> tuple[list, list]:
        ledger = await Ledger.open(result.ledger_url, migrate=False)
        try:
            return await ledger.list_fills(), await ledger.events(kinds=[EventKind.ORDER])
        finally:
            await ledger.close()

    return asyncio.run(rows())


def test_maker_style_fills_resting_orders_on_the_replayed_path(tmp_path: Path) -> None:
    fills, events = _run(tmp_path / "maker", "maker", **QUICK)
    maker = [f for f in fills if f.is_maker]
    assert maker and {f.market for f in maker} == {Leg.SPOT}  # the dip trades through the spot bid only
    assert all(f.ts_ms > T0 for f in maker)  # time passed while they rested
    assert any("maker phase" in e.message for e in events)
    spot = sum((f.quantity - f.fee) if f.side.value == "buy" else -f.quantity for f in fills if f.market is Leg.SPOT)
    short = sum(f.quantity if f.side.value == "sell" else -f.quantity for f in fills if f.market is Leg.PERP)
    assert short > 0 and abs(spot - short) < Decimal("0.0011")  # within a perp lot (the spot fee's rounding)
    taker, _ = _run(tmp_path / "taker", "taker")
    assert taker and not any(f.is_maker for f in taker) and all(f.ts_ms == T0 for f in taker)


def test_follow_spot_waits_for_the_rise_to_fill_the_perp_as_maker(tmp_path: Path) -> None:
    """The hour's path goes down first (open, low, high, close): the spot buy fills on the dip and leads;
    with ``maker_follow = spot`` the perp sell is not taken at market but rests (re-priced down with the
    price) until the rise trades through it. Both legs fill as maker, the whole perp leg does."""
    execution = {"maker_follow": "spot", "maker_price": "mid", "maker_timeout_s": 1800, "maker_max_reprices": 100}
    fills, _ = _run(tmp_path / "maker", "maker", **execution)
    perp = [f for f in fills if f.market is Leg.PERP]
    assert perp and all(f.is_maker for f in perp)
    assert any(f.is_maker for f in fills if f.market is Leg.SPOT)
    spot = sum((f.quantity - f.fee) if f.side.value == "buy" else -f.quantity for f in fills if f.market is Leg.SPOT)
    short = sum(f.quantity if f.side.value == "sell" else -f.quantity for f in perp)
    assert short > 0 and abs(spot - short) < Decimal("0.0011")
    assert max(f.ts_ms for f in perp) - T0 > 20 * 60_000  # the rise starts a third into the hour


def test_a_maker_timeout_of_an_hour_is_refused_in_a_backtest() -> None:
    with pytest.raises(BacktestConfigError, match="maker_timeout_s must be below 3600"):
        parse_backtest_config({"execution": {"style": "maker", "maker_timeout_s": 3600}}, "test")
    assert isinstance(parse_backtest_config({"execution": {"maker_timeout_s": 3600}}, "test"), BacktestParams)
