"""Money figures of a finished backtest, read back from its ledger (the same facts the operator sees).

Fees, funding and slippage are priced by ``bot.ledger.attribution`` (the one attribution ``fundbot
report`` uses too, so both agree to the cent); this module only turns them into the hourly timeline and
the summary, as floats for analytics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from bot.backtest.analytics import risk_ratios
from bot.backtest.result import Summary, SymbolRow, Timeline, annualised, max_drawdown
from bot.domain import ZERO, Leg, Side, unified_symbol
from bot.ledger.attribution import Attribution, attribute_ledger
from bot.ledger.models import TransferStatus
from bot.ledger.recorder import Recorder


@dataclass
class LedgerFacts:
    """The attributed ledger, plus per-fill and per-payment rows reduced to floats for the timeline."""

    attribution: Attribution = field(default_factory=Attribution)
    fills: list[tuple[int, str, Leg, Side, float, float, float, float]] = field(default_factory=list)
    # (ts, spot symbol, leg, side, qty, price, fee USDT, slippage USDT)
    funding: list[tuple[int, str, float]] = field(default_factory=list)  # (funding time, spot symbol, amount)
    transfers: list[tuple[int, Decimal]] = field(default_factory=list)  # (ts, amount) done transfers


async def read_facts(ledger: Recorder) -> LedgerFacts:
    att = await attribute_ledger(ledger)
    unconverted = [n for n in att.notes if "not converted" in n]
    if unconverted:  # the simulator charges fees in USDT or the base asset only
        raise ValueError(f"backtest ledger: {unconverted[0]}")
    facts = LedgerFacts(attribution=att)
    for c in att.fills:
        f = c.fill
        facts.fills.append(
            (
                f.ts_ms,
                c.symbol,
                f.market,
                f.side,
                float(f.quantity),
                float(f.price),
                float(c.fee or ZERO),
                float(c.slippage or ZERO),
            )
        )
    for p in att.payments:
        facts.funding.append((p.payment.funding_time_ms, p.symbol, float(p.amount or ZERO)))
    for t in await ledger.list_transfers():
        if t.status is TransferStatus.DONE:
            facts.transfers.append((t.created_ms, t.amount))
    return facts


def _cum_at(grid: np.ndarray, ts: list[int], values: list[float]) -> np.ndarray:
    """Cumulative sum of ``values`` booked at ``ts``, sampled at the end of each grid hour."""
    if not ts:
        return np.zeros(len(grid))
    order = np.argsort(np.asarray(ts, dtype=np.int64), kind="stable")
    t = np.asarray(ts, dtype=np.int64)[order]
    c = np.cumsum(np.asarray(values, dtype=np.float64)[order])
    hour_end = grid + 3_600_000
    k = np.searchsorted(t, hour_end, side="left")  # facts strictly before the hour's end
    return np.where(k > 0, c[np.maximum(k - 1, 0)], 0.0)


def fill_timeline(tl: Timeline, facts: LedgerFacts) -> None:
    """Cumulative funding, fees and slippage columns from the ledger facts."""
    grid = tl.ts_ms
    tl.funding_cum = _cum_at(grid, [f[0] for f in facts.funding], [f[2] for f in facts.funding])
    tl.fees_cum = _cum_at(grid, [f[0] for f in facts.fills], [f[6] for f in facts.fills])
    tl.slippage_cum = _cum_at(grid, [f[0] for f in facts.fills], [f[7] for f in facts.fills])
    for sym in list(tl.funding_by_symbol):
        rows = [f for f in facts.funding if f[1] == sym]
        tl.funding_by_symbol[sym] = _cum_at(grid, [r[0] for r in rows], [r[2] for r in rows])


def summarise(
    strategy: str,
    capital: float,
    tl: Timeline,
    facts: LedgerFacts,
    liquidations: int,
    hours_in_market: dict[str, int],
    data_notes: dict[str, dict[str, Any]],
) -> tuple[Summary, list[SymbolRow]]:
    hours = len(tl.ts_ms)
    final = float(tl.equity[-1]) if hours else capital
    net = final - capital
    total = facts.attribution.total()
    dd, dd_usdt = max_drawdown(tl.equity, capital)
    held_ratios = tl.collateral_ratio[~np.isnan(tl.collateral_ratio)]
    in_market = float(np.mean(tl.notional > 0)) if hours else 0.0
    apr = annualised(net, capital, hours)
    ratios = risk_ratios(tl.ts_ms, tl.equity, capital, apr, dd)
    summary = Summary(
        strategy=strategy,
        capital=capital,
        start_ms=int(tl.ts_ms[0]) if hours else 0,
        end_ms=int(tl.ts_ms[-1]) + 3_600_000 if hours else 0,
        hours=hours,
        final_equity=final,
        net_pnl=net,
        apr=apr,
        funding_income=float(total.funding),
        fees=float(total.fees),
        basis_pnl=net - float(total.funding) + float(total.fees),
        slippage=float(total.slippage),
        max_drawdown=dd,
        max_drawdown_usdt=dd_usdt,
        min_collateral_ratio=float(held_ratios.min()) if len(held_ratios) else None,
        liquidations=liquidations,
        transfers=len(facts.transfers),
        transfer_volume=float(sum((t[1] for t in facts.transfers), ZERO)),
        trades=len(facts.fills),
        time_in_market=in_market,
        sharpe=ratios.sharpe,
        sortino=ratios.sortino,
        calmar=ratios.calmar,
    )
    rows = []
    for binance_id, note in sorted(data_notes.items()):
        sym = unified_symbol(binance_id)
        c = facts.attribution.by_symbol.get(sym)
        rows.append(
            SymbolRow(
                symbol=sym,
                funding_income=float(c.funding) if c else 0.0,
                fees=float(c.fees) if c else 0.0,
                slippage=float(c.slippage) if c else 0.0,
                trades=c.fills if c else 0,
                hours_in_market=hours_in_market.get(sym, 0),
                settlements_paid=c.funding_payments if c else 0,
                gap_hours=int(note["gap_hours"]),
                mark_fallback_hours=int(note["mark_fallback_hours"]),
                interval_changes=len(note["interval_changes"]),
            )
        )
    return summary, rows
