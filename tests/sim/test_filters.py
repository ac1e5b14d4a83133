"""Binance's real filters per symbol (bot/sim/data/binance_markets.json), enforced with Binance's codes."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pytest

from bot.sim.errors import SimError
from bot.sim.exchange import SimExchange
from bot.sim.markets import default_brackets, default_spec, funding_rule


def _err(fn, *a, **k) -> SimError:
    with pytest.raises(SimError) as ei:
        fn(*a, **k)
    return ei.value


def test_snapshot_values_are_binances():
    btc, eth = default_spec("perp", "BTCUSDT"), default_spec("perp", "ETHUSDT")
    assert (btc.min_notional, btc.market_max_qty, btc.max_qty, btc.tick_size) == (D(100), D(120), D(1000), D("0.10"))
    assert eth.min_notional == D(20)
    assert btc.liquidation_fee == D("0.0125") and btc.source.startswith("snapshot")
    assert default_spec("spot", "BTCUSDT").min_notional == D(5)
    assert default_spec("perp", "WIFUSDT").source == "generic"  # no source: said so, generic values
    tiers = default_brackets("BTCUSDT")
    assert tiers[0].maint_margin_ratio == D("0.004") and tiers[1].cum == D(300)
    for lo, hi in itertools.pairwise(tiers):  # Binance's maintenance amount: continuous across tiers
        assert hi.cum == lo.cum + hi.notional_floor * (hi.maint_margin_ratio - lo.maint_margin_ratio)
    assert funding_rule("BTCUSDT").cap == pytest.approx(0.003)
    assert funding_rule("SOLUSDT").floor == pytest.approx(-0.02)  # adjusted (it settled at -2%)
    assert funding_rule("BNBUSDT").interest_8h == 0.0


def test_perp_min_notional_is_the_symbols_own(ex: SimExchange):
    # 0.001 BTC at about 60,000 = 60 USDT: fine at the invented 5, refused at Binance's 100
    e = _err(ex.create_order, "perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.001"))
    assert e.code == -4164
    assert e.msg == "Order's notional must be no smaller than 100 (unless you choose reduce only)."
    ex.create_order("perp", "BTCUSDT", "SELL", "MARKET", quantity=D("0.002"))  # 120 USDT passes
    # reduce-only is exempt: a small short can always be closed
    ex.create_order("perp", "BTCUSDT", "BUY", "MARKET", quantity=D("0.001"), reduce_only=True)


def test_market_lot_size_caps_market_orders_not_limit_ones(ex: SimExchange):
    e = _err(ex.create_order, "perp", "BTCUSDT", "SELL", "MARKET", quantity=D("121"))
    assert (e.code, e.msg) == (-4005, "Quantity greater than max quantity.")
    assert _err(ex.create_order, "perp", "BTCUSDT", "SELL", "LIMIT", quantity=D("1001"), price=D("60000")).code == -4005


def test_percent_price_bounds_limit_prices_against_the_mark(ex: SimExchange):
    mark = ex.margin_mark("BTCUSDT")
    high = (mark * D("1.06")).quantize(D("0.1"))
    low = (mark * D("0.94")).quantize(D("0.1"))
    e = _err(ex.create_order, "perp", "BTCUSDT", "SELL", "LIMIT", quantity=D("0.01"), price=high)
    assert (e.code, e.msg) == (-4016, "Price is higher than mark price multiplier cap.")
    assert _err(ex.create_order, "perp", "BTCUSDT", "BUY", "LIMIT", quantity=D("0.01"), price=low).code == -4024
    inside = (mark * D("1.04")).quantize(D("0.1"))
    ok = ex.create_order("perp", "BTCUSDT", "SELL", "LIMIT", quantity=D("0.01"), price=inside)
    assert ok.status == "NEW"


def test_spot_filters_by_name(ex: SimExchange):
    assert _err(ex.create_order, "spot", "BTCUSDT", "BUY", "MARKET", quantity=D("129")).msg == (
        "Filter failure: MARKET_LOT_SIZE"
    )
    far = (ex.price("spot", "BTCUSDT") * 6).quantize(D("0.01"))
    assert _err(ex.create_order, "spot", "BTCUSDT", "BUY", "LIMIT", quantity=D("0.001"), price=far).msg == (
        "Filter failure: PERCENT_PRICE_BY_SIDE"
    )
    e = _err(ex.create_order, "spot", "BTCUSDT", "SELL", "MARKET", quantity=D("0.00005"))
    assert (e.code, e.msg) == (-1013, "Filter failure: NOTIONAL")


def test_a_snapshot_tick_too_coarse_for_an_older_price_is_scaled_to_it():
    """ADAUSDT's 2024 tick (0.0001) at its 2020 price (0.03) would be 33 bps a tick, paid by every fill."""
    old, new = default_spec("perp", "ADAUSDT", 0.03), default_spec("perp", "ADAUSDT", 0.5)
    assert new.tick_size == D("0.0001") and "scaled" not in new.source
    assert old.tick_size == D("0.00001") and "tick scaled to 0.00001 for a price of 0.03" in old.source
    assert old.min_notional == new.min_notional and old.step_size == new.step_size  # the rest stays Binance's
