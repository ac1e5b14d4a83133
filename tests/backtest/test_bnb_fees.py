"""``[treasury] bnb_fees = true`` in a backtest: BNB bought on the simulator pays the spot fees, the spot buys
are not grossed up (the coin arrives whole), the in-memory ledger's report values the BNB fees, and a run
without BNB/USDT is refused before it writes anything."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest.data import DataError
from bot.backtest.params import parse_backtest_config
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.domain import Leg
from bot.ledger.repository import Ledger
from bot.sim.history import bundled_data_dir

START = int(datetime(2025, 3, 1, tzinfo=UTC).timestamp() * 1000)
END = START + 3 * 24 * 3_600_000
BNB = parse_backtest_config({"treasury": {"bnb_fees": True}}, "test")


def _spec(symbols: list[str], out: Path) -> BacktestSpec:
    return BacktestSpec(bundled_data_dir(), symbols, START, END, Decimal(100000), "always-on-btc", BNB, out)


@pytest.mark.slow
def test_bnb_pays_the_spot_fees_and_the_report_values_them(tmp_path: Path) -> None:
    result = asyncio.run(run_backtest(_spec(["BTCUSDT", "BNBUSDT"], tmp_path / "out")))

    async def fills() -> list:
        ledger = await Ledger.open(result.ledger_url, migrate=False)
        try:
            return await ledger.list_fills()
        finally:
            await ledger.close()

    rows = asyncio.run(fills())
    btc_spot = [f for f in rows if f.symbol == "BTC/USDT" and f.market is Leg.SPOT]
    btc_perp = [f for f in rows if f.symbol == "BTC/USDT" and f.market is Leg.PERP]
    assert any(f.symbol == "BNB/USDT" for f in rows)  # the top-up
    assert btc_spot and all(f.fee_asset == "BNB" for f in btc_spot)
    # no gross-up: the spot leg buys what the perp leg sells
    assert sum(f.quantity for f in btc_spot) == sum(f.quantity for f in btc_perp)
    perp_fees = sum(float(f.fee) for f in btc_perp)
    spot_notional = sum(float(f.quantity * f.price) for f in btc_spot)
    # the report counts the BNB paid, valued in USDT: 0.075% of the spot notional (BNB's 25% off 0.1%)
    bnb_fees = result.summary.fees - perp_fees
    assert bnb_fees == pytest.approx(0.00075 * spot_notional, rel=0.05)


def test_bnb_fees_without_bnb_in_the_run_is_refused_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(DataError, match="add BNBUSDT to --symbols"):
        asyncio.run(run_backtest(_spec(["BTCUSDT"], out)))
    assert not out.exists()
