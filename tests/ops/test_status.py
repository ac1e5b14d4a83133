"""status: legs, drift, notional, collateral ratio, next funding, wallets, open intents and alerts."""

from __future__ import annotations

import json
from decimal import Decimal

from bot.ledger.models import EventKind
from bot.ledger.repository import Ledger
from bot.ops.status import collect_status, render_status

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
    assert "collateral ratio 0.475  (futures margin 2,899.20 USDT / short notional 6,108.00 USDT)" in text
    assert "transfer pending  tr-2  attempts 0" in text
    assert "ALERT BTC/USDT  BTC/USDT hedge drift -0.0001" in text


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


def test_cli_status_json(history_url: str, run_cli) -> None:
    res = run_cli("status", "--url", history_url, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert D(data["collateral"]["ratio"]) == Expected.margin / Expected.notional
    assert D(data["pairs"][0]["hedge_drift"]) == Expected.drift
    res = run_cli("status", "--url", history_url)
    assert res.exit_code == 0 and "collateral ratio 0.475" in res.output
