"""The carry's goals (issue "Carry that earns"), measured: carry against always-on over the same symbols.

Run: ``.venv/bin/python benchmarks/carry_goals.py [--shared ../shared/data] [--windows bundled,whole,2024]
[--config F]``. Windows: ``bundled`` (the bundled set, ``fundbot backtest`` defaults), ``pre2024`` (the
shared history before 2024-01-01: where the defaults were chosen, docs/carry-defaults.md), ``whole`` (the
whole shared history) and ``2024`` (the shared history from 2024-01-01). Each window runs the carry and
``always-on`` (every symbol, equal shares of the carry's total cap) with the same parameters, one process
each. Per window it prints net PnL and APR on the starting capital and on the capital each deployed on
average (notional x capital per notional), fees against funding, the carry's median hold against its
median break-even at entry, and what the market offered: the funding APR an always-held short would
have earned on each symbol of the window (equal-weighted mean, and how many symbols paid it positive).
Then each goal, met or unmet. Figures on stderr as they come, one JSON line on stdout at the end.
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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from bot.backtest.cli import parse_time
from bot.backtest.data import load_dataset
from bot.backtest.params import BacktestParams, load_backtest_params
from bot.backtest.runner import BacktestSpec, run_backtest
from bot.domain import HOUR_MS
from bot.sim.history import bundled_data_dir

CAPITAL = Decimal(100000)
HOURS_PER_YEAR = 8760.0
SPLIT = "2024-01-01"
ENTRY_RULES = ("enter", "enter_switch")


@dataclass
class Window:
    name: str
    data: Path
    start: str | None
    end: str | None


def _windows(shared: Path) -> dict[str, Window]:
    return {
        "bundled": Window("bundled set (2025-01 to 2026-05, defaults)", bundled_data_dir(), None, None),
        "pre2024": Window("shared history before 2024 (tuning window)", shared, None, "2023-12-31"),
        "whole": Window("whole shared history", shared, None, None),
        "2024": Window("shared history from 2024-01-01 (out of sample)", shared, SPLIT, None),
    }


def _run(args: tuple[Window, str, BacktestParams, str]) -> dict[str, Any]:
    """One strategy on one window (in a worker process): its summary and what the goals read."""
    window, strategy, params, out = args
    spec = BacktestSpec(
        window.data,
        None,
        parse_time(window.start, "--start"),
        parse_time(window.end, "--end"),
        CAPITAL,
        strategy,
        params,
        out_dir=Path(out),
    )
    result = asyncio.run(run_backtest(spec))
    s = result.summary
    years = s.hours / HOURS_PER_YEAR
    deployed = float(np.mean(result.timeline.notional)) * float(params.strategy.capital_per_notional)
    row: dict[str, Any] = {
        "net_pnl": s.net_pnl,
        "apr": s.apr,
        "funding": s.funding_income,
        "fees": s.fees,
        "slippage": s.slippage,
        "fills": s.trades,
        "time_in_market": s.time_in_market,
        "deployed_capital": deployed,
        "apr_on_deployed": s.net_pnl / deployed / years if deployed > 0 and years > 0 else 0.0,
        "fees_over_funding": s.fees / s.funding_income if s.funding_income > 0 else float("inf"),
    }
    if strategy == "carry":
        row.update(_holds(Path(out) / "ledger.db", s.end_ms))
    return row


def _holds(ledger: Path, end_ms: int) -> dict[str, Any]:
    """Each pair's hold (to its close, or to the run's end while open) and the break-even its entry
    decision recorded; medians over the pairs."""
    con = sqlite3.connect(ledger)
    try:
        pairs = con.execute("select id, opened_ms, closed_ms from pairs where opened_ms is not null").fetchall()
        rows = con.execute(
            "select pair_id, json_extract(details, '$.target.reason.rule'), "
            "json_extract(details, '$.target.reason.economics.break_even_hours') from events "
            "where kind = 'decision' and pair_id is not null order by id"
        ).fetchall()
    finally:
        con.close()
    break_even: dict[int, float] = {}
    for pair_id, rule, be in rows:
        if rule in ENTRY_RULES and pair_id not in break_even and be is not None:
            break_even[pair_id] = float(be)
    holds = [((closed or end_ms) - opened) / HOUR_MS for _, opened, closed in pairs]
    closed = [((c - o) / HOUR_MS) for _, o, c in pairs if c is not None]
    return {
        "pairs": len(pairs),
        "median_hold_h": statistics.median(holds) if holds else 0.0,
        "median_closed_hold_h": statistics.median(closed) if closed else None,
        "median_break_even_h": statistics.median(break_even.values()) if break_even else None,
    }


def market_offer(window: Window) -> dict[str, Any]:
    """The funding an always-held short of each symbol would have earned in the window, per unit of
    notional (APR over the hours the symbol traded): what any strategy had to work with."""
    ds = load_dataset(window.data, None, parse_time(window.start, "--start"), parse_time(window.end, "--end"))
    aprs = {}
    for s in ds.series.values():
        if s.first_ms is None or s.last_ms is None or s.last_ms <= s.first_ms:
            continue
        inside = (s.funding_ts > s.first_ms) & (s.funding_ts <= s.last_ms)
        hours = (s.last_ms - s.first_ms) / HOUR_MS
        aprs[s.unified] = float(s.funding_rate[inside].sum()) / hours * HOURS_PER_YEAR
    values = sorted(aprs.values(), reverse=True)
    return {
        "symbols": len(values),
        "mean_funding_apr": statistics.fmean(values) if values else 0.0,
        "positive_symbols": sum(v > 0 for v in values),
        "best4_mean_funding_apr": statistics.fmean(values[:4]) if values else 0.0,
    }


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"), help="the shared history folder")
    ap.add_argument("--windows", default="bundled,whole,2024", help="comma list of bundled,pre2024,whole,2024")
    ap.add_argument("--config", type=Path, default=None, help="strategy parameters (as fundbot backtest --config)")
    ap.add_argument("--workers", type=int, default=2, help="processes (carry and always-on run side by side)")
    args = ap.parse_args()
    params = load_backtest_params(args.config)
    known = _windows(args.shared)
    names = [w.strip() for w in args.windows.split(",") if w.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        sys.exit(f"--windows: unknown {', '.join(bad)}; choose from {', '.join(known)}")
    out: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        for name in names:
            w = known[name]
            jobs = {s: pool.submit(_run, (w, s, params, f"{tmp}/{name}-{s}")) for s in ("carry", "always-on")}
            offer = market_offer(w)
            carry, always = jobs["carry"].result(), jobs["always-on"].result()
            out[name] = {"window": w.name, "carry": carry, "always_on": always, "market": offer}
            _say(f"== {w.name}")
            for label, r in (("carry", carry), ("always-on", always)):
                _say(
                    f"  {label:9} net {r['net_pnl']:>11,.2f} USDT  APR {_pct(r['apr']):>7} on capital, "
                    f"{_pct(r['apr_on_deployed']):>7} on the {r['deployed_capital']:,.0f} USDT deployed on average; "
                    f"funding {r['funding']:,.0f}, fees {r['fees']:,.0f} ({r['fees_over_funding']:.2f} of funding), "
                    f"{r['fills']} fills, in market {_pct(r['time_in_market'])}"
                )
            be = carry.get("median_break_even_h")
            _say(
                f"  carry holds: {carry['pairs']} pairs, median hold {carry['median_hold_h']:.0f} h (closed ones: "
                f"{carry['median_closed_hold_h'] or 0:.0f} h) against median break-even at entry "
                f"{be if be is not None else float('nan'):.0f} h"
            )
            _say(
                f"  market: {offer['symbols']} symbols, an always-held short earned {_pct(offer['mean_funding_apr'])} "
                f"APR of notional on average ({offer['positive_symbols']} positive; the best four "
                f"{_pct(offer['best4_mean_funding_apr'])}, known only afterwards)"
            )
    goals = _goals(out)
    for g in goals:
        _say(f"  [{'met' if g['met'] else 'UNMET'}] {g['goal']}: {g['figures']}")
    print(json.dumps({"windows": out, "goals": goals}, default=str))


def _goals(out: dict[str, Any]) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []

    def add(goal: str, met: bool, figures: str) -> None:
        goals.append({"goal": goal, "met": bool(met), "figures": figures})

    if "bundled" in out:
        c, a = out["bundled"]["carry"], out["bundled"]["always_on"]
        add(
            "bundled: carry net PnL > 0 and > always-on",
            c["net_pnl"] > 0 and c["net_pnl"] > a["net_pnl"],
            f"carry {c['net_pnl']:,.2f} vs always-on {a['net_pnl']:,.2f}",
        )
    for name in ("whole", "2024", "pre2024"):
        if name in out:
            c, a = out[name]["carry"], out[name]["always_on"]
            add(
                f"{name}: carry APR above always-on at the same capital use",
                c["apr_on_deployed"] > a["apr_on_deployed"],
                f"on deployed capital {_pct(c['apr_on_deployed'])} vs {_pct(a['apr_on_deployed'])} "
                f"(on starting capital {_pct(c['apr'])} vs {_pct(a['apr'])})",
            )
    for name, w in out.items():
        c = w["carry"]
        add(
            f"{name}: fees at most half of funding",
            c["fees_over_funding"] <= 0.5,
            f"fees {c['fees']:,.0f} / funding {c['funding']:,.0f} = {c['fees_over_funding']:.2f}",
        )
        be = c.get("median_break_even_h")
        add(
            f"{name}: median hold >= median break-even at entry",
            be is not None and c["median_hold_h"] >= be,
            f"{c['median_hold_h']:.0f} h vs {be if be is not None else float('nan'):.0f} h",
        )
    return goals


if __name__ == "__main__":
    main()
