"""Binance's liquidation price, worked to the cent (bot/sim/futures.py::FuturesWallet.liquidation_price)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bot.sim.futures import FuturesWallet, SimPosition
from bot.sim.markets import MAJOR_BRACKETS, default_brackets, maint_margin

CENT = D("0.01")


def _wallet(wallet: str, *positions: SimPosition) -> FuturesWallet:
    w = FuturesWallet(wallet=D(wallet))
    for p in positions:
        w.positions[p.symbol] = p
    return w


def _at_liquidation(w: FuturesWallet, p: SimPosition, price: D, brackets) -> D:
    """Margin balance minus maintenance margin with ``p`` marked at ``price`` (0 at the liquidation price)."""
    if p.isolated:
        return p.isolated_wallet + p.unrealized(price) - maint_margin(brackets[p.symbol], p.notional(price))
    fig = w.cross_figures({p.symbol: price}, brackets, D(0))
    return fig["margin_balance"] - fig["maint_margin"]


def test_short_cross_with_the_bracket_at_the_liquidation_notional():
    """The issue's example: short 10 BTC at 59,930.71, wallet 399,700.35, the generic major-coin table.

    At entry the notional (599,307) is in the 50k-600k tier (MMR 0.5%, cum 50); at the liquidation price
    it is in the 600k-3M tier (MMR 0.65%, cum 950): LP = (399,700.35 + 950 + 599,307.10) / (10 x 1.0065)."""
    p = SimPosition("BTCUSDT", 20, amt=D(-10), entry_price=D("59930.71"))
    w = _wallet("399700.35", p)
    brackets = {"BTCUSDT": MAJOR_BRACKETS}
    lp = w.liquidation_price(p, {"BTCUSDT": D("59930.71")}, brackets)
    assert lp.quantize(CENT) == D("99349.97")
    assert abs(_at_liquidation(w, p, lp, brackets)) < CENT  # exactly at maintenance there
    assert _at_liquidation(w, p, lp - 1, brackets) > 0 > _at_liquidation(w, p, lp + 1, brackets)


def test_short_cross_on_binances_own_btc_brackets():
    brackets = {"BTCUSDT": default_brackets("BTCUSDT")}  # 2026 snapshot: 800k-3M at MMR 0.65%, cum 1,500
    p = SimPosition("BTCUSDT", 20, amt=D(-10), entry_price=D("59930.71"))
    w = _wallet("399700.35", p)
    lp = w.liquidation_price(p, {"BTCUSDT": D("59930.71")}, brackets)
    expected = (D("399700.35") + D(1500) + D("599307.1")) / (D(10) * D("1.0065"))
    assert lp.quantize(CENT) == expected.quantize(CENT) == D("99404.62")
    assert abs(_at_liquidation(w, p, lp, brackets)) < CENT


def test_long_isolated_uses_only_its_own_wallet():
    brackets = {"BTCUSDT": default_brackets("BTCUSDT"), "ETHUSDT": default_brackets("ETHUSDT")}
    p = SimPosition("BTCUSDT", 10, margin_type="ISOLATED", amt=D(1), entry_price=D(60000), isolated_wallet=D(6000))
    other = SimPosition("ETHUSDT", 10, amt=D(-5), entry_price=D(3000))  # cross: must not count
    w = _wallet("50000", p, other)
    lp = w.liquidation_price(p, {"BTCUSDT": D(60000), "ETHUSDT": D(3500)}, brackets)
    assert lp.quantize(CENT) == (D(54000) / D("0.996")).quantize(CENT) == D("54216.87")
    assert abs(_at_liquidation(w, p, lp, brackets)) < CENT


def test_cross_counts_the_other_positions_margin_and_pnl():
    brackets = {"BTCUSDT": MAJOR_BRACKETS, "ETHUSDT": MAJOR_BRACKETS}
    btc = SimPosition("BTCUSDT", 20, amt=D(-1), entry_price=D(60000))
    eth = SimPosition("ETHUSDT", 20, amt=D(-10), entry_price=D(3000))
    w = _wallet("10000", btc, eth)
    marks = {"BTCUSDT": D(60000), "ETHUSDT": D(3100)}  # ETH short is 1,000 under water
    lp = w.liquidation_price(btc, marks, brackets)
    eth_mm = maint_margin(MAJOR_BRACKETS, D(-31000))  # 31,000 x 0.4% - 0 = 124
    rest = D(10000) - eth_mm + D(-1000)
    # 68.6k of notional at the liquidation price: the 50k-600k tier (MMR 0.5%, cum 50), not the first
    assert lp.quantize(CENT) == ((rest + D(50) + D(60000)) / D("1.005")).quantize(CENT) == D("68583.08")
    fig = w.cross_figures({**marks, "BTCUSDT": lp}, brackets, D(0))
    assert abs(fig["margin_balance"] - fig["maint_margin"]) < CENT


def test_a_position_beyond_every_tier_still_has_a_price():
    brackets = {"BTCUSDT": MAJOR_BRACKETS}
    p = SimPosition("BTCUSDT", 1, amt=D(-40_000), entry_price=D(60000))  # 2.4 bn notional
    w = _wallet("2400000000", p)
    assert w.liquidation_price(p, {"BTCUSDT": D(60000)}, brackets) > D(60000)


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"])
def test_simulator_liquidates_where_it_says(symbol: str):
    """The published liquidation price is where the simulator's own maintenance check trips."""
    brackets = {symbol: default_brackets(symbol)}
    p = SimPosition(symbol, 5, amt=D(-100), entry_price=D(100))
    w = _wallet("2500", p)
    lp = w.liquidation_price(p, {symbol: D(100)}, brackets)
    assert _at_liquidation(w, p, lp - CENT, brackets) > 0 >= _at_liquidation(w, p, lp + CENT, brackets)
