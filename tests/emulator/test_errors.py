"""Each Binance error reaches ccxt as the exception class production raises (TLS user-info URLs)."""

from __future__ import annotations

import ccxt
import pytest

from bot.emulator.server import run_emulator
from bot.sim.clock import ManualClock
from bot.venues.ccxt_factory import build_client

PERP = "BTC/USDT:USDT"


async def _raises(exc: type[Exception], coro) -> Exception:
    with pytest.raises(exc) as info:
        await coro
    return info.value


@pytest.mark.slow
async def test_insufficient_funds_codes(ex) -> None:
    e = await _raises(ccxt.InsufficientFunds, ex.create_order("BTC/USDT", "market", "buy", 5))  # -2010
    assert "Account has insufficient balance" in str(e)
    e = await _raises(ccxt.InsufficientFunds, ex.create_order(PERP, "market", "sell", 0.01))  # no margin
    assert "-2019" in str(e)
    e = await _raises(ccxt.InsufficientFunds, ex.transfer("USDT", 1_000_000, "spot", "swap"))
    assert "-5013" in str(e)


async def test_invalid_order_codes(ex) -> None:
    await ex.transfer("USDT", 1000, "spot", "swap")
    e = await _raises(ccxt.InvalidOrder, ex.create_order("ETH/USDT:USDT", "market", "buy", 0.001))
    assert "-4164" in str(e)
    e = await _raises(ccxt.InvalidOrder, ex.create_order("BTC/USDT", "market", "sell", 9_500_000))
    assert "LOT_SIZE" in str(e)
    e = await _raises(ccxt.InvalidOrder, ex.create_order(PERP, "market", "buy", 0.01, None, {"reduceOnly": True}))
    assert "-2022" in str(e)


async def test_min_notional_is_bad_request_not_invalid_order(ex) -> None:
    e = await _raises(ccxt.BadRequest, ex.create_order("BTC/USDT", "market", "buy", 0.00002))
    assert "NOTIONAL" in str(e) and not isinstance(e, ccxt.InvalidOrder)


@pytest.mark.parametrize("symbol", ["BTC/USDT", PERP])
async def test_unknown_orders(ex, symbol: str) -> None:
    e = await _raises(ccxt.OrderNotFound, ex.cancel_order("999999", symbol))
    assert "-2011" in str(e)
    e = await _raises(ccxt.OrderNotFound, ex.fetch_order("999999", symbol))
    assert "-2013" in str(e)


@pytest.mark.slow
async def test_bad_signature_and_bad_key(emu) -> None:
    bad_secret = build_client(emu.connection, rateLimit=1, secret="0" * 64)
    bad_key = build_client(emu.connection, rateLimit=1, apiKey="nope")
    unknown_key = build_client(emu.connection, rateLimit=1, apiKey="Z" * 64)
    try:
        e = await _raises(ccxt.AuthenticationError, bad_secret.fetch_balance())
        assert "-1022" in str(e)
        e = await _raises(ccxt.AuthenticationError, bad_key.fetch_balance())
        assert "-2014" in str(e)  # Binance: "API-key format invalid."
        e = await _raises(ccxt.AuthenticationError, unknown_key.fetch_balance())
        assert "-2015" in str(e)
    finally:
        await bad_secret.close()
        await bad_key.close()
        await unknown_key.close()


async def test_timestamp_outside_recv_window(emu) -> None:
    late = build_client(emu.connection, rateLimit=1, options={"timeDifference": 60_000})
    try:
        e = await _raises(ccxt.InvalidNonce, late.fetch_balance())
        assert "-1021" in str(e)
    finally:
        await late.close()


async def test_not_emulated_endpoint_is_exchange_not_available(ex) -> None:
    await _raises(ccxt.ExchangeNotAvailable, ex.dapiPublicGetPing())


async def test_rate_limit_429_then_ban_418(start_ms) -> None:
    scenario = {"rate_limits": {"per_minute": {"api": 30}, "ban_after": 1, "ban_seconds": 60}}
    async with run_emulator(symbols=("BTCUSDT",), clock=ManualClock(start_ms), scenario=scenario) as h:
        ex = build_client(h.connection, rateLimit=1)
        try:
            await ex.load_markets()  # spot exchangeInfo weighs 20
            seen = []
            for _ in range(12):
                try:
                    await ex.fetch_ticker("BTC/USDT")
                except ccxt.DDoSProtection as e:
                    seen.append("418" if "banned until" in str(e) else "429")
                    if seen[-1] == "418":
                        break
            assert seen[0] == "429" and seen[-1] == "418"
            assert not isinstance(ccxt.DDoSProtection("x"), ccxt.RateLimitExceeded)
            await _raises(ccxt.DDoSProtection, ex.fetch_time())  # banned for every spot call
        finally:
            await ex.close()


async def test_injected_server_faults(start_ms) -> None:
    scenario = {
        "faults": [
            {"endpoint": "GET /fapi/v1/premiumIndex", "kind": "503"},
            {"endpoint": "GET /fapi/v1/ticker/24hr", "kind": "timeout", "hang_ms": 50},
            {"endpoint": "GET /api/v3/ticker/24hr", "kind": "502"},
            {"endpoint": "POST /sapi/v1/asset/transfer", "code": -5013, "count": 1},
        ]
    }
    async with run_emulator(symbols=("BTCUSDT",), clock=ManualClock(start_ms), scenario=scenario) as h:
        ex = build_client(h.connection, rateLimit=1)
        try:
            e = await _raises(ccxt.OperationFailed, ex.fetch_funding_rate(PERP))
            assert "-1008" in str(e)
            e = await _raises(ccxt.RequestTimeout, ex.fetch_ticker(PERP))
            assert "-1007" in str(e)
            await _raises(ccxt.ExchangeNotAvailable, ex.fetch_ticker("BTC/USDT"))
            await _raises(ccxt.InsufficientFunds, ex.transfer("USDT", 10, "spot", "swap"))
            await ex.transfer("USDT", 10, "spot", "swap")  # the fault fired once (count = 1)
            assert (await ex.fetch_balance({"type": "future"}))["USDT"]["total"] == 10
        finally:
            await ex.close()
