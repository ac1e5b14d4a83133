"""Maker-first against taker execution (issue 18): the carry backtest run twice on the same data, once with
``[execution] style = "taker"`` and once with ``"maker"``, everything else equal, side by side.

Run: ``.venv/bin/python benchmarks/maker_vs_taker.py [--data DIR] [--symbols A,B] [--start] [--end]
[--config F]`` (default: the bundled set, ``fundbot backtest`` defaults). The two runs go in two processes.

Per style it prints: fees, slippage (against each action's reference mid), funding and net PnL (from the
backtest summary); the share of fill notional done as maker; time to complete an action (its first intent
to its last fill; median and max); the largest leg mismatch seen (at each instant an action's fills
happened, spot held net of base-asset fees against the short, as a share of the action's quantity) and
the largest excess over the action's hedge tolerance (``maker_hedge_tolerance`` of its quantity, at least
one minimum order of either market at its price, as the worker allows; dust sweeps and BNB top-ups, one
spot order by design, left out); and the round-trip cost as a share
of notional: (fees + slippage) / (fill notional / 4), since a round trip trades its notional four times
(spot and perp, in and out). One JSON line on stdout at the end.

``--styles maker`` runs one style only (to try settings: the taker run does not depend on them);
``--keep DIR`` keeps each run's output folder (ledger, summary) under DIR/<style>.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.backtest.cli import parse_time
from bot.backtest.params import BacktestParams, load_backtest_params
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.domain import MarketFilters
from bot.execution.dust import SWEEP_STEP as DUST
from bot.execution.ids import parse_order_id
from bot.execution.plan import min_sendable_qty
from bot.sim.history import bundled_data_dir
from bot.sim.markets import default_spec
from bot.treasury.bnb import TOPUP_KEY

CAPITAL = Decimal(100000)
STYLES = ("taker", "maker")


def _run(args: tuple[Path, list[str] | None, str | None, str | None, BacktestParams, str, str]) -> dict[str, Any]:
    data, symbols, start, end, params, style, out = args
    params = BacktestParams(
        params.strategy, params.treasury, params.execution.model_copy(update={"style": style}), params.options
    )
    spec = BacktestSpec(
        data,
        symbols,
        parse_time(start, "--start"),
        parse_time(end, "--end"),
        CAPITAL,
        "carry",
        params,
        out_dir=Path(out),
    )
    s = asyncio.run(run_backtest(spec)).summary
    row: dict[str, Any] = {
        "style": style,
        "net_pnl": s.net_pnl,
        "funding": s.funding_income,
        "fees": s.fees,
        "slippage": s.slippage,
        "fills": s.trades,
    }
    row.update(execution_figures(Path(out) / "ledger.db", params.execution.maker_hedge_tolerance))
    cost = row["fees"] + row["slippage"]
    row["round_trip_cost"] = cost / (row["fill_notional"] / 4) if row["fill_notional"] else 0.0
    return row


def _floor(symbol: str, price: Decimal) -> Decimal:
    """The larger of both markets' smallest orders at ``price``: the least tolerance the worker allows."""
    sym = symbol.replace("/", "")
    out = Decimal(0)
    for market in ("spot", "perp"):
        spec = default_spec(market, sym, float(price))
        filters = MarketFilters(symbol, spec.tick_size, spec.step_size, spec.min_qty, spec.min_notional)
        out = max(out, min_sendable_qty(filters, price))
    return out


def execution_figures(ledger: Path, tolerance: Decimal = Decimal("0.02")) -> dict[str, Any]:
    """Time to complete, largest leg mismatch (and beyond the action's tolerance) and maker share, from the
    ledger's intents and fills."""
    con = sqlite3.connect(ledger)
    try:
        intents = con.execute("select client_id, created_ms from intents where kind = 'order'").fetchall()
        fills = con.execute(
            "select client_order_id, market, side, quantity, price, fee, fee_asset, is_maker, ts_ms, symbol "
            "from fills where client_order_id is not null"
        ).fetchall()
    finally:
        con.close()
    start: dict[tuple[str, int], int] = {}
    for cid, created in intents:
        parsed = parse_order_id(cid)
        if parsed is None:
            continue
        key = (parsed[0], parsed[1])
        start[key] = min(start.get(key, created), created)
    by_action: dict[tuple[str, int], list[Any]] = defaultdict(list)
    notional = maker_notional = 0.0
    leg_notional: dict[str, float] = defaultdict(float)
    leg_maker: dict[str, float] = defaultdict(float)
    for row in fills:
        parsed = parse_order_id(row[0])
        if parsed is None:
            continue
        by_action[(parsed[0], parsed[1])].append(row)
        n = float(Decimal(row[3]) * Decimal(row[4]))
        notional += n
        maker_notional += n if row[7] else 0.0
        leg_notional[row[1]] += n
        leg_maker[row[1]] += n if row[7] else 0.0
    durations, mismatches, excess = [], [], []
    for key, rows in by_action.items():
        if key[0] == TOPUP_KEY or all(parse_order_id(r[0])[3] == DUST for r in rows):  # type: ignore[index]
            continue  # a BNB top-up or a dust sweep: one spot order by design, no hedge to keep
        durations.append((max(r[8] for r in rows) - start.get(key, min(r[8] for r in rows))) / 1000)
        spot = short = Decimal(0)
        worst = Decimal(0)
        base = rows[0][9].split("/")[0]
        for ts in sorted({r[8] for r in rows}):
            for _, market, side, qty, _price, fee, fee_asset, _m, t, _s in rows:
                if t != ts:
                    continue
                q = Decimal(qty)
                if market == "spot":
                    net = q - (Decimal(fee) if fee_asset == base and side == "buy" else Decimal(0))
                    spot += net if side == "buy" else -q
                else:
                    short += q if side == "sell" else -q
            worst = max(worst, abs(abs(spot) - abs(short)))
        size = max(abs(spot), abs(short))  # the action's quantity: what its fills moved the legs by
        mismatches.append(float(worst / size) if size else 0.0)
        allowed = max(size * tolerance, _floor(rows[0][9], Decimal(rows[0][4])))
        excess.append(float((worst - allowed) / size) if size and worst > allowed else 0.0)
    return {
        "actions": len(by_action),
        "fill_notional": notional,
        "maker_share": maker_notional / notional if notional else 0.0,
        "median_complete_s": statistics.median(durations) if durations else 0.0,
        "max_complete_s": max(durations, default=0.0),
        "max_leg_mismatch": max(mismatches, default=0.0),
        "max_beyond_tolerance": max(excess, default=0.0),
        "actions_beyond_tolerance": sum(1 for e in excess if e > 0),
        "maker_share_spot": leg_maker["spot"] / leg_notional["spot"] if leg_notional["spot"] else 0.0,
        "maker_share_perp": leg_maker["perp"] / leg_notional["perp"] if leg_notional["perp"] else 0.0,
    }


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=bundled_data_dir(), help="history folder (default: bundled)")
    ap.add_argument("--symbols", default=None, help="comma list (default: every symbol of the data)")
    ap.add_argument("--start", default=None)
    ap.add_argument("--end", default=None)
    ap.add_argument("--config", type=Path, default=None, help="as fundbot backtest --config (style is overridden)")
    ap.add_argument("--styles", default=",".join(STYLES), help="comma list of the styles to run (default: both)")
    ap.add_argument("--keep", type=Path, default=None, help="keep each run's output folder under DIR/<style>")
    args = ap.parse_args()
    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    if not styles or any(s not in STYLES for s in styles):
        ap.error(f"--styles: a comma list of {', '.join(STYLES)}")
    params = load_backtest_params(args.config)
    symbols = [s.strip() for s in args.symbols.split(",")] if args.symbols else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(len(styles), mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        root = args.keep if args.keep is not None else Path(tmp)
        jobs = {
            style: pool.submit(_run, (args.data, symbols, args.start, args.end, params, style, str(root / style)))
            for style in styles
        }
        rows = {style: job.result() for style, job in jobs.items()}
    lines = [
        ("net PnL (USDT)", "net_pnl", "{:,.2f}"),
        ("funding (USDT)", "funding", "{:,.2f}"),
        ("fees (USDT)", "fees", "{:,.2f}"),
        ("slippage (USDT)", "slippage", "{:,.2f}"),
        ("fills", "fills", "{}"),
        ("actions", "actions", "{}"),
        ("fill notional (USDT)", "fill_notional", "{:,.0f}"),
        ("maker share of notional", "maker_share", "{:.1%}"),
        ("  of the spot leg", "maker_share_spot", "{:.1%}"),
        ("  of the perp leg", "maker_share_perp", "{:.1%}"),
        ("round-trip cost % of notional", "round_trip_cost", "{:.3%}"),
        ("time to complete, median (s)", "median_complete_s", "{:.0f}"),
        ("time to complete, max (s)", "max_complete_s", "{:.0f}"),
        ("largest leg mismatch (share)", "max_leg_mismatch", "{:.2%}"),
        ("  beyond its tolerance (share)", "max_beyond_tolerance", "{:.2%}"),
        ("  actions beyond tolerance", "actions_beyond_tolerance", "{}"),
    ]
    _say(f"{'':32} " + " ".join(f"{style:>14}" for style in styles))
    for label, key, fmt in lines:
        _say(f"{label:32} " + " ".join(f"{fmt.format(rows[style][key]):>14}" for style in styles))
    if len(styles) < len(STYLES):
        print(json.dumps(rows, default=str))
        return
    t, m = rows["taker"], rows["maker"]
    _say(
        f"maker/taker: fees x{m['fees'] / t['fees']:.3f}, "
        f"round-trip cost x{m['round_trip_cost'] / t['round_trip_cost']:.3f}, "
        f"net PnL {m['net_pnl'] - t['net_pnl']:+,.2f} USDT"
        if t["fees"] and t["round_trip_cost"]
        else "taker paid no fees: nothing to compare"
    )
    print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main()
