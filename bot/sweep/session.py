"""One ``fundbot sweep``: the study (or the walk-forward studies) on a runner, then the files in ``--out``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.backtest.data import load_dataset
from bot.format import iso_utc
from bot.ledger.db import safe_url
from bot.sweep import report
from bot.sweep.engine import Progress, StudyOutcome, SweepRequest, run_study
from bot.sweep.runners import TrialRunner
from bot.sweep.storage import open_storage, storage_url
from bot.sweep.walkforward import WalkForward, WindowPair, parse_span, run_walk_forward, windows


@dataclass(frozen=True)
class SweepPlan:
    request: SweepRequest
    out_dir: Path
    db_url: str
    top: int = 3
    heatmap: tuple[str, str] | None = None
    train: str | None = None
    test: str | None = None
    anchored: bool = False


def walk_forward_pairs(plan: SweepPlan) -> list[WindowPair] | None:
    """The windows of ``--train/--test`` over the data's span (loaded once here), or None without them."""
    if plan.train is None and plan.test is None:
        return None
    from bot.sweep.walkforward import WalkForwardError

    if plan.train is None or plan.test is None:
        raise WalkForwardError("walk-forward needs both --train and --test (e.g. --train 12M --test 3M)")
    train, test = parse_span(plan.train, "--train"), parse_span(plan.test, "--test")
    w = plan.request.window
    ds = load_dataset(Path(w.data_dir), list(w.symbols) if w.symbols else None, w.start_ms, w.end_ms)
    return windows(ds.start_ms, ds.end_ms, train, test, plan.anchored, plan.train, plan.test)


def heat_axes(plan: SweepPlan) -> tuple[str, str] | None:
    if plan.heatmap is not None:
        for name in plan.heatmap:
            plan.request.space.dimension(name)  # raises naming the swept ones
        return plan.heatmap
    names = [d.name for d in plan.request.space.dimensions]
    return (names[0], names[1]) if len(names) >= 2 else None


def execute(
    plan: SweepPlan,
    runner: TrialRunner,
    pairs: list[WindowPair] | None,
    progress: Callable[[str], Progress | None] | None = None,
) -> dict[str, Any]:
    """Run the sweep and write its files; the summary (also ``summary.json``)."""
    out = plan.out_dir
    out.mkdir(parents=True, exist_ok=True)
    storage = open_storage(plan.db_url)
    req = plan.request
    study: StudyOutcome | None = None
    wf: WalkForward | None = None
    if pairs is None:
        study = run_study(req, runner, storage, progress("trials") if progress else None)
        rows = study.rows
    else:
        wf = run_walk_forward(
            req,
            pairs,
            runner,
            storage,
            plan.anchored,
            (lambda p: progress(f"window {p.index + 1}/{len(pairs)}")) if progress else None,
        )
        rows = [r for w in wf.results for r in w.study.rows]
    files: dict[str, str | list[str]] = {}
    notes: list[str] = []
    if study is not None:
        files["trials_csv"] = str(report.write_trials_csv(study.rows, req.space, out / "trials.csv"))
        best = study.best(plan.top)
        files["best"] = [str(p) for p in report.write_best_configs(best, req.space, out / "best", req.objective)]
        if not best:
            notes.append(
                "no feasible trial (every one had a liquidation, a drawdown over --max-drawdown, or was "
                "invalid): no best configuration"
            )
    if wf is not None:
        for r in wf.results:
            report.write_trials_csv(r.study.rows, req.space, out / f"trials-wf{r.pair.index + 1}.csv")
        paths = []
        for r in wf.results:
            if r.chosen is not None:
                paths += report.write_best_configs(
                    [r.chosen], req.space, out / "best", req.objective, prefix=f"window{r.pair.index + 1}"
                )
        files["best"] = [str(p) for p in paths]
        files["walkforward_csv"] = str(report.write_walkforward_csv(wf, out / "walkforward.csv"))
        wf_png = report.walkforward_plot(wf, out / "walkforward.png")
        if wf_png:
            files["walkforward_png"] = str(wf_png)
        notes += wf.warnings()
    axes = heat_axes(plan)
    heat_png = report.heatmap(rows, axes[0], axes[1], req.objective, out / "heatmap.png") if axes else None
    if heat_png:
        files["heatmap_png"] = str(heat_png)
    w = req.window
    facts = [
        ("study", req.study_name),
        ("storage", safe_url(storage_url(plan.db_url))),
        ("method", req.method),
        ("objective", req.objective),
        (
            "constraint",
            f"no liquidation, max drawdown <= {req.max_drawdown}" if req.max_drawdown is not None else "no liquidation",
        ),
        ("data", w.data_dir),
        ("symbols", ", ".join(w.symbols) if w.symbols else "all"),
        (
            "window",
            f"{iso_utc(w.start_ms) if w.start_ms else 'data start'} to {iso_utc(w.end_ms) if w.end_ms else 'data end'}",
        ),
        ("capital", str(req.capital)),
    ]
    page = report.render_html(
        "fundbot sweep",
        facts,
        study,
        req.space,
        req.objective,
        plan.top,
        heat_png,
        axes,
        wf,
        Path(str(files["walkforward_png"])) if "walkforward_png" in files else None,
        notes,
    )
    (out / "report.html").write_text(page)
    files["report"] = str(out / "report.html")
    summary: dict[str, Any] = {
        "study": req.study_name,
        "method": req.method,
        "objective": req.objective,
        "files": files,
        "notes": notes,
    }
    if study is not None:
        summary.update(
            trials=len(study.rows),
            ran=study.ran,
            seconds=round(study.seconds, 2),
            workers={str(pid): loads for pid, loads in study.worker_pids.items()},
            best=[{"trial": r.number, "objective": r.objective, "values": r.values} for r in study.best(plan.top)],
        )
    if wf is not None:
        summary["walk_forward"] = report.walkforward_rows(wf)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
