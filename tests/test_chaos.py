"""The chaos harness itself (benchmarks/chaos.py): it really kills and faults the daemon, and its audit can
fail. Two SIGKILLs of ``fundbot run --live`` under truncated answers, then discrepancies planted in the
ledger (a fill deleted, a transfer set back to sent, an intent marked failed, a funding payment changed):
the audit must name each of them, over what it found before."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks.chaos import HOUR_S, Options, answer_faults, run_kills
from benchmarks.chaos_audit import AuditReport, audit, read_ledger


@pytest.mark.slow
@pytest.mark.timeout(300)  # 31 s on a loaded 2-core machine
def test_the_harness_kills_faults_and_its_audit_finds_planted_discrepancies(tmp_path: Path) -> None:
    opts = Options(
        kills=2,
        seed=5,
        symbols=("SOL/USDT", "XRP/USDT"),
        up_s=(1.0, 2.0),
        hunt_s=2.0,
        settle_s=HOUR_S,
        settle_timeout_s=20.0,
    )
    # one certain truncation (the first position read, which every start makes) besides the random 20%, so
    # the harness's fault count cannot be 0 on a run that happened to send few orders
    first = {"endpoint": "GET /fapi/v*/positionRisk", "kind": "truncate", "rate": 1.0, "after": True, "count": 1}
    faults = [first, *answer_faults("truncate", 0.2, end_s=10 * HOUR_S)]
    result = run_kills(opts, tmp_path, faults=faults)
    assert result.error is None, result.error
    assert result.kills == 2 and result.starts == 3, result.exits
    assert result.faults["truncate"] > 0
    assert result.report is not None and result.journal is not None
    assert result.report.venue_orders > 0 and result.report.venue_trades > 0
    before = result.report.counts()

    db = tmp_path / "kills" / "ledger.db"
    conn = sqlite3.connect(db)
    with conn:
        fill_id, trade_id = conn.execute("SELECT id, venue_trade_id FROM fills ORDER BY id LIMIT 1").fetchone()
        conn.execute("DELETE FROM fills WHERE id = ?", (fill_id,))
        done = conn.execute(
            "SELECT i.client_id FROM intents i JOIN orders o ON o.client_order_id = i.client_id "
            "WHERE i.status = 'done' AND o.filled_qty > 0 LIMIT 1"
        )
        (intent,) = done.fetchone()
        conn.execute("UPDATE intents SET status = 'failed' WHERE client_id = ?", (intent,))
        transfer = conn.execute("SELECT client_id FROM transfers WHERE status = 'done' LIMIT 1").fetchone()
        if transfer is not None:  # a transfer may still be unsettled when the run stops (then left alone)
            conn.execute("UPDATE transfers SET status = 'sent' WHERE client_id = ?", transfer)
        due = "SELECT id FROM funding_payments WHERE funding_time_ms <= ? LIMIT 1"
        payment = conn.execute(due, (result.funding_until_ms,)).fetchone()
        if payment is not None:
            conn.execute("UPDATE funding_payments SET amount = amount + 1 WHERE id = ?", payment)
    conn.close()

    after = audit(result.journal, read_ledger(db), funding_until_ms=result.funding_until_ms)
    counts = after.counts()
    assert not after.ok
    assert counts["trade not in ledger"] == before["trade not in ledger"] + 1
    assert any(f"trade {trade_id} " in f.detail for f in after.findings if f.category == "trade not in ledger")
    assert counts["intent failed but filled"] == before["intent failed but filled"] + 1
    assert any(intent in f.detail for f in after.findings if f.category == "intent failed but filled")
    if transfer is not None:
        assert counts["transfer status differs"] == before["transfer status differs"] + 1
        assert counts["open transfer row"] == before["open transfer row"] + 1
    if payment is not None:
        assert counts["funding amount differs"] == before["funding amount differs"] + 1


def _journal(spot: str, short: str, spot_step: str = "0.1") -> dict:
    """A venue holding ``spot`` XRP and a short of ``short``, after one trade at 4 USDT."""
    trade = {"market": "spot", "symbol": "XRPUSDT", "id": 1, "orderId": 1, "side": "BUY", "price": "4",
             "qty": spot, "commission": "0", "commissionAsset": "XRP", "time": 1}  # fmt: skip
    return {
        "orders": [],
        "trades": [trade],
        "transfers": [],
        "income": [],
        "balances": {"XRP": {"free": spot, "locked": "0"}},
        "positions": [{"symbol": "XRPUSDT", "positionAmt": f"-{short}", "entryPrice": "4"}] if short != "0" else [],
        "markets": {
            "spot:XRPUSDT": {"stepSize": spot_step, "minNotional": "5"},
            "perp:XRPUSDT": {"stepSize": "1", "minNotional": "5"},
        },
    }


def _ledger(state: str, spot: str, short: str, residue: str | None = None) -> dict:
    """The venue's ``spot`` is an open (or quarantined) pair's leg plus ``residue``, what a closed pair's fills
    left; the pair is short ``short``."""
    held = str(Decimal(spot) - Decimal(residue or 0))
    pairs = [{"id": 1, "symbol": "XRP/USDT", "state": state, "spot_qty": held, "perp_qty": short, "note": None}]
    buy = {"market": "spot", "symbol": "XRP/USDT", "side": "buy", "price": "4", "fee": "0", "fee_asset": "XRP"}
    fills = [{**buy, "venue_trade_id": "1", "quantity": held, "pair_id": 1}]
    if residue is not None:
        pairs.append({"id": 2, "symbol": "XRP/USDT", "state": "closed", "spot_qty": residue, "perp_qty": "0"})
        fills.append({**buy, "venue_trade_id": "2", "quantity": residue, "pair_id": 2})
    return {"orders": [], "fills": fills, "intents": [], "transfers": [], "funding_payments": [], "pairs": pairs}


def test_the_audit_tells_a_naked_leg_from_dust_and_a_healthy_quarantine() -> None:
    def check(journal: dict, ledger: dict) -> AuditReport:
        """The venue's trades are the ledger's fills (so only the legs differ between cases)."""
        journal["trades"] = [{**journal["trades"][0], "id": int(f["venue_trade_id"]), "qty": f["quantity"]}
                             for f in ledger["fills"]]  # fmt: skip
        return audit(journal, ledger, funding_until_ms=0)

    assert check(_journal("100.5", "100"), _ledger("open", "100.5", "100")).ok  # within a lot
    dust = check(_journal("101.2", "100"), _ledger("open", "101.2", "100"))
    assert dust.ok and len(dust.dust) == 1 and len(dust.beyond_lot) == 1  # 1.2 XRP = 4.80 USDT < 5 USDT
    naked = check(_journal("103", "100"), _ledger("open", "103", "100"))
    assert naked.counts()["naked leg"] == 1 and naked.naked_usdt["XRPUSDT"] == 12
    # an open pair's 0.9 gross-up plus 1.96 XRP of closed pairs' residue that floors to 1 XRP (4 USDT)
    residue = check(_journal("102.86", "100", spot_step="1"), _ledger("open", "102.86", "100", residue="1.96"))
    assert residue.ok and len(residue.dust) == 1, residue.findings
    sellable = check(_journal("103.2", "100", spot_step="1"), _ledger("open", "103.2", "100", residue="2.3"))
    assert sellable.counts()["naked leg"] == 1  # 2 XRP = 8 USDT could have been swept
    quarantined = check(_journal("100", "100"), _ledger("quarantined", "100", "100"))
    assert quarantined.counts() == {"healthy pair quarantined": 1}
    wrong = check(_journal("100", "100"), _ledger("quarantined", "100", "0"))
    assert wrong.counts() == {"ledger legs differ from venue": 1}
