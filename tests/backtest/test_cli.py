import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest
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


@pytest.mark.slow
def test_json_output_is_one_object_and_the_ledger_serves_the_operator_commands(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        "backtest",
        "--data",
        str(_data(tmp_path)),
        "--strategy",
        "always-on-btc",
        "--capital",
        "10000",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-02T12:00",
        "--out",
        str(out),
        "--json",
    ]
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
    for config, expected in (
        (odd, "is a folder; --config takes a TOML or JSON file"),
        (odd / "c.json", "[treasury] must be a table of settings"),
    ):
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


@pytest.mark.slow
def test_eval_every_sets_the_scan_cadence(tmp_path: Path) -> None:
    args = [
        "backtest",
        "--data",
        str(_data(tmp_path)),
        "--strategy",
        "always-on-btc",
        "--capital",
        "10000",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-02T12:00",
        "--out",
        str(tmp_path / "out"),
        "--json",
        "--no-baselines",
        "--eval-every",
        "12",
    ]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)["run"]
    assert run["scan_hours"] == 3  # hours 0, 12 and 24 of 36
    assert 1 <= run["scans"] <= 3  # the others proven quiet (fast-forward)


def _corrupt(data: Path, kind: str) -> tuple[Path, str]:
    """Damage one file of the data folder the way real downloads break; (the file, what the message says)."""
    if kind == "truncated":
        path = data / "klines" / "binance_perp_BTCUSDT_1h.csv.gz"
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        return path, "truncated; readable up to line"
    if kind == "corrupt":
        path = data / "klines" / "binance_spot_ETHUSDT_1h.csv.gz"
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2 : len(raw) // 2 + 8] = b"\x00" * 8
        path.write_bytes(bytes(raw))
        return path, "corrupt ("
    if kind == "non-numeric":
        path = data / "klines" / "binance_spot_BTCUSDT_1h.csv.gz"
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        cells = lines[4].split(",")
        cells[4] = "1O1.5"  # letter O for a zero, line 5 of the file
        lines[4] = ",".join(cells)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        return path, "line 5: close is '1O1.5', not a number; fix or remove that row"
    path = data / "funding" / "binance_ETHUSDT.csv.gz"
    path.write_bytes(gzip.compress(b"time,rate\n1767225600000,0.0001\n"))
    return path, "line 1 (header) lacks column(s) ts_ms, funding_rate; expected ts_ms, funding_rate, found time, rate"


@pytest.mark.parametrize("kind", ["truncated", "corrupt", "non-numeric", "wrong-columns"])
@pytest.mark.slow
def test_bad_data_is_one_line_naming_the_file_and_row_and_out_is_left_untouched(tmp_path: Path, kind: str) -> None:
    """A damaged file gives exit 2 and one line (file, line, fix), never a traceback; --out keeps what an
    earlier run wrote there, and no half-written staging folder is left beside it."""
    data = _data(tmp_path)
    out = tmp_path / "runs" / "out"
    args = [
        "backtest",
        "--data",
        str(data),
        "--strategy",
        "always-on-btc",
        "--capital",
        "10000",
        "--start",
        "2026-01-01",
        "--end",
        "2026-01-02",
        "--out",
        str(out),
        "--json",
        "--no-baselines",
    ]
    assert CliRunner().invoke(_app(), args).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    path, expected = _corrupt(data, kind)
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert lines[0].startswith(f"{path}: ") and expected in lines[0], lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir()] == ["out"]


def test_a_failed_first_run_leaves_no_out_folder(tmp_path: Path) -> None:
    data = _data(tmp_path)
    _corrupt(data, "non-numeric")
    out = tmp_path / "out"
    res = CliRunner().invoke(_app(), ["backtest", "--data", str(data), "--out", str(out), "--json"])
    assert res.exit_code == 2, res.output
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["data"]
