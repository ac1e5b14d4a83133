"""Money figures of a finished backtest, read back from its ledger (the same facts the operator sees).

Fees are converted to USDT at the fill price when charged in the base asset. Slippage is measured per
fill against the replayed reference price of that market at the fill instant (what the sim's book is
built around): buying above it or selling below it is a cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from bot.backtest.result import Summary, SymbolRow, Timeline, annualised, max_drawdown
from bot.domain import Leg, Side, spot_symbol
from bot.ledger.models import TransferStatus
from bot.ledger.repository import Ledger

RefPrice = Callable[[Leg, str, int], float | None]  # (leg, unified spot symbol, ts) -> reference price


@dataclass
class LedgerFacts:
    """Per-fill and per-payment rows reduced to floats for analytics."""

    fills: list[tuple[int, str, Leg, Side, float, float, float, float]] = field(default_factory=list)
    # (ts, spot symbol, leg, side, qty, price, fee USDT, slippage USDT)
    funding: list[tuple[int, str, float]] = field(default_factory=list)  # (funding time, spot symbol, amount)
    transfers: list[tuple[int, float]] = field(default_factory=list)  # (ts, amount) done transfers


def fee_in_usdt(fee: Decimal, fee_asset: str | None, price: Decimal, symbol: str) -> Decimal:
    base, quote = spot_symbol(symbol).split("/")
    if fee_asset is None or fee_asset == quote:
        return fee
    if fee_asset == base:
        return fee * price
    raise ValueError(f"fee in {fee_asset} on {symbol}: no price to convert it to {quote}")


async def read_facts(ledger: Ledger, ref_price: RefPrice) -> LedgerFacts:
    facts = LedgerFacts()
    for f in await ledger.list_fills():
        sym = spot_symbol(f.symbol)
        fee = float(fee_in_usdt(f.fee, f.fee_asset, f.price, f.symbol))
        qty, price = float(f.quantity), float(f.price)
        ref = ref_price(f.market, sym, f.ts_ms)
        slip = 0.0 if ref is None else (price - ref) * qty * (1.0 if f.side is Side.BUY else -1.0)
        facts.fills.append((f.ts_ms, sym, f.market, f.side, qty, price, fee, slip))
    for p in await ledger.list_funding_payments():
        facts.funding.append((p.funding_time_ms, spot_symbol(p.symbol), float(p.amount)))
    for t in await ledger.list_transfers():
        if t.status is TransferStatus.DONE:
            facts.transfers.append((t.created_ms, float(t.amount)))
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
    data_notes: dict[str, dict[str, object]],
) -> tuple[Summary, list[SymbolRow]]:
    hours = len(tl.ts_ms)
    final = float(tl.equity[-1]) if hours else capital
    net = final - capital
    funding = sum(f[2] for f in facts.funding)
    fees = sum(f[6] for f in facts.fills)
    slippage = sum(f[7] for f in facts.fills)
    dd, dd_usdt = max_drawdown(tl.equity, capital)
    ratios = tl.collateral_ratio[~np.isnan(tl.collateral_ratio)]
    in_market = float(np.mean(tl.notional > 0)) if hours else 0.0
    summary = Summary(
        strategy=strategy,
        capital=capital,
        start_ms=int(tl.ts_ms[0]) if hours else 0,
        end_ms=int(tl.ts_ms[-1]) + 3_600_000 if hours else 0,
        hours=hours,
        final_equity=final,
        net_pnl=net,
        apr=annualised(net, capital, hours),
        funding_income=funding,
        fees=fees,
        basis_pnl=net - funding + fees,
        slippage=slippage,
        max_drawdown=dd,
        max_drawdown_usdt=dd_usdt,
        min_collateral_ratio=float(ratios.min()) if len(ratios) else None,
        liquidations=liquidations,
        transfers=len(facts.transfers),
        transfer_volume=sum(t[1] for t in facts.transfers),
        trades=len(facts.fills),
        time_in_market=in_market,
    )
    rows = []
    for binance_id, note in sorted(data_notes.items()):
        sym = f"{binance_id[:-4]}/USDT"
        fills = [f for f in facts.fills if f[1] == sym]
        pays = [f for f in facts.funding if f[1] == sym]
        rows.append(
            SymbolRow(
                symbol=sym,
                funding_income=sum(p[2] for p in pays),
                fees=sum(f[6] for f in fills),
                slippage=sum(f[7] for f in fills),
                trades=len(fills),
                hours_in_market=hours_in_market.get(sym, 0),
                settlements_paid=len(pays),
                gap_hours=int(note["gap_hours"]),  # type: ignore[call-overload]
                mark_fallback_hours=int(note["mark_fallback_hours"]),  # type: ignore[call-overload]
                interval_changes=len(note["interval_changes"]),  # type: ignore[arg-type]
            )
        )
    return summary, rows
