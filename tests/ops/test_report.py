"""report: attribution on the hand-computed history reconciles with wallet equity to the cent."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bot.ledger.repository import Ledger
from bot.ops.report import collect_report, render_report

from .history import T0, T_END, T_FUND, Expected, build_history

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


async def test_since_window_opens_at_the_first_snapshot_after_it(ledger: Ledger) -> None:
    """Equity can only be measured at a balance snapshot, so the window opens at the first one at or after
    --since; what happened before it (here the fills and the settlement) is inside the opening equity and
    the legs held then are valued from there. Attribution used to start at --since while the equity
    window started at that snapshot: the settlement was counted against an equity that already held it
    (the demo's --since reports were off by hundreds of USDT)."""
    await build_history(ledger)
    rep = await collect_report(ledger, T_END + 60_000, since_ms=T_FUND - 1)
    assert rep["since_ms"] == rep["equity"]["first_ms"] == T_END
    assert any("window opens at the first balance snapshot" in n for n in rep["notes"])
    [btc] = rep["pairs"]
    assert btc["funding"] == 0 and btc["fees"] == 0 and btc["fills"] == 0
    assert rep["residual"] == 0
    whole = await collect_report(ledger, T_END + 60_000, since_ms=T0 - 1)  # opens at the first snapshot
    assert whole["since_ms"] == T0 and whole["pairs"][0]["funding"] == Expected.funding
    assert whole["residual"] == 0


async def test_pair_filter_and_unknown_pair(ledger: Ledger) -> None:
    await build_history(ledger)
    rep = await collect_report(ledger, T_END, pair_symbol="ETH/USDT")
    assert rep["pairs"] == []
    assert rep["total"]["net"] == 0
    assert "equity covers the whole account, not only the selected pair" in rep["notes"]
    rep = await collect_report(ledger, T_END, pair_symbol="BTC/USDT")
    assert [p["symbol"] for p in rep["pairs"]] == ["BTC/USDT"]


@pytest.mark.slow
def test_cli_report_json_and_text(history_url: str, run_cli) -> None:
    res = run_cli("report", "--url", history_url, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert D(data["total"]["net"]) == Expected.net
    assert D(data["pairs"][0]["funding"]) == Expected.funding
    assert D(data["residual"]) == 0
    for form in ("BTC/USDT", "btcusdt"):
        res = run_cli("report", "--url", history_url, "--pair", form)
        assert res.exit_code == 0, res.output
        assert "BTC/USDT" in res.output and "unexplained residual 0.0000" in res.output


def test_cli_report_rejects_bad_since(history_url: str, run_cli) -> None:
    res = run_cli("report", "--url", history_url, "--since", "not-a-time")
    assert res.exit_code == 2
    assert "30m, 1h, 2d" in res.output
    res = run_cli("report", "--url", history_url, "--since", "2999-01-01")
    assert res.exit_code == 2 and "is in the future" in res.output


def test_cli_report_missing_ledger(tmp_path, run_cli) -> None:
    res = run_cli("report", "--url", f"sqlite+aiosqlite:///{tmp_path}/nothing.db")
    assert res.exit_code == 2
    assert not (tmp_path / "nothing.db").exists()


async def test_slippage_is_measured_against_the_orders_recorded_reference_only(ledger: Ledger) -> None:
    """One definition of slippage: against the reference price the order intent recorded. A fill with no
    recorded reference (here: a fill no executor order made) counts no slippage and is named in the notes;
    it used to fall back to the strategy's last decision mids, a second definition."""
    from bot.domain import Leg, Side
    from bot.ledger.models import EventKind, IntentKind

    t = 1_714_521_600_000
    inputs = {"spot_symbol": "ETH/USDT", "spot_bid": "2999", "spot_ask": "3001", "perp_bid": "3002", "perp_ask": "3004"}
    await ledger.add_event(
        EventKind.DECISION, "enter", ts_ms=t, symbol="ETH/USDT", details={"rule": "r", "inputs": inputs}
    )
    await ledger.create_intent(IntentKind.ORDER, "o-1", now_ms=t, payload={"reference_price": "3000.25"})
    for market, sym, side, price, cid in (
        (Leg.SPOT, "ETH/USDT", Side.BUY, "3001.5", "o-1"),
        (Leg.PERP, "ETH/USDT:USDT", Side.SELL, "3002", None),
    ):
        await ledger.record_fill(
            venue="binance", market=market, symbol=sym, venue_trade_id="7", side=side, quantity=D("2"),
            price=D(price), fee=D("0"), fee_asset="USDT", ts_ms=t + 1000, client_order_id=cid,
        )  # fmt: skip
    rep = await collect_report(ledger, t + 60_000)
    [eth] = rep["pairs"]
    assert eth["slippage_cost"] == D("2") * D("1.25")  # the spot buy vs its reference 3000.25
    assert any(n.startswith("1 fill(s) have no reference price") for n in rep["notes"]), rep["notes"]
