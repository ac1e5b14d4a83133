"""The carry trader's report on small known inputs: risk ratios, monthly returns, round trips (a ledger
written by hand, every figure computed below), colours, the baselines on the PnL chart, the band lines,
and never-traded symbols summarised in one line."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.backtest import plots
from bot.backtest.analytics import daily_returns, monthly_returns, risk_ratios, round_trip_stats
from bot.backtest.report import render_html, round_trip_line, untraded_line, write_report
from bot.backtest.result import BacktestResult, RunStats, Summary, SymbolRow, Timeline
from bot.domain import DAY_MS, HOUR_MS, Leg, PairState, Side
from bot.ledger.attribution import attribute_ledger
from bot.ledger.models import EventKind, FundingSource
from bot.ledger.repository import FundingRecord, Ledger
from bot.ledger.round_trips import round_trips
from strategies.base import Action, Economics, Reason, Target

D = Decimal
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


# -- ratios and months ------------------------------------------------------------------------------------


def _three_days() -> tuple[np.ndarray, np.ndarray]:
    """72 hourly rows; the days close at 1100 (+10%), 990 (-10%) and 1089 (+10%) from a capital of 1000."""
    ts = T0 + np.arange(72, dtype=np.int64) * HOUR_MS
    eq = np.full(72, 1000.0)
    eq[10:24], eq[24:48], eq[48:72] = 1100.0, 990.0, 1089.0
    eq[30] = 1200.0  # an intraday high does not make a daily return
    return ts, eq


def test_daily_ratios_by_hand() -> None:
    ts, eq = _three_days()
    r = daily_returns(ts, eq, 1000.0)
    np.testing.assert_allclose(r, [0.1, -0.1, 0.1])
    # mean 1/30; sample stdev sqrt(((2/30)^2 * 2 + (4/30)^2) / 2) = sqrt(0.04/3); downside sqrt(0.01/3)
    apr = 89.0 / 1000.0 * 8760 / 72
    ratios = risk_ratios(ts, eq, 1000.0, apr, max_dd=0.1)
    assert ratios.sharpe == pytest.approx((1 / 30) / math.sqrt(0.04 / 3) * math.sqrt(365))  # 5.5151
    assert ratios.sortino == pytest.approx((1 / 30) / math.sqrt(0.01 / 3) * math.sqrt(365))  # 11.0303
    assert ratios.calmar == pytest.approx(apr / 0.1)  # 108.28
    assert ratios.sharpe == pytest.approx(5.5151, abs=1e-4) and ratios.days == 3


def test_ratios_are_none_where_undefined() -> None:
    ts = T0 + np.arange(30, dtype=np.int64) * HOUR_MS
    up = risk_ratios(ts, np.linspace(1001, 1030, 30), 1000.0, 0.5, max_dd=0.0)
    assert up.sortino is None and up.calmar is None and up.sharpe is not None  # no losing day, no drawdown
    one_day = risk_ratios(ts[:10], np.full(10, 1000.0), 1000.0, 0.0, 0.0)
    assert one_day.sharpe is None and one_day.sortino is None


def test_monthly_table_by_hand() -> None:
    """Rows from 2026-01-31 22:00 to 2026-02-01 01:00: January closes with the 23:00 row."""
    ts = T0 + (30 * 24 + 22 + np.arange(4, dtype=np.int64)) * HOUR_MS
    tl = Timeline.empty(ts, [], 1000.0)
    tl.equity[:] = [1004.0, 1010.0, 1012.0, 1007.0]
    tl.funding_cum[:] = [5.0, 11.0, 11.0, 11.0]
    tl.fees_cum[:] = [1.0, 1.0, 1.0, 3.0]
    jan, feb = monthly_returns(tl)
    assert (jan.month, jan.start_equity, jan.end_equity, jan.pnl, jan.funding, jan.fees) == (
        "2026-01",
        1000.0,
        1010.0,
        10.0,
        11.0,
        1.0,
    )
    assert jan.ret == pytest.approx(0.01)
    assert (feb.month, feb.start_equity, feb.end_equity, feb.pnl, feb.funding, feb.fees) == (
        "2026-02",
        1010.0,
        1007.0,
        -3.0,
        0.0,
        2.0,
    )
    assert feb.ret == pytest.approx(-3 / 1010)


# -- round trips on a hand-written ledger ------------------------------------------------------------------


def _econ(break_even: str) -> Economics:
    z = D(0)
    return Economics(D(1), D(100), D(72), z, z, z, z, z, z, z, D(break_even), z, z)


async def _decision(ledger: Ledger, pair_id: int, t: int, state: str, target: Target | None, reason: str) -> None:
    details: dict[str, Any] = {"target_qty": str(target.target_qty) if target else "0", "reason": reason}
    if target is not None:
        details["target"] = target.to_dict()
    await ledger.add_event(EventKind.DECISION, f"{state}: ...", ts_ms=t, pair_id=pair_id, symbol="x", details=details)


async def _fill(
    ledger: Ledger, pair_id: int, tid: str, leg: Leg, side: Side, qty: str, price: str, fee: str, fee_asset: str, t: int
) -> None:
    sym = "BTC/USDT" if pair_id == 1 else "ETH/USDT"
    await ledger.record_fill(
        venue="sim", market=leg, symbol=sym if leg is Leg.SPOT else f"{sym}:USDT", venue_trade_id=tid, side=side,
        quantity=D(qty), price=D(price), fee=D(fee), fee_asset=fee_asset, ts_ms=t, pair_id=pair_id,
    )  # fmt: skip


async def write_two_round_trips(ledger: Ledger) -> None:
    """BTC: entered at T0 (break-even 10 h), exited 20 h later; ETH: entered at T0+10h, open at T0+24h.

    BTC spot: buy 1 @ 100 (fee 0.001 BTC = 0.10), sell 0.999 @ 110 (fee 0.11 USDT)
    BTC perp: sell 1 @ 101 (fee 0.05), buy 1 @ 111 (fee 0.05); funding +0.30 and +0.20
      cash -100 + 109.89 + 101 - 111 = -0.11; coin fee 0.10 -> price -0.01; fees 0.31
      net = 0.50 - 0.01 - 0.31 = +0.18 (the USDT the trip added: -100 + 109.89 - 0.11 - 10 - 0.10 + 0.50)
    ETH spot buy 2 @ 10, perp sell 2 @ 10.1 (fees 0.02 and 0.01 USDT), marked at 12 / 12.1 at the end:
      cash +0.2, legs 2 * 12 - 2 * 12.1 = -0.2 -> price 0; net -0.03; held 14 h of a 48 h break-even
    """
    btc = await ledger.upsert_pair(venue="sim", symbol="BTC/USDT", now_ms=T0, target_qty=D(1))
    enter = Target("BTC/USDT", D(1), Reason("enter_carry", "forecast 30% APR", {}, _econ("10")), Action.ENTER)
    await _decision(ledger, btc.id, T0, "opening", enter, "enter_carry")
    await _fill(ledger, btc.id, "1", Leg.SPOT, Side.BUY, "1", "100", "0.001", "BTC", T0)
    await _fill(ledger, btc.id, "2", Leg.PERP, Side.SELL, "1", "101", "0.05", "USDT", T0)
    for h, amount in ((8, "0.30"), (16, "0.20")):
        await ledger.record_funding_payments([FundingRecord(
            venue="sim", account="a", symbol="BTC/USDT:USDT", funding_time_ms=T0 + h * HOUR_MS, amount=D(amount),
            asset="USDT", source=FundingSource.INCOME, now_ms=T0 + h * HOUR_MS, pair_id=btc.id)])  # fmt: skip
    t_exit = T0 + 20 * HOUR_MS
    leave = Target("BTC/USDT", D(0), Reason("exit_negative", "forecast below the exit threshold"), Action.EXIT)
    await _decision(ledger, btc.id, t_exit, "closing", leave, "exit_negative")
    await _fill(ledger, btc.id, "3", Leg.SPOT, Side.SELL, "0.999", "110", "0.11", "USDT", t_exit)
    await _fill(ledger, btc.id, "4", Leg.PERP, Side.BUY, "1", "111", "0.05", "USDT", t_exit)
    await ledger.upsert_pair(
        venue="sim", symbol="BTC/USDT", now_ms=t_exit, state=PairState.CLOSED, spot_qty=D(0), perp_qty=D(0)
    )
    t_eth = T0 + 10 * HOUR_MS
    eth = await ledger.upsert_pair(venue="sim", symbol="ETH/USDT", now_ms=t_eth, target_qty=D(2))
    assert eth.id == 2
    enter = Target("ETH/USDT", D(2), Reason("enter_carry", "forecast 12% APR", {}, _econ("48")), Action.ENTER)
    await _decision(ledger, eth.id, t_eth, "opening", enter, "enter_carry")
    await _fill(ledger, eth.id, "5", Leg.SPOT, Side.BUY, "2", "10", "0.02", "USDT", t_eth)
    await _fill(ledger, eth.id, "6", Leg.PERP, Side.SELL, "2", "10.1", "0.01", "USDT", t_eth)
    await ledger.upsert_pair(
        venue="sim", symbol="ETH/USDT", now_ms=t_eth, state=PairState.OPEN, spot_qty=D(2), perp_qty=D(2)
    )


async def test_round_trips_by_hand(ledger: Ledger) -> None:
    await write_two_round_trips(ledger)
    att = await attribute_ledger(ledger)
    marks = {"ETH/USDT": {Leg.SPOT: D(12), Leg.PERP: D("12.1")}}
    btc, eth = await round_trips(ledger, att, T0 + 24 * HOUR_MS, marks)
    assert (btc.symbol, btc.entry_ms, btc.exit_ms, btc.hold_hours, btc.break_even_hours) == (
        "BTC/USDT",
        T0,
        T0 + 20 * HOUR_MS,
        20.0,
        10.0,
    )
    assert (btc.entry_rule, btc.entry_reason) == ("enter_carry", "forecast 30% APR")
    assert (btc.exit_rule, btc.exit_reason) == ("exit_negative", "forecast below the exit threshold")
    assert (btc.funding, btc.fees, btc.price, btc.net) == (D("0.50"), D("0.31"), D("-0.01"), D("0.18"))
    assert btc.held_past_break_even is True and btc.actions == 2 and btc.fills == 4
    assert (eth.exit_ms, eth.exit_rule, eth.hold_hours, eth.break_even_hours) == (None, "open", 14.0, 48.0)
    assert (eth.funding, eth.fees, eth.price, eth.net) == (D(0), D("0.03"), D("0.0"), D("-0.03"))
    assert eth.held_past_break_even is False
    st = round_trip_stats([btc, eth])
    assert st == {
        "count": 2,
        "closed": 1,
        "median_hold_hours": 17.0,
        "median_break_even_hours": 29.0,
        "held_past_break_even": 1,
        "with_break_even": 2,
        "winners": 1,
        "funding": 0.5,
        "fees": 0.34,
        "net": pytest.approx(0.15),
    }
    unmarked = await round_trips(ledger, att, T0 + 24 * HOUR_MS)
    assert unmarked[1].price is None and unmarked[1].net is None  # an open pair without a mark is not guessed


@pytest.mark.slow
async def test_the_report_shows_the_round_trips_months_and_ratios(ledger: Ledger, tmp_path: Path) -> None:
    await write_two_round_trips(ledger)
    att = await attribute_ledger(ledger)
    result = _result()
    result.round_trips = await round_trips(
        ledger, att, T0 + 24 * HOUR_MS, {"ETH/USDT": {Leg.SPOT: D(12), Leg.PERP: D("12.1")}}
    )
    result.monthly = monthly_returns(result.timeline)
    paths = write_report(result, tmp_path)
    page = paths["html"].read_text()
    assert round_trip_line(result) == (
        "2 round trips (1 closed): median hold 17.0 h against a median break-even at entry of 29.0 h; 1 of 2 "
        "held past their break-even; 1 net positive; funding 0.50, fees 0.34, net 0.15 USDT."
    )
    row = (
        "<tr><td>BTC/USDT</td><td>2026-01-01 00:00</td><td>enter_carry: forecast 30% APR</td>"
        "<td>2026-01-01 20:00</td><td>exit_negative: forecast below the exit threshold</td><td>20.0</td>"
        "<td>10.0</td><td>2</td><td>0.50</td><td>0.31</td><td>-0.01</td><td>0.18</td></tr>"
    )
    assert row in page
    assert "<td>2026-01</td><td>1,000.00</td><td>1,089.00</td><td>89.00</td><td>8.90%</td>" in page
    s = result.summary
    assert f"<td>Sharpe (daily, annualised)</td><td>{s.sharpe:.2f}</td>" in page and s.sharpe == pytest.approx(
        5.5151, abs=1e-4
    )
    assert "daily returns of equity at each UTC day" in page
    csv_rows = paths["round_trips"].read_text().splitlines()
    assert len(csv_rows) == 3 and csv_rows[0].startswith("pair_id,symbol,entry_ms,exit_ms,entry_rule")


# -- symbols, colours, chart lines -------------------------------------------------------------------------


def _result() -> BacktestResult:
    ts, eq = _three_days()
    tl = Timeline.empty(ts, ["BTC/USDT", "ETH/USDT", "XRP/USDT"], 1000.0)
    tl.equity[:] = eq
    tl.collateral_ratio[:] = 0.5
    apr = 89.0 / 1000.0 * 8760 / 72
    ratios = risk_ratios(ts, eq, 1000.0, apr, 0.1)
    summary = Summary(
        "funding_carry",
        1000.0,
        T0,
        T0 + 3 * DAY_MS,
        72,
        1089.0,
        89.0,
        apr,
        0.5,
        0.34,
        88.84,
        0.0,
        0.1,
        110.0,
        0.5,
        0,
        0,
        0.0,
        6,
        1.0,
        ratios.sharpe,
        ratios.sortino,
        ratios.calmar,
    )
    rows = [SymbolRow("BTC/USDT", 0.5, 0.31, 0.0, 4, 20, 2, 0, 0, 0), SymbolRow("ETH/USDT", 0.0, 0.03, 0.0, 2, 14,
            0, 0, 0, 0), SymbolRow("XRP/USDT", 0.0, 0.0, 0.0, 0, 0, 0, 0, 0, 0)]  # fmt: skip
    result = BacktestResult(summary, rows, tl, {}, RunStats(216, 72, 0, 0, 0.01), "sqlite+aiosqlite:///x.db")
    result.baselines["always-on"] = summary
    result.baseline_equity["always-on"] = eq - 10.0
    result.collateral_band = {"low": 0.35, "target": 0.5, "high": 0.7}
    result.funding_rates = {"BTC/USDT": (ts[::8], np.full(9, 0.1095)), "ETH/USDT": (ts[::8], np.full(9, 0.2))}
    return result


def test_never_traded_symbols_are_one_line_not_zero_rows(tmp_path: Path) -> None:
    result = _result()
    assert [r.symbol for r in result.traded_symbols] == ["BTC/USDT", "ETH/USDT"]
    assert untraded_line(result) == "1 symbol(s) never traded (no fill, no funding, never held): XRP/USDT."
    page = render_html(result, {})
    assert "<td>XRP/USDT</td>" not in page and "1 symbol(s) never traded" in page
    doc = result.to_dict()
    assert [r["symbol"] for r in doc["symbols"]] == ["BTC/USDT", "ETH/USDT"]
    assert doc["untraded_symbols"] == ["XRP/USDT"]
    assert {"sharpe", "sortino", "calmar"} <= set(doc["summary"]) and doc["ratio_basis"].startswith("daily")
    assert "monthly" in doc and "round_trips" in doc and "round_trip_stats" in doc


def test_symbol_styles_stay_distinct_beyond_ten() -> None:
    for n in (3, 10, 14, 36):
        styles = plots.symbol_styles(n)
        assert len(styles) == n and len(set(styles)) == n, n
        assert len({c for c, _ in styles}) == n  # distinct colours, not only distinct dashes


@pytest.mark.slow
def test_charts_draw_the_baselines_the_rates_and_the_band(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: dict[str, list[str]] = {}
    finish = plots._finish

    def record(fig: Any, ax: Any, path: Path) -> Path:
        drawn[path.name] = [line.get_label() for line in ax.get_lines()]
        return finish(fig, ax, path)

    monkeypatch.setattr(plots, "_finish", record)
    plots.write_plots(_result(), tmp_path)
    assert "baseline always-on: net PnL" in drawn["equity.png"]
    assert {"BTC/USDT", "ETH/USDT"} <= set(drawn["funding_rates.png"])
    band = [x for x in drawn["collateral_ratio.png"] if x.split()[0] in ("low", "target", "high")]
    assert [x.split()[:2] for x in band] == [["high", "0.7"], ["target", "0.5"], ["low", "0.35"]]
