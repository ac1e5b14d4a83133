"""``fundbot backtest``: run a strategy on real history and write the ledger and the report to --out."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.backtest.params import STRATEGIES, BacktestConfigError, load_backtest_params, with_backtest_options

if TYPE_CHECKING:  # for the annotation only: the run's modules load when a run starts
    from bot.backtest.result import BacktestResult

err_console = Console(stderr=True)


def parse_time(text: str | None, option: str) -> int | None:
    """'2025-03-01', '2025-03-01T12:00', '...Z' or epoch ms -> UTC epoch ms."""
    if text is None:
        return None
    t = text.strip()
    if t.isdigit():
        return int(t)
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD, ISO time or epoch ms)", param_hint=option
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _default_out() -> Path:
    return Path("var") / f"backtest-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def _print_summary(result: BacktestResult) -> None:
    from bot.backtest.predictor import tracking_lines
    from bot.backtest.report import data_warnings, round_trip_line, summary_lines, untraded_line

    console = Console()
    table = Table(title=f"Backtest {result.summary.strategy}", show_header=False)
    for label, value in summary_lines(result):
        table.add_row(label, value)
    console.print(table)
    base = Table(title="Against the baselines")
    for col in ("strategy", "net PnL", "APR"):
        base.add_column(col)
    runs = [(result.summary.strategy, result.summary), *result.baselines.items()]
    for name, s in runs:
        base.add_row(name, f"{s.net_pnl:,.2f}", f"{s.apr * 100:.2f}%")
    console.print(base)
    console.print(round_trip_line(result), highlight=False)
    untraded = untraded_line(result)
    if untraded:
        console.print(untraded, highlight=False)
    for line in data_warnings(result):
        console.print(f"[yellow]{line}[/yellow]", highlight=False)
    tracking = tracking_lines(result.predictor)
    if tracking:
        console.print(
            f"Predicted funding vs settled (last quote before each settlement): {tracking[0]}", highlight=False
        )
    assert result.out_dir is not None, "the run was relocated into its --out folder"
    console.print(f"Report: {Path(result.out_dir) / 'report.html'}")
    console.print(f"Ledger: {result.ledger_url}  (fundbot tail/status/report with FUNDBOT_DATABASE_URL)")


BACKTEST_EXTRA_HINT = (
    "fundbot backtest draws its report's plots with matplotlib, which the daemon's install leaves out: "
    "pip install 'fundbot[backtest]' (in a checkout: .venv/bin/pip install -c constraints.txt -e '.[backtest]')"
)


def require_backtest_extra() -> None:
    """Stop before the run (not after minutes of it, at the plots) when the ``backtest`` extra is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        err_console.print(BACKTEST_EXTRA_HINT, markup=False, highlight=False)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest(
        data: Path | None = typer.Option(
            None, "--data", help="data folder (layout: docs/architecture.md, History data); default: bundled"
        ),
        symbols: str | None = typer.Option(None, "--symbols", help="comma-separated, e.g. BTC/USDT,ETHUSDT"),
        start: str | None = typer.Option(None, "--start", help="UTC start (YYYY-MM-DD, ISO or epoch ms)"),
        end: str | None = typer.Option(None, "--end", help="UTC end, exclusive"),
        capital: str = typer.Option("100000", "--capital", help="starting USDT (all in the spot wallet)"),
        config: Path | None = typer.Option(None, "--config", help="TOML/JSON of strategy/treasury params"),
        strategy: str = typer.Option("carry", "--strategy", help=f"one of {', '.join(STRATEGIES)}"),
        out: Path | None = typer.Option(None, "--out", help="output folder; default ./var/backtest-<timestamp>"),
        as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object, nothing else"),
        baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="also run the baselines"),
        eval_every: int | None = typer.Option(
            None,
            "--eval-every",
            min=1,
            max=24 * 7,
            help="evaluate the strategy every H hours (a daemon scanning every H h); funding, liquidation and "
            "collateral checks stay hourly. Default: [backtest] eval_every_hours of --config, else 1",
        ),
    ) -> None:
        """Backtest on real history: the daemon's strategy, execution, treasury and ledger on the simulator."""
        require_backtest_extra()
        from bot.backtest.data import BAD_DATA
        from bot.backtest.output import staged_out
        from bot.backtest.report import write_report
        from bot.backtest.runner import BacktestSpec, run_with_baselines
        from bot.sim.history import bundled_data_dir

        if strategy not in STRATEGIES:
            raise typer.BadParameter(f"choose one of {', '.join(STRATEGIES)}", param_hint="--strategy")
        try:
            cap = Decimal(capital)
        except InvalidOperation:
            raise typer.BadParameter(f"{capital!r} is not a number", param_hint="--capital") from None
        if not cap.is_finite() or cap <= 0:
            raise typer.BadParameter("must be a positive USDT amount", param_hint="--capital")
        try:
            params = load_backtest_params(config)
        except BacktestConfigError as err:
            err_console.print(f"[red]{escape(str(err))}[/red]", highlight=False)
            raise typer.Exit(2) from None
        if eval_every is not None:
            params = with_backtest_options(params, eval_every_hours=eval_every)
        out_dir = out or _default_out()
        if out_dir.exists() and not out_dir.is_dir():
            raise typer.BadParameter(f"{out_dir} is a file; give a folder", param_hint="--out")
        try:
            out_dir.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise typer.BadParameter(f"cannot create {out_dir}: {err.strerror}", param_hint="--out") from None
        spec = BacktestSpec(
            data_dir=Path(data) if data else bundled_data_dir(),
            symbols=[s.strip() for s in symbols.split(",") if s.strip()] if symbols else None,
            start_ms=parse_time(start, "--start"),
            end_ms=parse_time(end, "--end"),
            capital=cap,
            strategy=strategy,
            params=params,
            out_dir=out_dir,
            progress="line" if as_json else True,  # a bar on a terminal, else a line every 10 s on stderr
        )
        try:
            with staged_out(out_dir, stale=("baselines",)) as stage:
                result = run_with_baselines(replace(spec, out_dir=stage), baselines=baselines)
                result.relocate(stage, out_dir)
                write_report(result, stage)
        except BAD_DATA as err:
            err_console.print(f"[red]{escape(str(err))}[/red]", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        if as_json:
            sys.stdout.write(json.dumps(result.to_dict(), default=str) + "\n")
        else:
            _print_summary(result)
