import asyncio
import csv
import json
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy
import typer
from typer.testing import CliRunner

from bot.backtest import cli as backtest_cli
from bot.backtest.cli import parse_time
from bot.ledger.repository import Ledger
from bot.sim.history import bundled_data_dir
from bot.sweep import cli as sweep_cli
from bot.sweep.worker import TrialTask, Window, run_trial

from .conftest import END, START, DaskCluster


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    backtest_cli.register(app)
    sweep_cli.register(app)
    return app


def _sweep(tmp: Path, space: Path, *extra: str, url: str | None = None) -> dict:
    url = url or f"sqlite+aiosqlite:///{(tmp / 'ledger.db').as_posix()}"
    args = [
        "sweep",
        "--space",
        str(space),
        "--start",
        START,
        "--end",
        END,
        "--capital",
        "100000",
        "--out",
        str(tmp / "out"),
        "--url",
        url,
        "--study",
        "s",
        "--json",
        *extra,
    ]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
@pytest.mark.timeout(300)  # 78 s on a loaded 2-core machine
def test_grid_on_a_local_cluster_gives_the_backtests_run_one_by_one(tmp_path: Path, space_file: Path) -> None:
    doc = _sweep(tmp_path, space_file, "--workers", "2")
    assert doc["trials"] == 4 and doc["ran"] == 4
    # each worker read the data once and kept it for its other trials
    assert doc["workers"] and all(loads == 1 for loads in doc["workers"].values()), doc["workers"]
    rows = _csv(Path(doc["files"]["trials_csv"]))
    assert len(rows) == 4 and len({r["trial"] for r in rows}) == 4
    window = Window(str(bundled_data_dir()), None, parse_time(START, ""), parse_time(END, ""))
    seen = set()
    for r in rows:
        values = {
            "max_per_symbol_fraction": r["strategy.max_per_symbol_fraction"],
            "max_symbols": int(r["strategy.max_symbols"]),
        }
        seen.add(tuple(values.values()))
        alone = run_trial(TrialTask("one/0", 0, window, Decimal(100000), {"strategy": values}))
        assert alone.metrics is not None
        assert float(r["apr"]) == alone.metrics.apr and float(r["net_pnl"]) == alone.metrics.net_pnl, (r, alone)
        assert int(r["trades"]) == alone.metrics.trades
    assert seen == {("0.1", 2), ("0.1", 4), ("0.2", 2), ("0.2", 4)}
    assert len({r["apr"] for r in rows}) == 4, "the four configurations give four results"
    # the best configuration is a ready --config: `fundbot backtest` with it gives the sweep's figure
    best = Path(doc["files"]["best"][0])
    cfg = tomllib.loads(best.read_text())
    top = max(rows, key=lambda r: float(r["objective"]))
    assert cfg["strategy"]["max_per_symbol_fraction"] == top["strategy.max_per_symbol_fraction"]
    res = CliRunner().invoke(
        _app(),
        [
            "backtest",
            "--config",
            str(best),
            "--start",
            START,
            "--end",
            END,
            "--no-baselines",
            "--out",
            str(tmp_path / "bt"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["summary"]["apr"] == float(top["apr"])
    page = Path(doc["files"]["report"]).read_text()
    assert "Sensitivity" in page and "strategy.max_symbols" in page and "data:image/png;base64," in page
    assert Path(doc["files"]["heatmap_png"]).stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.timeout(300)  # 33 s on a loaded 2-core machine
def test_sweep_on_a_dask_scheduler_resumes_its_sqlite_study(
    tmp_path: Path, space_file: Path, dask_cluster: DaskCluster
) -> None:
    sched = ("--scheduler", dask_cluster.address)
    first = _sweep(tmp_path, space_file, *sched, "--trials", "2")
    assert (first["trials"], first["ran"]) == (2, 2)
    second = _sweep(tmp_path, space_file, *sched)
    assert (second["trials"], second["ran"]) == (4, 2), "the two finished trials are kept, not run again"
    again = _sweep(tmp_path, space_file, *sched)
    assert (again["trials"], again["ran"]) == (4, 0)
    rows = _csv(tmp_path / "out" / "trials.csv")
    assert sorted(int(r["trial"]) for r in rows) == [0, 1, 2, 3]
    assert len({(r["strategy.max_per_symbol_fraction"], r["strategy.max_symbols"]) for r in rows}) == 4
    assert (tmp_path / "ledger-sweeps.db").exists(), "the study lives beside the ledger"
    # a study cannot continue on another window: its trials would not compare
    res = CliRunner().invoke(
        _app(),
        [
            "sweep",
            "--space",
            str(space_file),
            "--start",
            START,
            "--end",
            "2025-07-22",
            "--out",
            str(tmp_path / "out"),
            "--study",
            "s",
            *sched,
            "--url",
            f"sqlite+aiosqlite:///{(tmp_path / 'ledger.db').as_posix()}",
        ],
    )
    assert res.exit_code == 2 and "was run with another end_ms" in res.output, res.output


@pytest.mark.postgres
@pytest.mark.slow
def test_study_on_postgres_shares_the_ledger_database(
    tmp_path: Path, space_file: Path, dask_cluster: DaskCluster, postgres_url: str
) -> None:
    async def _migrate() -> None:
        led = await Ledger.open(postgres_url, migrate=True)
        await led.close()

    asyncio.run(_migrate())
    sched = ("--scheduler", dask_cluster.address)
    first = _sweep(tmp_path, space_file, *sched, "--trials", "2", url=postgres_url)
    second = _sweep(tmp_path, space_file, *sched, "--trials", "3", url=postgres_url)
    assert (first["ran"], second["ran"], second["trials"]) == (2, 1, 3)
    sync = sqlalchemy.make_url(postgres_url).set(drivername="postgresql+psycopg")
    engine = sqlalchemy.create_engine(sync)
    try:
        with engine.connect() as conn:
            tables = {
                (s, t)
                for s, t in conn.execute(
                    sqlalchemy.text("SELECT table_schema, table_name FROM information_schema.tables")
                )
            }
            n = conn.execute(
                sqlalchemy.text("SELECT count(*) FROM fundbot_sweep.trials WHERE state = 'COMPLETE'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert ("fundbot_sweep", "trials") in tables and ("fundbot_sweep", "alembic_version") in tables
    assert ("public", "alembic_version") in tables and ("public", "fills") in tables, "the ledger is untouched"
    assert n == 3


def _one_line_exit_2(args: list[str], expected: str) -> None:
    res = CliRunner().invoke(_app(), args)
    text = res.output.strip()
    assert res.exit_code == 2, (args, res.output)
    assert expected in text and "\n" not in text and "Traceback" not in text, (args, text)


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, space_file: Path) -> None:
    base = [
        "sweep",
        "--start",
        START,
        "--end",
        END,
        "--out",
        str(tmp_path / "out"),
        "--url",
        f"sqlite+aiosqlite:///{(tmp_path / 'l.db').as_posix()}",
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("[strategy]\nentry_treshold_apr = ['0.1']\n")
    _one_line_exit_2([*base, "--space", str(bad)], "[strategy] entry_treshold_apr is not a parameter of [strategy]")
    bad.write_text("[strategy]\nhold_horizon_hours = { low = 700, high = 100, step = 100 }\n")
    _one_line_exit_2([*base, "--space", str(bad)], "empty range: low 700 is above high 100")
    bad.write_text("[strategy]\nmax_symbols = []\n")
    _one_line_exit_2([*base, "--space", str(bad)], "max_symbols: the list is empty")
    bad.write_text("[strategy]\nperp_leverage = [2, 200]\n")
    _one_line_exit_2([*base, "--space", str(bad)], "perp_leverage = 200: Input should be less than or equal to 125")
    bad.write_text("[strategy]\npredicted_weight = { low = 0.0, high = 1.0 }\n")
    _one_line_exit_2([*base, "--space", str(bad)], "--method grid needs a list or a range with a step")
    _one_line_exit_2(
        [*base, "--space", str(space_file), "--train", "12M", "--test", "3M"],
        "--train 12M + --test 3M is longer than the data (2025-07-20T00:00:00Z to 2025-07-23T00:00:00Z)",
    )
    _one_line_exit_2([*base, "--space", str(space_file), "--train", "12X", "--test", "3M"], "--train '12X'")
    _one_line_exit_2(
        [*base, "--space", str(space_file), "--heatmap", "strategy.max_symbols,strategy.fee_kind"],
        "strategy.fee_kind is not swept",
    )
    _one_line_exit_2(
        [*base, "--space", str(space_file), "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "1"],
        "cannot reach the Dask scheduler at tcp://127.0.0.1:9",
    )


@pytest.mark.slow
def test_walk_forward_through_the_cli_writes_its_table_curve_and_configs(
    tmp_path: Path, space_file: Path, dask_cluster: DaskCluster
) -> None:
    url = f"sqlite+aiosqlite:///{(tmp_path / 'ledger.db').as_posix()}"
    space_file.write_text("[strategy]\nmax_symbols = [2, 3]\n")
    args = [
        "sweep",
        "--space",
        str(space_file),
        "--symbols",
        "SOLUSDT,DOGEUSDT,XRPUSDT",
        "--start",
        "2025-07-16",
        "--end",
        "2025-07-24",
        "--train",
        "4D",
        "--test",
        "2D",
        "--anchored",
        "--out",
        str(tmp_path / "out"),
        "--url",
        url,
        "--study",
        "wf",
        "--scheduler",
        dask_cluster.address,
        "--json",
    ]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    rows = doc["walk_forward"]
    assert [r["window"] for r in rows] == [1, 2] and all(r["trials"] == 2 for r in rows)
    assert rows[0]["train"].startswith("2025-07-16") and rows[1]["train"].startswith("2025-07-16"), "anchored"
    assert rows[1]["test"] == "2025-07-22T00:00:00Z to 2025-07-24T00:00:00Z"
    assert all(r["oos_objective"] is not None for r in rows)
    for n in (1, 2):
        cfg = tomllib.loads((tmp_path / "out" / "best" / f"window{n}-1.toml").read_text())
        assert json.loads(rows[n - 1]["chosen"])["strategy.max_symbols"] == cfg["strategy"]["max_symbols"]
    assert len(_csv(tmp_path / "out" / "walkforward.csv")) == 2
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Walk-forward (anchored)" in page and "out-of-sample apr" in page
    assert (tmp_path / "out" / "walkforward.png").stat().st_size > 1000


@pytest.mark.slow
def test_without_the_sweep_extra_it_says_what_to_install(tmp_path: Path, space_file: Path) -> None:
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        f"sys.argv = ['fundbot', 'sweep', '--space', {str(space_file)!r}]\n"
        "from bot.cli import main; main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "pip install 'fundbot[sweep]'" in " ".join(out.stderr.split()), out.stderr
