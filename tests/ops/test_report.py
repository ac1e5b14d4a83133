"""report: attribution on the hand-computed history reconciles with wallet equity to the cent."""

from __future__ import annotations

import json
from decimal import Decimal

from typer.testing import CliRunner

from bot.cli import app
from bot.ledger.repository import Ledger
from bot.ops.cli import register
from bot.ops.report import collect_report, render_report

from .history import T_END, T_FUND, Expected, build_history

D = Decimal


async def test_attribution_reconciles_with_equity(ledger: Ledger) -> None:
    await build_history(ledger)
    rep = await collect_report(ledger, T_END + 60_000)
    [btc] = rep["pairs"]
    assert btc["symbol"] == "BTC/USDT"
    assert btc["funding"] == Expected.funding
    assert btc["fees"] == Expected.fees
    assert btc["price"] == Expected.price
    assert btc["basis"] == Expected.basis
    assert btc["net"] == Expected.net
    assert btc["slippage_cost"] == Expected.slippage
    assert (btc["fills"], btc["funding_payments"]) == (2, 1)
    assert rep["total"]["net"] == Expected.net
    assert rep["equity"]["first"] == Expected.equity_first
    assert rep["equity"]["last"] == Expected.equity_last
    assert rep["equity"]["change"] == Expected.equity_last - Expected.equity_first
    assert rep["residual"] == 0
    assert rep["transfers"]["count"] == 1
    assert rep["transfers"]["done_by_direction"] == {"spot->futures": {"USDT": D("3000")}}
    assert rep["notes"] == []

    text = "\n".join(line.plain for line in render_report(rep))
    assert "funding      +0.6000" in text
    assert "fees      -8.4046" in text
    assert "net      -7.9036" in text
    assert "slippage 2.0000 (memo)" in text
    assert "transfers 1 (done 1) spot->futures 3,000.0000 USDT  internal: 0 PnL" in text
    assert "change -7.9036" in text
    assert "unexplained residual 0.0000" in text


async def test_since_window_starts_from_held_position(ledger: Ledger) -> None:
    """After the fills, only funding and the move since the window start count."""
    await build_history(ledger)
    rep = await collect_report(ledger, T_END + 60_000, since_ms=T_FUND - 1)
    [btc] = rep["pairs"]
    assert btc["funding"] == Expected.funding
    assert btc["fees"] == 0
    assert btc["fills"] == 0
    # Position held at the start is priced at the last price observed before it (the entry decision's
    # mids 60000 / 60100): spot 0.0999 * 1000 - perp 0.1 * 980.
    assert btc["price"] + btc["basis"] == D("0.0999") * 1000 - D("0.1") * 980
    assert rep["equity"]["first_ms"] == T_END  # only the last snapshots are inside the window


async def test_pair_filter_and_unknown_pair(ledger: Ledger) -> None:
    await build_history(ledger)
    rep = await collect_report(ledger, T_END, pair_symbol="ETH/USDT")
    assert rep["pairs"] == []
    assert rep["total"]["net"] == 0
    assert "equity covers the whole account, not only the selected pair" in rep["notes"]
    rep = await collect_report(ledger, T_END, pair_symbol="BTC/USDT")
    assert [p["symbol"] for p in rep["pairs"]] == ["BTC/USDT"]


async def test_cli_report_json(db_url: str) -> None:
    led = await Ledger.open(db_url)
    try:
        await build_history(led)
    finally:
        await led.close()
    register_once()
    res = CliRunner().invoke(app, ["report", "--url", db_url, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert D(data["total"]["net"]) == Expected.net
    assert D(data["residual"]) == 0
    res = CliRunner().invoke(app, ["report", "--url", db_url, "--since", "not-a-time"])
    assert res.exit_code == 2
    assert "--since" in res.output


def register_once() -> None:
    if not any(c.name == "report" for c in app.registered_commands):
        register(app)
