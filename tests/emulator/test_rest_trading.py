"""Accounts, transfers, orders, fills, positions, funding and liquidation through the real ccxt."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from bot.domain import HOUR_MS, MINUTE_MS
from bot.emulator.server import run_emulator
from bot.sim.clock import ManualClock
from bot.venues.ccxt_factory import build_client

PERP = "BTC/USDT:USDT"
DAY_MS = 86_400_000


async def test_balances_and_transfers_each_way(ex) -> None:
    spot = await ex.fetch_balance()
    assert spot["USDT"]["free"] == 100_000
    fut = await ex.fetch_balance({"type": "future"})
    assert fut["USDT"]["total"] == 0  # listed: updateTime != 0
    await ex.transfer("USDT", 2500, "spot", "swap")
    assert (await ex.fetch_balance())["USDT"]["free"] == 97_500
    assert (await ex.fetch_balance({"type": "future"}))["USDT"]["free"] == 2500
    await ex.transfer("USDT", 500, "linear", "spot")
    assert (await ex.fetch_balance())["USDT"]["free"] == 98_000
    assert (await ex.fetch_balance({"type": "future"}))["USDT"]["total"] == 2000
    transfers = await ex.fetch_transfers("USDT", params={"type": "MAIN_UMFUTURE"})
    assert [t["amount"] for t in transfers] == [2500.0]


async def test_transfer_history_pages_and_windows_like_binance(ex, emu, advance) -> None:
    """GET /sapi/v1/asset/transfer: newest first, `size` 10 by default and at most 100, `current` pages,
    and the last 7 days when neither bound is sent."""
    old = emu.sim.transfer("USDT", "10", "MAIN_UMFUTURE")
    await advance(8 * DAY_MS)
    recent = [emu.sim.transfer("USDT", "1", "MAIN_UMFUTURE") for _ in range(101)]
    unbounded = await ex.sapiGetAssetTransfer({"type": "MAIN_UMFUTURE"})
    assert unbounded["total"] == 101 and [r["tranId"] for r in unbounded["rows"]] == recent[::-1][:10]
    assert {r["status"] for r in unbounded["rows"]} == {"CONFIRMED"}
    big = await ex.sapiGetAssetTransfer({"type": "MAIN_UMFUTURE", "startTime": 0, "size": 500})
    assert big["total"] == 102 and len(big["rows"]) == 100
    last = await ex.sapiGetAssetTransfer({"type": "MAIN_UMFUTURE", "startTime": 0, "size": 100, "current": 2})
    assert [r["tranId"] for r in last["rows"]] == [recent[0], old]
    assert (await ex.sapiGetAssetTransfer({"type": "UMFUTURE_MAIN", "startTime": 0}))["rows"] == []


async def test_transfer_to_future_is_rejected_like_binance(ex) -> None:
    """ccxt sends MAIN_ISOLATED_MARGIN toSymbol=FUTURE: it must fail, never move money."""
    with pytest.raises(ccxt.BadSymbol):
        await ex.transfer("USDT", 100, "spot", "future")
    assert (await ex.fetch_balance())["USDT"]["free"] == 100_000


async def test_spot_market_and_limit_orders(ex, emu) -> None:
    buy = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
    assert buy["status"] == "closed" and buy["filled"] == 0.01 and buy["average"] > 0
    assert buy["fee"]["currency"] == "BTC" and buy["fee"]["cost"] == pytest.approx(0.00001)
    assert len(buy["trades"]) >= 1
    by_cost = await ex.create_order("ETH/USDT", "market", "buy", None, None, {"cost": 100})
    assert by_cost["status"] == "closed" and by_cost["cost"] == pytest.approx(100, rel=1e-3)
    bal = await ex.fetch_balance()
    assert bal["BTC"]["free"] == pytest.approx(0.01 - 0.00001)
    trades = await ex.fetch_my_trades("BTC/USDT")
    assert trades[-1]["order"] == buy["id"] and trades[-1]["side"] == "buy"

    bid = (await ex.fetch_ticker("BTC/USDT"))["bid"]
    price = float(ex.price_to_precision("BTC/USDT", bid * 0.9))
    limit = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"clientOrderId": "my-limit-1"})
    assert limit["status"] == "open" and limit["clientOrderId"] == "my-limit-1"
    assert (await ex.fetch_balance())["USDT"]["used"] == pytest.approx(0.001 * price)
    with pytest.raises(ccxt.InvalidOrder):  # -2010 "Duplicate order sent." on spot
        await ex.create_order("BTC/USDT", "limit", "buy", 0.001, price, {"clientOrderId": "my-limit-1"})
    fetched = await ex.fetch_order(None, "BTC/USDT", {"clientOrderId": "my-limit-1"})
    assert fetched["id"] == limit["id"] and fetched["status"] == "open"
    assert [o["id"] for o in await ex.fetch_open_orders("BTC/USDT")] == [limit["id"]]
    canceled = await ex.cancel_order(limit["id"], "BTC/USDT")
    assert canceled["status"] == "canceled"
    assert await ex.fetch_open_orders("BTC/USDT") == []


async def test_perp_orders_positions_and_reduce_only(ex) -> None:
    await ex.transfer("USDT", 5000, "spot", "swap")
    await ex.set_leverage(5, PERP)
    assert (await ex.set_margin_mode("cross", PERP))["code"] == -4046  # already cross: not raised
    short = await ex.create_order(PERP, "market", "sell", 0.02, None, {"newClientOrderId": "short-1"})
    assert short["symbol"] == PERP and short["status"] == "closed" and short["filled"] == 0.02
    assert short["clientOrderId"] == "short-1" and short["average"] > 0
    positions = await ex.fetch_positions([PERP])
    assert len(positions) == 1 and positions[0]["side"] == "short" and positions[0]["contracts"] == 0.02
    assert positions[0]["entryPrice"] == pytest.approx(short["average"])
    trades = await ex.fetch_my_trades(PERP)
    assert len(trades) >= 1 and trades[-1]["symbol"] == PERP and trades[-1]["fee"]["currency"] == "USDT"
    assert trades[-1]["fee"]["cost"] > 0

    ask = (await ex.fetch_bids_asks([PERP]))[PERP]["ask"]
    low = float(ex.price_to_precision(PERP, ask * 0.96))  # inside PERCENT_PRICE (mark x 0.95)
    close = await ex.create_order(PERP, "limit", "buy", 0.02, low, {"reduceOnly": True})
    assert close["status"] == "open" and close["reduceOnly"] is True and close["symbol"] == PERP
    with pytest.raises(ccxt.InvalidOrder):  # -4116 ClientOrderId is duplicated
        await ex.create_order(PERP, "limit", "buy", 0.001, low, {"newClientOrderId": close["clientOrderId"]})
    assert (await ex.cancel_order(close["id"], PERP))["status"] == "canceled"
    done = await ex.create_order(PERP, "market", "buy", 0.02, None, {"reduceOnly": True})
    assert done["status"] == "closed"
    assert await ex.fetch_positions([PERP]) == []


async def test_resting_limit_fills_when_price_crosses(ex, emu, advance) -> None:
    book = await ex.fetch_order_book("BTC/USDT", 5)
    price = book["bids"][0][0]
    order = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, price)
    assert order["status"] == "open"
    for _ in range(48):
        await advance(HOUR_MS)
        if (await ex.fetch_order(order["id"], "BTC/USDT"))["status"] == "closed":
            break
    filled = await ex.fetch_order(order["id"], "BTC/USDT")
    assert filled["status"] == "closed" and filled["filled"] == 0.001


async def test_funding_paid_at_settlement_with_sign(ex, emu, advance) -> None:
    await ex.transfer("USDT", 5000, "spot", "swap")
    await ex.create_order(PERP, "market", "sell", 0.05)
    fr = await ex.fetch_funding_rate(PERP)
    settle = fr["fundingTimestamp"]
    assert await ex.fetch_funding_history(PERP) == []
    await advance(settle - emu.clock.now_ms() + MINUTE_MS)
    paid = await ex.fetch_funding_history(PERP)
    assert len(paid) == 1 and paid[0]["timestamp"] == settle and paid[0]["code"] == "USDT"
    history = await ex.fetch_funding_rate_history(PERP, since=settle, limit=1)
    rate = history[0]["fundingRate"]
    assert history[0]["timestamp"] == settle
    # a short receives when the rate is positive and pays when it is negative
    assert (paid[0]["amount"] > 0) == (rate > 0)
    assert abs(paid[0]["amount"]) == pytest.approx(abs(rate) * 0.05 * fr["markPrice"], rel=0.05)


async def test_short_loses_margin_then_liquidates_on_price_shock(start_ms) -> None:
    scenario = {"price_shocks": [{"symbol": "BTCUSDT", "pct": 35, "at": "+1m", "duration": "1h"}]}
    clock = ManualClock(start_ms)
    async with run_emulator(symbols=("BTCUSDT",), clock=clock, scenario=scenario, tick_ms=10_000) as h:
        ex = build_client(h.connection, rateLimit=1)
        try:
            await ex.transfer("USDT", 400, "spot", "swap")
            await ex.set_leverage(20, PERP)
            await ex.create_order(PERP, "market", "sell", 0.05)  # ~4.7k notional on 400 USDT
            totals = []
            liquidated = False
            for _ in range(12):
                clock.advance(5 * MINUTE_MS)
                await h.tick()
                positions = await ex.fetch_positions([PERP])
                totals.append((await ex.fetch_balance({"type": "future"}))["USDT"]["total"])
                if not positions:
                    liquidated = True
                    break
            assert liquidated
            assert totals[0] < 400 and totals == sorted(totals, reverse=True)
            income = await ex.fapiPrivateGetIncome({"symbol": "BTCUSDT"})
            kinds = {row["incomeType"]: float(row["income"]) for row in income}
            assert kinds["REALIZED_PNL"] < -300  # the liquidation realised most of the collateral
        finally:
            await ex.close()


async def test_scenario_partial_fill_and_funding_override(start_ms) -> None:
    scenario = {
        "faults": [{"endpoint": "POST /api/v3/order", "kind": "partial_fill", "fraction": 0.5, "count": 1}],
        "funding_overrides": [{"symbol": "BTCUSDT", "rate": "0.0025", "at": "+0m"}],
    }
    async with run_emulator(symbols=("BTCUSDT",), clock=ManualClock(start_ms), scenario=scenario) as h:
        ex = build_client(h.connection, rateLimit=1)
        try:
            first = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
            assert first["filled"] == pytest.approx(0.005)
            second = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
            assert second["filled"] == pytest.approx(0.01) and second["status"] == "closed"
            await h.tick()
            assert (await ex.fetch_funding_rate(PERP))["fundingRate"] == 0.0025
        finally:
            await ex.close()


async def test_plain_http_urls_work_too(emu) -> None:
    plain = build_client(emu.connection, tls=False, rateLimit=1)
    try:
        assert (await plain.fetch_balance())["USDT"]["free"] == 100_000
    finally:
        await plain.close()


async def test_coin_m_wallet_is_separate_and_transfers_have_binances_minimum(ex, emu) -> None:
    """MAIN_CMFUTURE moves funds into the coin-M wallet: they are not USD-M margin."""
    await ex.transfer("USDT", 300, "spot", "inverse")
    assert (await ex.fetch_balance())["USDT"]["free"] == 99_700
    assert (await ex.fetch_balance({"type": "future"}))["USDT"]["total"] == 0  # USD-M untouched
    cm = await ex.dapiPrivateGetBalance()
    assert [(r["asset"], r["balance"]) for r in cm] == [("USDT", "300.00000000")]
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.transfer("USDT", 301, "inverse", "spot")
    await ex.transfer("USDT", 100, "inverse", "spot")
    assert emu.sim.coinm_balances() == {"USDT": Decimal(200)}
    with pytest.raises(ccxt.BadRequest, match="smallest transfer of USDT is 1"):
        await ex.transfer("USDT", 0.5, "spot", "swap")
    with pytest.raises(ccxt.BadRequest, match="MAIN_MARGIN is a Binance type the simulator does not model"):
        await ex.sapiPostAssetTransfer({"type": "MAIN_MARGIN", "asset": "USDT", "amount": "10"})
    assert (await ex.fetch_balance())["USDT"]["free"] == 99_800


async def test_order_below_the_symbols_real_min_notional_is_refused_like_binance(ex) -> None:
    """BTCUSDT's MIN_NOTIONAL is 100 USDT: 0.001 BTC (about 60-100 USDT) passed the invented 5 USDT."""
    await ex.transfer("USDT", 1000, "spot", "swap")
    price = (await ex.fetch_ticker(PERP))["last"]
    qty = 0.001 if 0.001 * price < 100 else None
    assert qty is not None, "the test needs a BTC price below 100,000"
    with pytest.raises(ccxt.InvalidOrder, match=r"-4164.*no smaller than 100 \(unless you choose reduce only\)"):
        await ex.create_order(PERP, "market", "sell", qty)
