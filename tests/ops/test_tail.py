"""tail: one line per event, decisions explain themselves, filters work, --follow picks up new events."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from rich.text import Text

from bot.ledger.models import EventKind
from bot.ledger.reads import HISTORICAL_AFTER_MS, ledger_clock
from bot.ledger.repository import Ledger
from bot.ops.tail import decision_summary, event_summary, tail_events

from .history import T0, T_END, T_HOLD, build_history


async def _collect(ledger: Ledger, **kwargs) -> list[str]:
    out: list[str] = []
    await tail_events(ledger, lambda item: out.append(item.plain if isinstance(item, Text) else item), **kwargs)
    return out


async def test_json_lines_cover_every_event_in_order(ledger: Ledger) -> None:
    await build_history(ledger)
    rows = [json.loads(line) for line in await _collect(ledger, as_json=True, since_ms=T0)]
    kinds = [r["kind"] for r in rows]
    assert kinds == ["transfer", "decision", "order", "order", "fill", "fill", "funding", "decision", "alert"]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    enter = rows[1]
    assert enter["time"] == "2024-05-01T00:02:00Z"
    assert enter["symbol"] == "BTC/USDT"
    assert enter["details"]["reason"]["rule"] == "enter_carry"
    assert enter["details"]["reason"]["economics"]["break_even_hours"] == "5.2"
    alert = rows[-1]
    assert alert["details"]["alert"] == "hedge_drift"
    assert Decimal(alert["details"]["drift"]) == Decimal("-0.0001")


async def test_human_lines_say_why(ledger: Ledger) -> None:
    await build_history(ledger)
    lines = await _collect(ledger, since_ms=T0, kinds=["decision"])
    assert len(lines) == 2
    enter, hold = lines
    assert enter.startswith("2024-05-01T00:02:00Z #")
    assert "DECISION  BTC/USDT" in enter
    assert "enter 0.1 rule=enter_carry score=7.20 break-even=5.2h apr=21.50% net-apr=8.84%" in enter
    assert "forecast 21.50% APR pays the round trip back in 5.2h" in enter
    assert "hold 0.1 rule=hold_carry score=6.80 break-even=never apr=19.00%" in hold


async def test_filters_by_kind_pair_and_since(ledger: Ledger) -> None:
    await build_history(ledger)
    fills = await _collect(ledger, as_json=True, kinds=["fill"], pair_symbol="BTC/USDT")
    assert [json.loads(x)["symbol"] for x in fills] == ["BTC/USDT", "BTC/USDT:USDT"]
    assert await _collect(ledger, pair_symbol="ETH/USDT") == []
    recent = [json.loads(x)["kind"] for x in await _collect(ledger, as_json=True, since_ms=T_HOLD)]
    assert recent == ["decision", "alert"]
    last_two = [json.loads(x)["kind"] for x in await _collect(ledger, as_json=True, backlog=2)]
    assert last_two == ["decision", "alert"]


async def test_follow_picks_up_new_matching_events(ledger: Ledger) -> None:
    await build_history(ledger)
    out: list[str] = []
    polls: list[float] = []

    async def sleep_then_write(interval: float) -> None:
        polls.append(interval)
        if len(polls) == 1:
            await ledger.add_event(EventKind.INFO, "heartbeat", ts_ms=T_END + 1)  # filtered out
            await ledger.add_event(
                EventKind.ALERT, "collateral low", ts_ms=T_END + 2, details={"alert": "collateral_low"}
            )

    last = await tail_events(
        ledger,
        lambda item: out.append(item if isinstance(item, str) else item.plain),
        as_json=True,
        kinds=["alert"],
        backlog=0,
        follow=True,
        interval_s=0.25,
        max_polls=3,
        sleep=sleep_then_write,
    )
    assert polls == [0.25, 0.25, 0.25]
    assert [json.loads(x)["message"] for x in out] == ["collateral low"]
    assert last == json.loads(out[0])["id"]


def test_decision_summary_degrades_when_fields_are_missing() -> None:
    assert decision_summary(None) == ""
    assert decision_summary({"rule": "skip_x", "message": "no data"}) == "rule=skip_x: no data"
    assert decision_summary({"reason": {"rule": "r", "economics": {"score": "1.5"}}}) == "rule=r score=1.50"
    assert event_summary("decision", "enter BTC/USDT", {"garbage": 1}) == "enter BTC/USDT"
    assert event_summary("fill", "bought", {"qty": "0.1", "nested": {"a": 1}}) == "bought  [qty=0.1]"


@pytest.mark.slow
def test_cli_tail_json_and_errors(history_url: str, run_cli) -> None:
    res = run_cli("tail", "--url", history_url, "--json", "--kind", "funding,transfer", "--since", "2024-05-01")
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert [r["kind"] for r in rows] == ["transfer", "funding"]
    res = run_cli("tail", "--url", history_url, "--pair", "BTC/USDT", "-n", "1")
    assert res.exit_code == 0, res.output
    assert "ALERT" in res.output and "hedge drift -0.0001" in res.output
    res = run_cli("tail", "--url", history_url, "--kind", "bogus")
    assert res.exit_code == 2
    # the forms `fundbot backtest --symbols` takes are accepted here too (BTCUSDT was a ValueError)
    for form in ("BTCUSDT", "btc/usdt", "BTC/USDT:USDT"):
        res = run_cli("tail", "--url", history_url, "--pair", form, "-n", "1")
        assert res.exit_code == 0 and "hedge drift -0.0001" in res.output, (form, res.output)
    res = run_cli("tail", "--url", history_url, "--pair", "BTC USDT")
    assert res.exit_code == 2 and "write it as BTC/USDT or BTCUSDT" in " ".join(res.output.replace("│", " ").split())


def test_decision_shapes_written_by_engine_and_executor() -> None:
    reason = {
        "rule": "enter_carry",
        "message": "forecast pays",
        "inputs": {},
        "economics": {"score": "3", "break_even_hours": "10"},
    }
    engine = {"action": "enter", "target_qty": "0.2", **reason}
    line = event_summary("decision", "BTC/USDT enter -> 0.2: forecast pays", engine)
    assert line == "BTC/USDT enter -> 0.2: forecast pays | enter 0.2 rule=enter_carry score=3.00 break-even=10.0h"
    executor = {"target_qty": "0.2", "target": {"symbol": "BTC/USDT", "target_qty": "0.2", "action": "enter",
                                                "reason": reason}}  # fmt: skip
    line = event_summary("decision", "opening: BTC/USDT 0/0 -> 0.2", executor)
    assert line.endswith("| enter 0.2 rule=enter_carry score=3.00 break-even=10.0h: forecast pays")


def test_relative_since_counts_from_the_end_of_a_finished_ledger(history_url: str, run_cli) -> None:
    """The history ends in 2024: `--since 1h` counted back from the wall clock and found nothing, as on
    every backtest and demo ledger. It now counts back from the ledger's last event and says so."""
    res = run_cli("tail", "--url", history_url, "--since", "10m", "--kind", "alert")
    assert res.exit_code == 0, res.output
    assert "the ledger's last event is at" in res.output and "hedge drift -0.0001" in res.output


async def test_ledger_clock_keeps_the_wall_clock_for_a_running_daemon(ledger: Ledger) -> None:
    await build_history(ledger)
    assert await ledger_clock(ledger, T_END + 60_000) == (T_END + 60_000, None)
    later = T_END + HISTORICAL_AFTER_MS + 1
    newest = (await ledger.events(limit=1, newest_first=True))[0].ts_ms
    assert await ledger_clock(ledger, later) == (newest, newest)
