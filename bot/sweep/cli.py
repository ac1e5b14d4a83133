"""``fundbot sweep``: many ``fundbot backtest`` runs over a parameter space, on Dask, into an Optuna study."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from bot.backtest.cli import parse_time, require_backtest_extra

err_console = Console(stderr=True)

SWEEP_EXTRA_HINT = (
    "fundbot sweep runs on Optuna and Dask, which the daemon's install leaves out: pip install 'fundbot[sweep]' "
    "(in a checkout: .venv/bin/pip install -c constraints.txt -e '.[sweep]')"
)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]{escape(' '.join(message.split()))}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _require_sweep_extra() -> None:
    try:
        import distributed  # noqa: F401
        import optuna  # noqa: F401
    except ImportError:
        err_console.print(SWEEP_EXTRA_HINT, markup=False, highlight=False)
        raise typer.Exit(2) from None


def _default_db_url() -> str:
    """The ledger database setting (FUNDBOT_DATABASE_URL; SQLite in FUNDBOT_DATA_DIR when unset)."""
    from bot.config import load_settings

    return load_settings().resolved_database_url()


class _Bar:
    """A rich progress bar on stderr: trials done, best so far, ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} trials"),
                TextColumn("best {task.fields[best]}"),
                TimeRemainingColumn(),
                console=err_console,
                transient=False,
            )
            self._progress.start()
        return self

    def for_phase(self, label: str) -> Any:
        if self._progress is None:
            return None

        def update(done: int, total: int, best: float | None) -> None:
            if label not in self._tasks:
                self._tasks[label] = self._progress.add_task(label, total=total, best="-")
            shown = "-" if best is None else f"{best:.4g}"
            self._progress.update(self._tasks[label], completed=done, total=total, best=shown)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def register(app: typer.Typer) -> None:
    @app.command("sweep")
    def sweep(
        space_file: Path = typer.Option(
            ...,
            "--space",
            help="TOML: per [section], each parameter a list, a "
            "range {low, high, step} or a distribution {low, high[, log]}",
        ),
        config: Path | None = typer.Option(None, "--config", help="base --config the swept values override"),
        data: Path | None = typer.Option(
            None, "--data", help="data folder (layout: docs/architecture.md, History data); default: bundled"
        ),
        symbols: str | None = typer.Option(None, "--symbols", help="comma-separated, e.g. BTC/USDT,ETHUSDT"),
        start: str | None = typer.Option(None, "--start", help="UTC start (YYYY-MM-DD, ISO or epoch ms)"),
        end: str | None = typer.Option(None, "--end", help="UTC end, exclusive"),
        capital: str = typer.Option("100000", "--capital", help="starting USDT of each backtest"),
        out: Path = typer.Option(Path("var/sweep"), "--out", help="output folder"),
        method: str = typer.Option("grid", "--method", help="grid | random | tpe (Optuna's samplers)"),
        trials: int | None = typer.Option(
            None, "--trials", min=1, help="trials in the study (grid: default all, random/tpe: 50)"
        ),
        objective: str = typer.Option("apr", "--objective", help="apr | sharpe | calmar (maximised)"),
        max_drawdown: float = typer.Option(
            0.2,
            "--max-drawdown",
            min=0.0,
            max=1.0,
            help="a trial with a larger max drawdown (fraction) cannot be best; a liquidation never can",
        ),
        train: str | None = typer.Option(None, "--train", help="walk-forward train window, e.g. 12M, 90D"),
        test: str | None = typer.Option(None, "--test", help="walk-forward test window, e.g. 3M"),
        anchored: bool = typer.Option(
            False,
            "--anchored/--rolling",
            help="walk-forward train windows all start at the first hour (anchored) or keep their length (rolling)",
        ),
        scheduler: str | None = typer.Option(
            None, "--scheduler", help="tcp://HOST:PORT of a Dask scheduler; default: a LocalCluster on this machine"
        ),
        workers: int | None = typer.Option(None, "--workers", min=1, help="LocalCluster workers (default: cores)"),
        scheduler_timeout: float = typer.Option(
            10.0, "--scheduler-timeout", min=0.1, help="seconds to reach the scheduler and find a worker"
        ),
        study: str | None = typer.Option(
            None, "--study", help="study name; the same name resumes it (default: sweep-<--out folder name>)"
        ),
        url: str | None = typer.Option(
            None,
            "--url",
            help="ledger database URL the study is stored with "
            "(default: the ledger setting: FUNDBOT_DATABASE_URL, else SQLite in "
            "FUNDBOT_DATA_DIR)",
        ),
        heatmap: str | None = typer.Option(
            None, "--heatmap", help="two swept parameters, e.g. strategy.entry_threshold_apr,strategy.max_symbols"
        ),
        top: int = typer.Option(3, "--top", min=1, help="best configurations written as --config files"),
        seed: int = typer.Option(0, "--seed", help="seed of the random and tpe samplers"),
        as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    ) -> None:
        """Sweep parameters over `fundbot backtest` runs (grid, random or TPE), optionally walk-forward."""
        require_backtest_extra()
        _require_sweep_extra()
        from bot.backtest.data import DataError
        from bot.backtest.params import BacktestConfigError, read_backtest_config
        from bot.ledger.db import LedgerDatabaseError
        from bot.sim.history import bundled_data_dir
        from bot.sweep.engine import METHODS, StudyMismatchError, SweepRequest
        from bot.sweep.objective import OBJECTIVES
        from bot.sweep.runners import DaskRunner, SchedulerError
        from bot.sweep.session import SweepPlan, execute, walk_forward_pairs
        from bot.sweep.space import SpaceError, load_space
        from bot.sweep.walkforward import WalkForwardError
        from bot.sweep.worker import Window

        if method not in METHODS:
            raise _fail(f"--method {method!r}: choose one of {', '.join(METHODS)}")
        if objective not in OBJECTIVES:
            raise _fail(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
        try:
            cap = Decimal(capital)
        except InvalidOperation:
            raise _fail(f"--capital {capital!r} is not a number") from None
        if not cap.is_finite() or cap <= 0:
            raise _fail("--capital must be a positive USDT amount")
        if out.exists() and not out.is_dir():
            raise _fail(f"--out {out} is a file; give a folder")
        axes = None
        if heatmap is not None:
            names = [n.strip() for n in heatmap.split(",") if n.strip()]
            if len(names) != 2:
                raise _fail(f"--heatmap {heatmap!r}: give two swept parameters, comma-separated")
            axes = (names[0], names[1])
        try:
            base = read_backtest_config(config) if config is not None else {}
            space = load_space(space_file, base)
            if method == "grid":
                space.grid()  # a distribution in a grid is refused before anything starts
            window = Window(
                str(Path(data) if data else bundled_data_dir()),
                tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else None,
                parse_time(start, "--start"),
                parse_time(end, "--end"),
            )
            out.mkdir(parents=True, exist_ok=True)
            plan = SweepPlan(
                SweepRequest(
                    space,
                    window,
                    cap,
                    method,
                    trials,
                    objective,
                    max_drawdown,
                    seed,
                    study or f"sweep-{out.resolve().name}",
                ),
                out,
                url or _default_db_url(),
                top,
                axes,
                train,
                test,
                anchored,
            )
            from bot.sweep.session import heat_axes

            heat_axes(plan)
            pairs = walk_forward_pairs(plan)
        except (SpaceError, BacktestConfigError, DataError, WalkForwardError, typer.BadParameter) as err:
            raise _fail(str(err)) from None
        except OSError as err:
            raise _fail(f"--out {out}: {err.strerror or err}") from None
        try:
            runner = DaskRunner(scheduler, workers, scheduler_timeout)
        except SchedulerError as err:
            raise _fail(str(err)) from None
        try:
            with _Bar(not as_json and sys.stderr.isatty()) as bar:
                summary = execute(plan, runner, pairs, bar.for_phase)
        except (StudyMismatchError, LedgerDatabaseError, DataError) as err:
            raise _fail(str(err)) from None
        finally:
            runner.close()
        if as_json:
            sys.stdout.write(json.dumps(summary, default=str) + "\n")
            return
        _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    console = Console()
    if "best" in summary:
        t = Table(
            title=f"Sweep {summary['study']}: best by {summary['objective']} "
            f"({summary['trials']} trials, {summary['ran']} run now)"
        )
        for col in ("trial", "objective", "values"):
            t.add_column(col)
        for b in summary["best"]:
            t.add_row(str(b["trial"]), f"{b['objective']:.4g}", json.dumps(b["values"], default=str))
        console.print(t)
    if "walk_forward" in summary:
        t = Table(title="Walk-forward")
        for col in ("window", "test", "chosen", "in-sample", "out-of-sample"):
            t.add_column(col)
        for r in summary["walk_forward"]:
            t.add_row(str(r["window"]), r["test"], r["chosen"], _num(r["is_objective"]), _num(r["oos_objective"]))
        console.print(t)
    for note in summary["notes"]:
        console.print(f"[yellow]{escape(note)}[/yellow]", highlight=False)
    console.print(f"Report: {summary['files']['report']}", highlight=False)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"
