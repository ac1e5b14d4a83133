"""A sweep's files in ``--out``: ``trials.csv``, ``best/*.toml`` (ready ``--config`` files), ``heatmap.png``,
``walkforward.csv`` / ``walkforward.png`` and one self-contained ``report.html``.

Sensitivity, per parameter: for each of its values the best and the mean objective over the feasible
trials that had it, and the spread of those means (how much the objective moves with that parameter
alone; the largest spread is the parameter that matters most).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from pathlib import Path
from typing import Any

from bot.format import iso_utc
from bot.sweep.engine import StudyOutcome, TrialRow
from bot.sweep.space import SweepSpace, Value
from bot.sweep.walkforward import WalkForward

METRIC_COLUMNS = (
    "apr",
    "sharpe",
    "calmar",
    "net_pnl",
    "max_drawdown",
    "liquidations",
    "trades",
    "funding_income",
    "fees",
    "time_in_market",
    "seconds",
)


def write_trials_csv(rows: list[TrialRow], space: SweepSpace, path: Path) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trial", *space.names, "state", "objective", "feasible", *METRIC_COLUMNS, "error"])
        for r in rows:
            m = r.metrics or {}
            w.writerow(
                [
                    r.number,
                    *(r.values.get(n) for n in space.names),
                    r.state,
                    "" if r.objective is None else r.objective,
                    r.feasible,
                    *(m.get(c, "") for c in METRIC_COLUMNS),
                    r.error or "",
                ]
            )
    return path


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a TOML basic string is a JSON string


def to_toml(doc: dict[str, dict[str, Any]], header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for section in ("strategy", "treasury", "execution", "backtest"):
        table = doc.get(section)
        if not table:
            continue
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def write_best_configs(
    best: list[TrialRow], space: SweepSpace, folder: Path, objective: str, prefix: str = "best"
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{prefix}-*.toml"):
        old.unlink()
    paths = []
    for rank, r in enumerate(best, 1):
        path = folder / f"{prefix}-{rank}.toml"
        header = (
            f"fundbot sweep: rank {rank} by {objective} = {r.objective:.6g} (trial {r.number})\n"
            f"use: fundbot backtest --config {path.name}"
        )
        path.write_text(to_toml(space.config(r.values), header))
        paths.append(path)
    return paths


def _float(v: Value) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def heatmap(rows: list[TrialRow], x: str, y: str, objective: str, path: Path) -> Path | None:
    """Best feasible objective for each (x, y) pair of values; None when fewer than one trial has both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = [r for r in rows if r.state == "ok" and r.feasible and r.objective is not None]
    if not ok:
        return None
    xs = sorted({r.values[x] for r in ok}, key=lambda v: (_float(v) is None, _float(v) or 0.0, str(v)))
    ys = sorted({r.values[y] for r in ok}, key=lambda v: (_float(v) is None, _float(v) or 0.0, str(v)))
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in ok:
        i, j = ys.index(r.values[y]), xs.index(r.values[x])
        grid[i, j] = r.objective if np.isnan(grid[i, j]) else max(grid[i, j], r.objective or 0.0)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(xs) + 3), max(4.0, 0.45 * len(ys) + 2)))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=45, ha="right")
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"best {objective} (feasible trials)")
    fig.colorbar(im, ax=ax)
    if len(xs) * len(ys) <= 150:
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", color="white", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sensitivity(rows: list[TrialRow], space: SweepSpace) -> list[dict[str, Any]]:
    """Per parameter: per value (count, best, mean) over feasible trials, and the spread of the means."""
    ok = [r for r in rows if r.state == "ok" and r.feasible and r.objective is not None]
    out = []
    for d in space.dimensions:
        by: dict[str, list[float]] = {}
        for r in ok:
            by.setdefault(str(r.values.get(d.name)), []).append(float(r.objective or 0.0))
        if d.choices is None:  # continuous: quartile buckets of the drawn values
            by = _buckets([(float(r.values[d.name]), float(r.objective or 0.0)) for r in ok])
        values: list[dict[str, Any]] = [
            {"value": k, "count": len(v), "best": max(v), "mean": sum(v) / len(v)} for k, v in by.items()
        ]
        means = [v["mean"] for v in values]
        out.append({"parameter": d.name, "values": values, "spread": (max(means) - min(means)) if means else 0.0})
    return sorted(out, key=lambda s: -s["spread"])


def _buckets(points: list[tuple[float, float]]) -> dict[str, list[float]]:
    if not points:
        return {}
    points.sort()
    n = len(points)
    k = min(4, n)
    out: dict[str, list[float]] = {}
    for b in range(k):
        part = points[b * n // k : (b + 1) * n // k]
        if part:
            out[f"{part[0][0]:.4g} to {part[-1][0]:.4g}"] = [p[1] for p in part]
    return out


def walkforward_plot(wf: WalkForward, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ts, eq = wf.stitched()
    if not len(ts):
        return None
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(ts.astype("datetime64[ms]"), eq, color="black", linewidth=1.4, label="out-of-sample equity (stitched)")
    for r in wf.results:  # where each test window starts
        # matplotlib's date units take a datetime64 here; its stubs say float
        ax.axvline(np.datetime64(r.pair.test[0], "ms"), color="grey", linewidth=0.6, alpha=0.5)  # type: ignore[arg-type]
    ax.axhline(wf.capital, color="grey", linewidth=0.8)
    ax.set_ylabel("USDT")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def walkforward_rows(wf: WalkForward) -> list[dict[str, Any]]:
    rows = []
    for r in wf.results:
        ins, oos = r.in_sample, r.out_of_sample
        rows.append(
            {
                "window": r.pair.index + 1,
                "train": f"{iso_utc(r.pair.train[0])} to {iso_utc(r.pair.train[1])}",
                "test": f"{iso_utc(r.pair.test[0])} to {iso_utc(r.pair.test[1])}",
                "trials": len(r.study.rows),
                "chosen": json.dumps(r.chosen.values, default=str) if r.chosen else "",
                "is_objective": ins.value(wf.objective) if ins else None,
                "oos_objective": oos.value(wf.objective) if oos else None,
                "is_apr": ins.apr if ins else None,
                "oos_apr": oos.apr if oos else None,
                "oos_max_drawdown": oos.max_drawdown if oos else None,
                "oos_liquidations": oos.liquidations if oos else None,
            }
        )
    return rows


def write_walkforward_csv(wf: WalkForward, path: Path) -> Path:
    rows = walkforward_rows(wf)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["window"])
        w.writeheader()
        w.writerows(rows)
    return path


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def render_html(
    title: str,
    facts: list[tuple[str, str]],
    study: StudyOutcome | None,
    space: SweepSpace,
    objective: str,
    top: int,
    heatmap_png: Path | None,
    heat_axes: tuple[str, str] | None,
    wf: WalkForward | None,
    wf_png: Path | None,
    notes: list[str],
) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>", _table(["", ""], [list(f) for f in facts])]
    for note in notes:
        parts.append(f'<p class="warn">{html.escape(note)}</p>')
    if study is not None:
        rows = study.rows
        best = study.best(top)
        parts.append(f"<h2>Top {len(best)} trials by {html.escape(objective)} (feasible)</h2>")
        parts.append(
            _table(
                ["trial", *space.names, objective, "APR", "Sharpe", "max DD", "trades"],
                [
                    [
                        r.number,
                        *(r.values[n] for n in space.names),
                        r.objective,
                        (r.metrics or {}).get("apr"),
                        (r.metrics or {}).get("sharpe"),
                        (r.metrics or {}).get("max_drawdown"),
                        (r.metrics or {}).get("trades"),
                    ]
                    for r in best
                ],
            )
        )
        bad = [r for r in rows if r.state != "ok"]
        infeasible = [r for r in rows if r.state == "ok" and not r.feasible]
        parts.append(
            f"<p>{len(rows)} trials: {len(rows) - len(bad) - len(infeasible)} feasible, "
            f"{len(infeasible)} infeasible (liquidation or drawdown), {len(bad)} invalid or failed.</p>"
        )
        if bad:
            parts.append(_table(["trial", "state", "reason"], [[r.number, r.state, r.error] for r in bad[:20]]))
        parts.append(
            "<h2>Sensitivity</h2><p>Mean and best objective per value of each parameter, over "
            "the feasible trials; the parameters are ordered by the spread of their means.</p>"
        )
        for s in sensitivity(rows, space):
            parts.append(f"<h3>{html.escape(s['parameter'])} (spread {_fmt(s['spread'])})</h3>")
            parts.append(
                _table(
                    ["value", "trials", "mean", "best"],
                    [[v["value"], v["count"], v["mean"], v["best"]] for v in s["values"]],
                )
            )
        if heatmap_png is not None and heat_axes is not None:
            parts.append(f"<h2>Heatmap: {html.escape(heat_axes[0])} × {html.escape(heat_axes[1])}</h2>")
            parts.append(_img(heatmap_png))
    if wf is not None:
        parts.append(f"<h2>Walk-forward ({'anchored' if wf.anchored else 'rolling'})</h2>")
        wrows = walkforward_rows(wf)
        parts.append(
            _table(
                [
                    "window",
                    "train",
                    "test",
                    "trials",
                    "chosen",
                    f"in-sample {objective}",
                    f"out-of-sample {objective}",
                    "IS APR",
                    "OOS APR",
                    "OOS max DD",
                    "OOS liq.",
                ],
                [list(r.values()) for r in wrows],
            )
        )
        for w in wf.warnings():
            parts.append(f'<p class="warn">{html.escape(w)}</p>')
        parts.append(_img(wf_png))
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}.warn{color:#a40}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
