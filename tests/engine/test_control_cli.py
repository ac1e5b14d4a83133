"""`fundbot control`: what it writes, what it shows, and what it refuses (writing nothing)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.domain import PairState
from bot.engine.control_cli import control_app
from bot.ledger import db
from bot.ledger.models import ControlKind
from bot.ledger.repository import Ledger


def invoke(*args: str):
    return CliRunner().invoke(control_app, list(args))


def _ledger(url: str, *, revision: str = "head") -> None:
    asyncio.run(db.upgrade(url, revision))


def _read(url: str, fn):
    async def go():
        async with await Ledger.open(url, migrate=False) as ledger:
            return await fn(ledger)

    return asyncio.run(go())


@pytest.mark.slow
def test_every_control_round_trips_through_show(sqlite_url: str) -> None:
    _ledger(sqlite_url)
    pair = _read(
        sqlite_url, lambda led: led.upsert_pair(venue="binance", symbol="SOL/USDT", now_ms=1, state=PairState.OPEN)
    )
    for args in (
        ["close-only", "on", "--reason", "maintenance"],
        ["pause", "xrpusdt"],
        ["capital-limit", "5000.50"],
        ["exit", "SOL/USDT:USDT", "--reason", "listing news"],
    ):
        res = invoke(*args, "--url", sqlite_url)
        assert res.exit_code == 0, res.output
        assert "applies it at its next scan" in res.output or "closes it at its next scan" in res.output
    again = invoke("pause", "XRP/USDT", "--url", sqlite_url)
    assert again.exit_code == 0 and "already paused" in again.output
    shown = invoke("show", "--url", sqlite_url)
    assert shown.exit_code == 0
    assert "close-only     on since" in shown.output and "(cli: maintenance)" in shown.output
    assert "capital limit  5000.5 USDT" in shown.output
    assert "  XRP/USDT since" in shown.output
    assert f"  SOL/USDT pair #{pair.id} waiting since" in shown.output
    doc = json.loads(invoke("show", "--json", "--url", sqlite_url).output)
    assert (doc["close_only"], doc["capital_limit"], doc["paused"]) == (True, "5000.5", ["XRP/USDT"])
    assert [r["kind"] for r in doc["active"]] == ["close_only", "pause", "capital_limit", "exit"]
    for args in (["close-only", "off"], ["resume", "XRP/USDT"], ["capital-limit", "off"]):
        assert invoke(*args, "--url", sqlite_url).exit_code == 0
    rows = _read(sqlite_url, lambda led: led.controls())
    assert [r.kind for r in rows] == [ControlKind.EXIT]
    assert "was not paused" in invoke("resume", "XRP/USDT", "--url", sqlite_url).output


@pytest.mark.slow
def test_exit_without_an_open_pair_and_bad_input_are_refused(sqlite_url: str) -> None:
    _ledger(sqlite_url)
    res = invoke("exit", "SOL/USDT", "--url", sqlite_url)
    assert res.exit_code == 2 and "holds no open pair of SOL/USDT; nothing was requested" in res.output
    bad = invoke("pause", "SOL-USDT", "--url", sqlite_url)
    assert bad.exit_code == 2 and "write it as BTC/USDT" in bad.output
    for amount in ("0", "-5", "lots", "NaN"):
        res = invoke("capital-limit", "--url", sqlite_url, "--", amount)
        assert res.exit_code == 2 and "not a positive USDT amount" in res.output, (amount, res.output)
    assert invoke("close-only", "maybe", "--url", sqlite_url).exit_code == 2
    assert _read(sqlite_url, lambda led: led.controls()) == []
    assert _read(sqlite_url, lambda led: led.events()) == []


def test_a_missing_ledger_or_one_at_an_older_schema_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    missing = f"sqlite+aiosqlite:///{(tmp_path / 'none.db').as_posix()}"
    res = invoke("pause", "SOL/USDT", "--url", missing)
    assert res.exit_code == 2 and "the file does not exist" in res.output and "nothing was paused" in res.output
    assert not (tmp_path / "none.db").exists()
    _ledger(sqlite_url, revision="0002")  # a daemon of an older version: it would not read the table
    res = invoke("close-only", "on", "--url", sqlite_url)
    assert res.exit_code == 2 and "has ledger schema 0002" in res.output and "fundbot db upgrade" in res.output
    assert asyncio.run(db.current(sqlite_url)) == "0002", "nothing was migrated behind the daemon's back"
