"""Post-only (maker) orders through the real ccxt: ``postOnly`` becomes LIMIT_MAKER on spot and GTX on the
USD-M perp; a post-only order that would cross is refused with Binance's code (-2010 "Order would
immediately match and take." on spot, -5022 on the perp); a resting order fills at its limit, with the
maker fee, only when the replayed price trades a tick through it (a touch is no fill); cancel unlocks."""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal

import ccxt
import pytest

from bot.domain import MINUTE_MS

SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
D = Decimal


async def _off_the_hour(advance) -> None:
    """One minute on, so the shock's step is not split by a funding settlement."""
    await advance(MINUTE_MS)


async def test_post_only_rests_on_both_markets_and_locks_funds(ex, emu, advance) -> None:
    await _off_the_hour(advance)
    await ex.transfer("USDT", 5000, "spot", "swap")
    bid = (await ex.fetch_order_book(SPOT, 5))["bids"][0][0]
    spot = await ex.create_order(SPOT, "limit", "buy", 0.01, bid, {"postOnly": True, "clientOrderId": "mk-s-1"})
    assert spot["status"] == "open" and spot["info"]["type"] == "LIMIT_MAKER" and spot["postOnly"] is True
    assert (await ex.fetch_balance())["USDT"]["used"] == pytest.approx(0.01 * bid)
    pask = (await ex.fetch_order_book(PERP, 5))["asks"][0][0]
    perp = await ex.create_order(PERP, "limit", "sell", 0.01, pask, {"postOnly": True, "clientOrderId": "mk-p-1"})
    assert perp["status"] == "open" and perp["info"]["timeInForce"] == "GTX"
    fetched = await ex.fetch_order(None, PERP, {"origClientOrderId": "mk-p-1"})
    assert fetched["status"] == "open" and fetched["timeInForce"] == "PO"  # ccxt's name for GTX
    assert [o["id"] for o in await ex.fetch_open_orders(SPOT)] == [spot["id"]]
    assert [o["id"] for o in await ex.fetch_open_orders(PERP)] == [perp["id"]]
    assert (await ex.cancel_order(spot["id"], SPOT))["status"] == "canceled"
    assert (await ex.cancel_order(perp["id"], PERP))["status"] == "canceled"
    assert (await ex.fetch_balance())["USDT"]["used"] == 0
    assert await ex.fetch_open_orders(SPOT) == [] and await ex.fetch_open_orders(PERP) == []
    assert (await ex.fetch_order(None, SPOT, {"origClientOrderId": "mk-s-1"}))["status"] == "canceled"


async def test_post_only_that_would_cross_is_refused_with_binance_codes(ex, advance) -> None:
    await ex.transfer("USDT", 5000, "spot", "swap")
    ask = (await ex.fetch_order_book(SPOT, 5))["asks"][0][0]
    with pytest.raises(ccxt.OrderImmediatelyFillable) as spot_err:
        await ex.create_order(SPOT, "limit", "buy", 0.01, ask, {"postOnly": True})
    assert "Order would immediately match and take." in str(spot_err.value)
    assert json.loads(ex.last_http_response) == {"code": -2010, "msg": "Order would immediately match and take."}
    pbid = (await ex.fetch_order_book(PERP, 5))["bids"][0][0]
    with pytest.raises(ccxt.OrderNotFillable):
        await ex.create_order(PERP, "limit", "sell", 0.01, pbid, {"postOnly": True})
    body = json.loads(ex.last_http_response)
    assert body["code"] == -5022 and body["msg"].startswith(
        "Due to the order could not be executed as maker, the Post Only order will be rejected."
    )
    assert await ex.fetch_open_orders(SPOT) == [] and await ex.fetch_open_orders(PERP) == []
    assert (await ex.fetch_balance())["USDT"]["used"] == 0
    # the same price without postOnly takes
    taken = await ex.create_order(SPOT, "limit", "buy", 0.01, ask)
    assert taken["status"] == "closed"


def _ceil_tick(x: float, tick: Decimal) -> Decimal:
    return (D(repr(x)) / tick).to_integral_value(rounding=ROUND_CEILING) * tick


async def test_fill_on_trade_through_with_maker_fee_and_no_fill_on_touch(ex, emu, advance) -> None:
    """The price falls 1 % in a minute: a buy a tick above the minute's low fills, one at the low (rounded
    up to the tick: the price came down to it but not a tick through) keeps resting."""
    await _off_the_hour(advance)
    sim = emu.sim
    now = emu.clock.now_ms()
    sim.apply_price_shock("BTCUSDT", -0.01, MINUTE_MS)
    lo, _ = sim._range("spot", "BTCUSDT", now, now + MINUTE_MS)
    tick = sim.spec("spot", "BTCUSDT").tick_size
    touch = _ceil_tick(lo, tick)
    through = touch + tick
    assert float(through) < (await ex.fetch_order_book(SPOT, 5))["asks"][0][0]
    a = await ex.create_order(SPOT, "limit", "buy", 0.01, float(touch), {"postOnly": True})
    b = await ex.create_order(SPOT, "limit", "buy", 0.01, float(through), {"postOnly": True})
    await advance(MINUTE_MS)
    assert (await ex.fetch_order(a["id"], SPOT))["status"] == "open"
    filled = await ex.fetch_order(b["id"], SPOT)
    assert filled["status"] == "closed" and filled["filled"] == 0.01 and filled["average"] == float(through)
    (trade,) = [t for t in await ex.fetch_my_trades(SPOT) if t["order"] == b["id"]]
    assert trade["takerOrMaker"] == "maker" and trade["price"] == float(through)
    rate = float(sim.config.spot_maker_fee)
    assert trade["fee"]["currency"] == "BTC" and trade["fee"]["cost"] == pytest.approx(0.01 * rate)
    assert (await ex.fetch_balance())["USDT"]["used"] == pytest.approx(0.01 * float(touch))  # a still locks


async def test_perp_gtx_fills_on_trade_through_partially_then_whole(ex, emu, advance) -> None:
    await _off_the_hour(advance)
    await ex.transfer("USDT", 5000, "spot", "swap")
    pask = (await ex.fetch_order_book(PERP, 5))["asks"][0][0]
    order = await ex.create_order(PERP, "limit", "sell", 0.01, pask, {"postOnly": True})
    emu.sim.force_partial_rest("0.4")
    emu.sim.apply_price_shock("BTCUSDT", 0.01, MINUTE_MS)
    await advance(MINUTE_MS)
    part = await ex.fetch_order(order["id"], PERP)
    assert part["status"] == "open" and part["filled"] == 0.004 and part["remaining"] == 0.006
    await advance(MINUTE_MS)  # the price stays above: the next step's path is through the limit again
    emu.sim.apply_price_shock("BTCUSDT", 0.01, MINUTE_MS)
    await advance(MINUTE_MS)
    done = await ex.fetch_order(order["id"], PERP)
    assert done["status"] == "closed" and done["filled"] == 0.01 and done["average"] == pask
    trades = [t for t in await ex.fetch_my_trades(PERP) if t["order"] == order["id"]]
    assert [t["amount"] for t in trades] == [0.004, 0.006]
    assert all(t["takerOrMaker"] == "maker" for t in trades)
    rate = float(emu.sim.config.perp_maker_fee)
    assert sum(t["fee"]["cost"] for t in trades) == pytest.approx(0.01 * pask * rate, rel=1e-6)
    (position,) = await ex.fetch_positions([PERP])
    assert position["side"] == "short" and position["contracts"] == 0.01
