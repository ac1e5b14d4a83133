"""Snapshot types validate what they are given; targets and reasons serialise losslessly."""

from __future__ import annotations

import json

import pytest
from strategy_builders import NOW, D, filters, market, pair, snap

from bot.domain import HOUR_MS
from strategies.base import Action, Economics, Fees, LegMarket, MarketSnapshot, Reason, SlippageModel, Target


def test_leg_market_needs_sane_prices_and_a_cost_source():
    f = filters("BTC/USDT")
    with pytest.raises(ValueError, match="bid <= ask"):
        LegMarket(f, D(2), D(1), Fees(D(0), D(0)), slippage=SlippageModel(D(1), D(1000)))
    with pytest.raises(ValueError, match=r"depth .* or a slippage model"):
        LegMarket(f, D(1), D(1), Fees(D(0), D(0)))
    with pytest.raises(ValueError, match="fee rates"):
        Fees(D(-1), D(0))


def test_market_snapshot_rejects_bad_intervals():
    m = market()
    with pytest.raises(ValueError, match="interval"):
        MarketSnapshot("BTC/USDT", m.spot, m.perp, D(0), D(0), 0, NOW + HOUR_MS)


def test_snapshot_rejects_duplicates_and_negative_capital():
    with pytest.raises(ValueError, match="twice"):
        snap(market(), market())
    with pytest.raises(ValueError, match="two live pairs"):
        snap(market(), pairs=(pair("BTC/USDT", "1"), pair("BTC/USDT", "2")))
    with pytest.raises(ValueError, match="capital"):
        snap(market(), capital="-1")


def test_target_refuses_negative_or_nan_quantities():
    r = Reason("x", "y")
    for bad in (D(-1), D("NaN"), D("Infinity")):
        with pytest.raises(ValueError):
            Target("BTC/USDT", bad, r, Action.HOLD)


def test_reason_round_trips_through_json_with_decimals_as_strings():
    econ = Economics(*(D(i) / 7 for i in range(10)), None, D("-1.5"), D("0.3"))
    r = Reason("enter", "because", {"predicted_rate": "0.0001"}, econ)
    data = json.loads(json.dumps(Target("BTC/USDT", D("0.5"), r, Action.ENTER).to_dict()))
    assert data["target_qty"] == "0.5" and data["action"] == "enter"
    assert data["reason"]["economics"]["score"] == "-1.5"
    assert data["reason"]["economics"]["break_even_hours"] is None
    assert Reason.from_dict(data["reason"]) == r
    assert Reason.from_dict(json.loads(json.dumps(Reason("skip", "no data").to_dict()))) == Reason("skip", "no data")
