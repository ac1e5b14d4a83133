"""The backtest report: summary.json, a per-symbol CSV, PNG plots and one self-contained HTML page."""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.backtest.analytics import RATIO_BASIS, MonthRow, round_trip_stats
from bot.backtest.plots import write_plots
from bot.backtest.predictor import tracking_lines
from bot.backtest.result import BacktestResult, Summary
from bot.ledger.round_trips import RoundTrip

_SUMMARY_ROWS: list[tuple[str, str, str]] = [
    # (field, label, format)
    ("final_equity", "Final equity (USDT)", "usd"),
    ("net_pnl", "Net PnL (USDT)", "usd"),
    ("apr", "APR", "pct"),
    ("funding_income", "Funding income (USDT)", "usd"),
    ("fees", "Fees (USDT)", "usd"),
    ("basis_pnl", "Price/basis PnL (USDT, incl. slippage)", "usd"),
    ("slippage", "Slippage vs the decision mid (USDT)", "usd"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_usdt", "Max drawdown (USDT)", "usd"),
    ("min_collateral_ratio", "Min collateral ratio", "ratio"),
    ("liquidations", "Liquidations", "int"),
    ("transfers", "Transfers", "int"),
    ("transfer_volume", "Transfer volume (USDT)", "usd"),
    ("trades", "Fills", "int"),
    ("time_in_market", "Time in market", "pct"),
    ("sharpe", "Sharpe (daily, annualised)", "x"),
    ("sortino", "Sortino (daily, annualised)", "x"),
    ("calmar", "Calmar (APR / max drawdown)", "x"),
]


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "usd":
        return f"{value:,.2f}"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "ratio":
        return f"{value:.4f}"
    if kind == "x":
        return f"{value:.2f}"
    if kind == "h":
        return f"{value:,.1f}"
    return str(value)


def _day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def summary_lines(result: BacktestResult) -> list[tuple[str, str]]:
    s = result.summary
    return [(label, _fmt(getattr(s, name), kind)) for name, label, kind in _SUMMARY_ROWS]


def data_warnings(result: BacktestResult) -> list[str]:
    """Sentences about gaps, mark fallbacks and interval changes, for the text and HTML reports."""
    out = []
    for sym, note in sorted(result.data_notes.items()):
        if note.get("first_ms") is None:
            out.append(f"{sym}: no hour with both spot and perp data in the window; not traded.")
            continue
        if note["first_ms"] > result.summary.start_ms:
            out.append(f"{sym}: data starts {_day(note['first_ms'])}; not traded before.")
        if note["last_ms"] is not None and note["last_ms"] + 3_600_000 < result.summary.end_ms:
            out.append(f"{sym}: data ends {_day(note['last_ms'])}; not traded after (pairs closed before).")
        if note["gap_hours"]:
            spans = ", ".join(
                f"{_day(g['start_ms'])} +{(g['end_ms'] - g['start_ms']) // 3_600_000}h ({'/'.join(g['legs'])})"
                for g in note["gaps"][:5]
            )
            more = "" if len(note["gaps"]) <= 5 else f" and {len(note['gaps']) - 5} more"
            out.append(f"{sym}: {note['gap_hours']} gap hours not traded: {spans}{more}.")
        if note["mark_fallback_hours"]:
            why = "no mark-price file" if note["mark_file_missing"] else "mark candles missing"
            out.append(
                f"{sym}: {why}; the perp close stands in for the mark price for {note['mark_fallback_hours']} hours."
            )
        for c in note["interval_changes"]:
            out.append(f"{sym}: funding interval {c['old_hours']}h -> {c['new_hours']}h at {_day(c['ts_ms'])}.")
        for a, b in note.get("minute_windows", []):
            out.append(f"{sym}: 1-minute collateral checks {_day(a)} .. {_day(b)}.")
    return out


def _write_csv(rows: list[dict[str, Any]], path: Path, fields: list[str] | None = None) -> Path:
    """The rows under a header (the header alone when there are none and ``fields`` names the columns)."""
    with path.open("w", newline="") as fh:
        names = list(rows[0]) if rows else fields
        if names:
            writer = csv.DictWriter(fh, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
    return path


def write_symbols_csv(result: BacktestResult, path: Path) -> Path:
    """Symbols ever held or paid (the never-traded ones are listed in summary.json's untraded_symbols)."""
    return _write_csv([r.to_dict() for r in result.traded_symbols], path)


def untraded_line(result: BacktestResult) -> str | None:
    names = result.untraded_symbols
    if not names:
        return None
    return f"{len(names)} symbol(s) never traded (no fill, no funding, never held): {', '.join(names)}."


def round_trip_line(result: BacktestResult) -> str:
    st = round_trip_stats(result.round_trips)
    if not st["count"]:
        return "No round trip: no pair was entered."
    med_be = "-" if st["median_break_even_hours"] is None else f"{st['median_break_even_hours']:,.1f} h"
    net = "-" if st["net"] is None else f"{st['net']:,.2f}"
    return (
        f"{st['count']} round trips ({st['closed']} closed): median hold {st['median_hold_hours']:,.1f} h "
        f"against a median break-even at entry of {med_be}; {st['held_past_break_even']} of "
        f"{st['with_break_even']} held past their break-even; {st['winners']} net positive; funding "
        f"{st['funding']:,.2f}, fees {st['fees']:,.2f}, net {net} USDT."
    )


def _when(ts_ms: int | None) -> str:
    return "open" if ts_ms is None else _day(ts_ms)


def _round_trip_rows(result: BacktestResult) -> list[list[str]]:
    return [
        [
            t.symbol,
            _when(t.entry_ms),
            f"{t.entry_rule}: {t.entry_reason}".strip(": "),
            _when(t.exit_ms),
            f"{t.exit_rule}: {t.exit_reason}".strip(": "),
            _fmt(t.hold_hours, "h"),
            "-" if t.break_even_hours is None else _fmt(t.break_even_hours, "h"),
            str(t.actions),
            _fmt(t.funding, "usd"),
            _fmt(t.fees, "usd"),
            _fmt(t.price, "usd"),
            _fmt(t.net, "usd"),
        ]
        for t in result.round_trips
    ]


def _monthly_rows(result: BacktestResult) -> list[list[str]]:
    return [
        [
            m.month,
            _fmt(m.start_equity, "usd"),
            _fmt(m.end_equity, "usd"),
            _fmt(m.pnl, "usd"),
            _fmt(m.ret, "pct"),
            _fmt(m.funding, "usd"),
            _fmt(m.fees, "usd"),
        ]
        for m in result.monthly
    ]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _baseline_rows(result: BacktestResult) -> list[list[str]]:
    runs: list[tuple[str, Summary]] = [(result.summary.strategy, result.summary), *result.baselines.items()]
    return [
        [
            name,
            _fmt(s.net_pnl, "usd"),
            _fmt(s.apr, "pct"),
            _fmt(s.funding_income, "usd"),
            _fmt(s.fees, "usd"),
            _fmt(s.max_drawdown, "pct"),
            _fmt(s.sharpe, "x"),
            _fmt(s.sortino, "x"),
            _fmt(s.calmar, "x"),
            _fmt(s.time_in_market, "pct"),
        ]
        for name, s in runs
    ]


def render_html(result: BacktestResult, images: dict[str, Path]) -> str:
    s = result.summary
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>fundbot backtest: {html.escape(s.strategy)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%}</style></head><body>",
        f"<h1>Backtest: {html.escape(s.strategy)}</h1>",
        f"<p>{_day(s.start_ms)} to {_day(s.end_ms)} UTC ({s.hours} hours), capital {s.capital:,.2f} USDT. "
        f"Ledger: <code>{html.escape(result.ledger_url)}</code></p>",
        "<h2>Summary</h2>",
        _table(["", "value"], [[a, b] for a, b in summary_lines(result)]),
        f"<p>Ratios: {html.escape(RATIO_BASIS)}.</p>",
        "<h2>Against the baselines (same data, same costs)</h2>",
        _table(
            ["strategy", "net PnL", "APR", "funding", "fees", "max DD", "Sharpe", "Sortino", "Calmar", "in market"],
            _baseline_rows(result),
        ),
        "<h2>Monthly returns</h2>",
        _table(
            ["month (UTC)", "start equity", "end equity", "PnL", "return", "funding", "fees"], _monthly_rows(result)
        ),
        "<h2>Round trips</h2>",
        f"<p>{html.escape(round_trip_line(result))}</p>",
        _table(
            [
                "symbol",
                "entry",
                "why",
                "exit",
                "why",
                "hold h",
                "break-even h at entry",
                "actions",
                "funding",
                "fees",
                "price",
                "net",
            ],
            _round_trip_rows(result),
        )
        if result.round_trips
        else "",
        "<h2>Per symbol</h2>",
        _table(
            [
                "symbol",
                "funding",
                "fees",
                "slippage",
                "fills",
                "hours in market",
                "settlements paid",
                "gap hours",
                "mark fallback h",
                "interval changes",
            ],
            [
                [
                    r.symbol,
                    _fmt(r.funding_income, "usd"),
                    _fmt(r.fees, "usd"),
                    _fmt(r.slippage, "usd"),
                    str(r.trades),
                    str(r.hours_in_market),
                    str(r.settlements_paid),
                    str(r.gap_hours),
                    str(r.mark_fallback_hours),
                    str(r.interval_changes),
                ]
                for r in result.traded_symbols
            ],
        ),
        f"<p>{html.escape(untraded)}</p>" if (untraded := untraded_line(result)) else "",
        "<h2>Charts</h2>",
    ]
    for name, path in images.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'></p>")
    tracking = tracking_lines(result.predictor)
    if tracking:
        parts.append("<h2>Predicted funding rate against the settled one</h2>")
        parts.append(
            "<p>The simulator quotes a predicted rate built from the replayed prices only (Binance's "
            "rule over the premium so far in the interval), never from the coming settlement. "
            "Measured at the last quote before each settlement:</p>"
        )
        parts.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in tracking) + "</ul>")
    warnings = data_warnings(result)
    parts.append("<h2>Data notes</h2>")
    parts.append(
        "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>"
        if warnings
        else "<p>No gaps, no mark fallback, no interval change in the window.</p>"
    )
    st = result.stats
    parts.append(
        f"<p>Run: {st.symbol_hours:,} symbol-hours in {st.seconds:.2f}s "
        f"({st.symbol_hours_per_second:,.0f}/s), {st.ticks_evaluated} ticks evaluated, "
        f"{st.ticks_skipped} skipped (nothing could change), {st.minute_checks} minute checks.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """Write everything into ``out_dir``; returns the paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    paths["summary"] = out_dir / "summary.json"
    paths["summary"].write_text(json.dumps(result.to_dict(), indent=2, default=str))
    paths["symbols"] = write_symbols_csv(result, out_dir / "symbols.csv")
    paths["round_trips"] = _write_csv(
        [t.to_dict() for t in result.round_trips],
        out_dir / "round_trips.csv",
        [f.name for f in fields(RoundTrip)] + ["held_past_break_even"],
    )
    paths["monthly"] = _write_csv(
        [m.to_dict() for m in result.monthly], out_dir / "monthly.csv", [f.name for f in fields(MonthRow)]
    )
    images = write_plots(result, out_dir)
    paths.update(images)
    paths["html"] = out_dir / "report.html"
    paths["html"].write_text(render_html(result, images))
    return paths
