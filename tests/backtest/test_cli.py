import json
from decimal import Decimal
from pathlib import Path

import typer
from typer.testing import CliRunner

from bot.backtest import cli as backtest_cli
from bot.engine.control_cli import control_app
from bot.ops import cli as ops_cli

from .backtest_datafiles import flat_symbol


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    backtest_cli.register(app)
    ops_cli.register(app)
    return app


def _data(root: Path) -> Path:
    data = root / "data"
    funding = [(h, "0.0001", 8) for h in range(0, 48, 8)]
    flat_symbol(data, "BTCUSDT", 48, 100.0, 100.0, funding)
    flat_symbol(data, "ETHUSDT", 48, 10.0, 10.0, funding, mark=False)
    return data


def test_json_output_is_one_object_and_the_ledger_serves_the_operator_commands(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["backtest", "--data", str(_data(tmp_path)), "--strategy", "always-on-btc", "--capital", "10000",
            "--start", "2026-01-01", "--end", "2026-01-02T12:00", "--out", str(out), "--json"]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["summary"]["strategy"] == "always_on_btc" and doc["summary"]["hours"] == 36
    assert set(doc["baselines"]) == {"always-on", "top-n"}
    assert doc["data"]["ETHUSDT"]["mark_fallback_hours"] == 36
    assert (out / "report.html").exists() and (out / "ledger.db").exists()
    url = doc["ledger_url"]
    for cmd in (["status", "--url", url], ["tail", "--url", url, "-n", "5"], ["report", "--url", url]):
        r = CliRunner().invoke(_app(), cmd)
        assert r.exit_code == 0, (cmd, r.output)
    assert "BTC/USDT" in CliRunner().invoke(_app(), ["status", "--url", url]).output
    funding = CliRunner().invoke(_app(), ["tail", "--url", url, "--kind", "funding"]).output
    # no daemon reads a backtest's ledger: a runtime switch written there would do nothing
    for args in (["close-only", "on"], ["pause", "BTC/USDT"], ["exit", "BTC/USDT"], ["show"]):
        res = CliRunner().invoke(control_app, [*args, "--url", url])
        assert res.exit_code == 2 and "is a backtest's ledger" in res.output, (args, res.output)
    # a window opening at a snapshot that already holds that instant's settlement counts it once
    rep = json.loads(CliRunner().invoke(_app(), ["report", "--url", url, "--since", "2026-01-02", "--json"]).output)
    assert rep["since_ms"] == 1_767_312_000_000 and abs(Decimal(rep["residual"])) < Decimal("0.0001"), rep
    assert "BTC/USDT funding +" in funding, "the funding sync logs each payment, as the daemon's does"


def test_bad_config_is_refused_with_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[strategy]\nentry_threshold_apr = 'ten'\n")
    res = CliRunner().invoke(_app(), ["backtest", "--data", str(_data(tmp_path)), "--config", str(cfg), "--json"])
    assert res.exit_code == 2
    assert "entry_threshold_apr" in res.output


def test_config_that_is_a_folder_or_has_a_section_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    data = _data(tmp_path)
    odd = tmp_path / "odd[x]"  # rich markup in a path or a section name used to be eaten by the console
    odd.mkdir()
    (odd / "c.json").write_text('{"treasury": [1]}')
    for config, expected in ((odd, "is a folder; --config takes a TOML or JSON file"),
                             (odd / "c.json", "[treasury] must be a table of settings")):
        res = CliRunner().invoke(_app(), ["backtest", "--data", str(data), "--config", str(config), "--json"])
        assert res.exit_code == 2 and res.exception is not None and isinstance(res.exception, SystemExit)
        assert expected in " ".join(res.output.split()), res.output


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    res = CliRunner().invoke(_app(), ["backtest", "--data", str(_data(tmp_path)), "--out", str(afile), "--json"])
    assert res.exit_code == 2 and "give a folder" in res.output


def test_window_outside_the_data_is_refused_with_the_range(tmp_path: Path) -> None:
    args = ["backtest", "--data", str(_data(tmp_path)), "--start", "2024-01-01", "--end", "2024-02-01", "--json"]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2, res.output  # a clear refusal, not a traceback (exit 1)
    assert "they have data from 2026-01-01T00:00:00Z to 2026-01-03T00:00:00Z" in " ".join(res.output.split())


def test_eval_every_sets_the_scan_cadence(tmp_path: Path) -> None:
    args = ["backtest", "--data", str(_data(tmp_path)), "--strategy", "always-on-btc", "--capital", "10000",
            "--start", "2026-01-01", "--end", "2026-01-02T12:00", "--out", str(tmp_path / "out"), "--json",
            "--no-baselines", "--eval-every", "12"]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)["run"]
    assert run["scan_hours"] == 3  # hours 0, 12 and 24 of 36
    assert 1 <= run["scans"] <= 3  # the others proven quiet (fast-forward)
