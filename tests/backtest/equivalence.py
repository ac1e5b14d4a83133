"""Run the same real-data window twice (a shortcut on and off) and compare everything the ledger and the
timeline hold, so each backtest shortcut is proven to change speed only."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestParams
from bot.backtest.result import BacktestResult
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.domain import DAY_MS
from bot.ledger.models import BalanceSnapshot, Event
from bot.ledger.repository import Ledger
from bot.sim.history import bundled_data_dir

WINDOW_START = 1_735_689_600_000  # 2025-01-01 00:00 UTC: the bundled data starts here and carry trades at once
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def run_window(
    out: Path,
    params: BacktestParams,
    days: int = 4,
    strategy: str = "carry",
    symbols: list[str] | None = None,
    start_day: int = 0,
) -> BacktestResult:
    syms = symbols or SYMBOLS
    start = WINDOW_START + start_day * DAY_MS
    end = start + days * DAY_MS
    ds = load_dataset(bundled_data_dir(), syms, start, end)
    spec = BacktestSpec(bundled_data_dir(), syms, start, end, Decimal(100000), strategy, params, out_dir=out)
    return asyncio.run(run_backtest(spec, ds))


async def _facts(url: str) -> dict[str, Any]:
    ledger = await Ledger.open(url, migrate=False)
    try:
        fills = await ledger.list_fills()
        pays = await ledger.list_funding_payments()
        transfers = await ledger.list_transfers()
        pairs = await ledger.list_pairs()
        async with ledger.engine.connect() as conn:
            snaps = (
                await conn.execute(
                    select(BalanceSnapshot.ts_ms, BalanceSnapshot.wallet, BalanceSnapshot.asset, BalanceSnapshot.total)
                )
            ).all()
            logged = (await conn.execute(select(Event.ts_ms, Event.kind, Event.message, Event.details))).all()
    finally:
        await ledger.close()
    return {
        "fills": sorted((f.ts_ms, f.market.value, f.side.value, f.quantity, f.price, f.fee) for f in fills),
        "funding": sorted((p.symbol, p.funding_time_ms, p.amount) for p in pays),
        "transfers": sorted(
            (t.created_ms, t.from_wallet.value, t.to_wallet.value, t.amount, t.status.value) for t in transfers
        ),
        "pairs": sorted((p.symbol, p.state.value, p.spot_qty, p.perp_qty) for p in pairs),
        "balances": sorted((r[0], str(r[1]), r[2], Decimal(r[3])) for r in snaps),
        "events": sorted((r[0], str(r[1]), r[2]) for r in logged if not _scan_only(str(r[1]), r[3])),
    }


PASSIVE = ("hold", "skip")


def _scan_only(kind: str, details: dict | None) -> bool:
    """A hold or skip decision: what a scan writes when nothing trades, the rows a shortcut that skips
    provably quiet scans leaves out (bot/backtest/fastforward.py, the idle skip in runner.py). Every other
    event is compared."""
    return kind == "decision" and (details or {}).get("action") in PASSIVE


def facts(result: BacktestResult) -> dict[str, Any]:
    """Fills, funding payments, transfers and final pairs in the run's ledger, exactly (Decimal)."""
    return ledger_facts(result.ledger_url)


def ledger_facts(url: str) -> dict[str, Any]:
    """``facts`` of the ledger at ``url``."""
    return asyncio.run(_facts(url))


def with_options(base: BacktestParams | None = None, **update: Any) -> BacktestParams:
    base = base or BacktestParams()
    return BacktestParams(base.strategy, base.treasury, base.execution, base.options.model_copy(update=update))


def assert_same_run(a: BacktestResult, b: BacktestResult, rel: float = 0.0) -> dict[str, Any]:
    """Same ledger facts exactly; the timeline to the float bit (``rel=0``) or within ``rel`` (rows a
    shortcut computes in float from the same prices, far below a cent)."""
    fa, fb = facts(a), facts(b)
    assert fa == fb
    for name in ("equity", "collateral_ratio", "notional"):
        xa, xb = getattr(a.timeline, name), getattr(b.timeline, name)
        assert list(np.isnan(xa)) == list(np.isnan(xb)), name
        if rel == 0:
            assert list(np.nan_to_num(xa)) == list(np.nan_to_num(xb)), name
        else:
            np.testing.assert_allclose(np.nan_to_num(xa), np.nan_to_num(xb), rtol=rel, atol=0, err_msg=name)
    assert a.summary.funding_income == b.summary.funding_income
    assert abs(a.summary.net_pnl - b.summary.net_pnl) < 0.005
    return fa
