"""The simulated account's fees: its own rates, and spot fees paid in BNB while the burn is on."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bot.sim.clock import ManualClock
from bot.sim.exchange import SimConfig, SimExchange
from bot.sim.source import RandomWalk

START = 1_767_225_600_000


@pytest.fixture
def ex() -> SimExchange:
    walk = RandomWalk(seed=3, symbols=("SOLUSDT", "BNBUSDT"), start_ms=START, hours=24)
    cfg = SimConfig(spot_taker_fee=D("0.0008"), perp_taker_fee=D("0.0004"))
    return SimExchange(
        walk, ManualClock(START + 60_000), cfg, balances={"USDT": D(10_000)}, futures_balances={"USDT": D(5_000)}
    )


def last_trade(ex: SimExchange, market: str, symbol: str):
    return ex.my_trades(market, symbol)[-1]


def test_the_accounts_rates_are_charged(ex: SimExchange):
    ex.create_order("spot", "SOLUSDT", "BUY", "MARKET", quantity=D("1"))
    t = last_trade(ex, "spot", "SOLUSDT")
    assert (t.commission, t.commission_asset) == (D("0.0008") * t.qty, "SOL")
    ex.create_order("perp", "SOLUSDT", "SELL", "MARKET", quantity=D("1"))
    t = last_trade(ex, "perp", "SOLUSDT")
    assert t.commission == (t.price * t.qty * D("0.0004")).quantize(D("1E-8"))


def test_bnb_pays_spot_fees_at_the_discount_while_the_burn_is_on(ex: SimExchange):
    ex.create_order("spot", "BNBUSDT", "BUY", "MARKET", quantity=D("0.5"))
    ex.bnb_burn = True
    bnb = ex.spot_account().balances["BNB"][0]
    ex.create_order("spot", "SOLUSDT", "BUY", "MARKET", quantity=D("2"))
    t = last_trade(ex, "spot", "SOLUSDT")
    bnb_px = ex.price("spot", "BNBUSDT")
    assert t.commission_asset == "BNB"
    assert t.commission == (t.price * t.qty * D("0.0008") * D("0.75") / bnb_px).quantize(D("1E-8"))
    balances = ex.spot_account().balances
    assert balances["SOL"][0] == D("2")  # the coin bought arrives whole
    assert balances["BNB"][0] == bnb - t.commission
    usdt = balances["USDT"][0]
    ex.create_order("spot", "SOLUSDT", "SELL", "MARKET", quantity=D("1"))
    t = last_trade(ex, "spot", "SOLUSDT")
    assert t.commission_asset == "BNB"
    assert ex.spot_account().balances["USDT"][0] == usdt + t.price * t.qty  # the quote received arrives whole


def test_without_enough_bnb_the_fee_falls_back_to_the_coin(ex: SimExchange):
    ex.bnb_burn = True  # no BNB in the wallet
    ex.create_order("spot", "SOLUSDT", "BUY", "MARKET", quantity=D("1"))
    t = last_trade(ex, "spot", "SOLUSDT")
    assert (t.commission_asset, t.commission) == ("SOL", D("0.0008"))
