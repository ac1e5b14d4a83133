"""status: legs, drift, notional, collateral ratio, next funding, wallets, open intents and alerts."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bot.ledger.models import EventKind, Wallet
from bot.ledger.repository import AssetBalance, Ledger
from bot.ops.report import collect_report
from bot.ops.status import collect_status, futures_margin_balance, render_status

from .history import T_END, T_FUND, Expected, build_history

D = Decimal
NOW = T_END + 90_000


async def test_status_figures(ledger: Ledger) -> None:
    await build_history(ledger)
    st = await collect_status(ledger, NOW)
    [p] = st["pairs"]
    assert (p["symbol"], p["state"]) == ("BTC/USDT", "open")
    assert (p["spot_qty"], p["perp_qty"]) == (D("0.0999"), D("0.1"))
    assert p["hedge_drift"] == Expected.drift
    assert p["perp_price"] == D("61080") and p["spot_price"] == D("61000")
    assert p["notional"] == Expected.notional
    assert p["funding_earned"] == Expected.funding
    assert p["next_funding_ms"] == T_FUND + 8 * 3_600_000
    assert p["next_funding_rate"] == D("0.00012") and p["rate_kind"] == "predicted"
    assert p["liquidation_price"] is None
    c = st["collateral"]
    assert c["margin_balance"] == Expected.margin
    assert c["short_notional"] == Expected.notional
    assert c["ratio"] == Expected.margin / Expected.notional
    assert {(w["wallet"], a) for w in st["wallets"] for a in w["assets"]} == {
        ("spot", "USDT"),
        ("spot", "BTC"),
        ("futures", "USDT"),
    }
    assert [(i["client_id"], i["status"]) for i in st["open_intents"]] == [("tr-2", "pending")]
    assert [e["kind"] for e in st["recent_errors"]] == ["alert"]

    text = "\n".join(line.plain for line in render_status(st))
    assert "BTC/USDT   open        spot 0.0999 / perp -0.1  drift -0.0001 (-0.10%)" in text
    assert "notional 6,108.00 USDT" in text
    assert "funding earned +0.6000 USDT" in text
    assert "next funding 2024-05-01T16:00:00Z at 0.0120%" in text
    # read after that instant (the daemon stopped before its next scan), the prediction is not "next"
    later = "\n".join(line.plain for line in render_status({**st, "as_of_ms": T_FUND + 8 * 3_600_000 + 1}))
    assert "last predicted funding 2024-05-01T16:00:00Z at 0.0120%" in later
    assert "collateral ratio 0.475  (futures margin 2,899.20 USDT / short notional 6,108.00 USDT)" in text
    assert "transfer pending  tr-2  attempts 0" in text
    assert "ALERT BTC/USDT  BTC/USDT hedge drift -0.0001" in text


@pytest.mark.slow
async def test_liquidation_distance_from_recorded_positions(ledger: Ledger) -> None:
    await build_history(ledger)
    await ledger.add_event(
        EventKind.RECONCILE,
        "positions checked",
        ts_ms=T_END + 1,
        details={"positions": {"BTC/USDT:USDT": {"liquidation_price": "91620"}}},
    )
    [p] = (await collect_status(ledger, NOW))["pairs"]
    assert p["liquidation_price"] == D("91620")
    assert p["liquidation_distance"] == (D("91620") - D("61080")) / D("61080")


async def test_empty_ledger(ledger: Ledger) -> None:
    st = await collect_status(ledger, NOW)
    assert st["pairs"] == [] and st["wallets"] == [] and st["collateral"]["ratio"] is None
    text = "\n".join(line.plain for line in render_status(st))
    assert "no balance snapshot recorded" in text and "n/a (no short)" in text


@pytest.mark.slow
def test_cli_status_json(history_url: str, run_cli) -> None:
    res = run_cli("status", "--url", history_url, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert D(data["collateral"]["ratio"]) == Expected.margin / Expected.notional
    assert D(data["pairs"][0]["hedge_drift"]) == Expected.drift
    res = run_cli("status", "--url", history_url)
    assert res.exit_code == 0 and "collateral ratio 0.475" in res.output


async def test_fresh_dry_runs_show_only_the_newest_paper_account(ledger: Ledger) -> None:
    """A dry run started with --fresh opens a new paper account in the same ledger: status took the first
    futures wallet it found (an old account's) and report summed all accounts' equity (residual +199,992)."""

    def usdt(total: str) -> dict[str, AssetBalance]:
        return {"USDT": AssetBalance(D(total), D(0), D(total))}

    for venue, t0, spot, futures in (("paper-old", 1_000, "80000", "20000"), ("paper-new", 10_000, "100000", "0")):
        await ledger.record_balance_snapshots(
            [(venue, Wallet.SPOT, t0, usdt(spot)), (venue, Wallet.FUTURES, t0, usdt(futures))]
        )
    await ledger.record_balance_snapshots(
        [("paper-new", Wallet.SPOT, 20_000, usdt("60000")), ("paper-new", Wallet.FUTURES, 20_000, usdt("40000"))]
    )
    st = await collect_status(ledger, 30_000)
    assert {w["venue"] for w in st["wallets"]} == {"paper-new"} and st["earlier_accounts"] == ["paper-old"]
    assert futures_margin_balance(st["wallets"]) == D("40000")
    rep = await collect_report(ledger, 30_000)
    assert rep["equity"]["first"] == rep["equity"]["last"] == D("100000")
    assert any("covers the newest, paper-new" in n for n in rep["notes"])
