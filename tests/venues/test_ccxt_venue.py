"""CcxtVenue specifics against the emulator: real ccxt errors, classification, secrets, keepalive."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import replace
from decimal import Decimal

import ccxt
import pytest

from bot.domain import HOUR_MS, Leg, funding_interval_hours
from bot.venues.ccxt_factory import build_client
from bot.venues.ccxt_venue import CcxtVenue, commission_from, filters_from_market
from bot.venues.errors import ErrorClass, classify, retry_call
from tests.waiting import wait_until

from .conftest import PAIRS, VenueEnv, open_env


async def _env(stack: AsyncExitStack, scenario: dict) -> VenueEnv:
    return await open_env("ccxt", stack, scenario=scenario)


async def test_http_429_is_ddos_protection_and_rate_limited_then_retried():
    scenario = {"faults": [{"endpoint": "GET /api/v3/depth", "code": -1003, "status": 429, "count": 2}]}
    async with AsyncExitStack() as stack:
        env = await _env(stack, scenario)
        with pytest.raises(ccxt.DDoSProtection) as err:
            await env.venue.fetch_order_book("BTC/USDT", Leg.SPOT, 5)
        assert not isinstance(err.value, ccxt.RateLimitExceeded)
        assert classify(err.value) is ErrorClass.RATE_LIMITED
        slept: list[float] = []

        async def sleep(d: float) -> None:
            slept.append(d)

        import random

        book = await retry_call(
            lambda: env.venue.fetch_order_book("BTC/USDT", Leg.SPOT, 5), rng=random.Random(3), sleep=sleep
        )
        assert book.bids and len(slept) == 1 and slept[0] >= 5.0


async def test_wrong_api_key_is_authentication_error_and_fatal():
    async with AsyncExitStack() as stack:
        env = await open_env("ccxt", stack)
        conn = {**env.handle.connection, "api_key": "x" * 64}
        bad = CcxtVenue(build_client(conn, pro=True, tls=True, rateLimit=1), time_resync_s=0)
        stack.push_async_callback(bad.close)
        with pytest.raises(ccxt.AuthenticationError) as err:
            await bad.fetch_balances()
        assert classify(err.value) is ErrorClass.FATAL
        assert "x" * 64 not in bad.safe_text(err.value)


async def test_server_busy_503_is_retryable_even_for_writes():
    scenario = {"faults": [{"endpoint": "POST /fapi/v1/order", "kind": "503", "count": 1}]}
    async with AsyncExitStack() as stack:
        env = await _env(stack, scenario)
        await env.venue.transfer("USDT", Decimal(1000), "spot", "futures")
        from bot.domain import Side
        from bot.venues.base import OrderRequest

        req = OrderRequest("busy-1", "BTC/USDT", Leg.PERP, Side.SELL, "market", Decimal("0.01"))
        with pytest.raises(ccxt.OperationFailed) as err:
            await env.venue.create_order(req)
        assert classify(err.value, mutating=True) is ErrorClass.RETRYABLE
        assert await env.venue.fetch_order("BTC/USDT", Leg.PERP, "busy-1") is None  # never executed


@pytest.mark.slow
async def test_timeout_on_signed_call_unknown_state_and_text_hides_signature():
    scenario = {"faults": [{"endpoint": "GET /api/v3/account", "kind": "latency", "latency_ms": 3000, "count": 1}]}
    async with AsyncExitStack() as stack:
        env = await _env(stack, scenario)
        conn = env.handle.connection
        slow = CcxtVenue(build_client(conn, pro=True, tls=True, rateLimit=1, timeout=300), time_resync_s=0)
        stack.push_async_callback(slow.close)
        with pytest.raises(ccxt.RequestTimeout) as err:
            await slow.fetch_balances()
        raw = str(err.value)
        assert "signature=" in raw  # ccxt puts the signed URL into the message ...
        text = slow.safe_text(err.value)
        assert "signature=***" in text and conn["api_key"] not in text and conn["secret"] not in text
        signature = raw.split("signature=")[1].split("&")[0].split()[0]
        assert signature not in text  # ... and safe_error_text removes it
        assert classify(err.value, mutating=True) is ErrorClass.UNKNOWN_STATE
        assert classify(err.value) is ErrorClass.RETRYABLE


@pytest.mark.slow
async def test_listen_key_keepalive_keeps_the_user_stream_alive():
    async with AsyncExitStack() as stack:
        env = await _env(stack, {"listen_key_ttl_s": 1.0})
        client = env.venue.client
        watcher = asyncio.create_task(client.watch_orders("BTC/USDT:USDT"))
        stack.callback(watcher.cancel)
        key = await wait_until(lambda: (client.options.get("linear") or {}).get("listenKey"), "a listen key")
        env.venue.start_user_stream_keepalive(0.2)
        # 8 keepalives, 1.6 s: well past the 1 s TTL
        await wait_until(lambda: env.venue.keepalives_sent >= 8, "8 keepalives", interval_s=0.05)
        assert env.handle.emulator.hub.listen_keys.is_active(key)


async def test_spot_market_buy_is_sent_with_quantity_not_quote_qty(ccxt_env: VenueEnv):
    from bot.domain import Side
    from bot.venues.base import OrderRequest

    state = await ccxt_env.venue.create_order(
        OrderRequest("qty-1", "ETH/USDT", Leg.SPOT, Side.BUY, "market", Decimal("0.0137"))
    )
    assert state.qty == Decimal("0.0137") == state.filled  # a quoteOrderQty order would size itself


async def test_filters_and_intervals_from_raw_strings(ccxt_env: VenueEnv):
    markets = await ccxt_env.venue.client.load_markets()
    f = filters_from_market(markets["ETH/USDT:USDT"])
    assert f.tick_size == Decimal("0.01") and str(f.step_size) == "0.001"
    assert funding_interval_hours(0, 8 * HOUR_MS + 3) == 8
    assert funding_interval_hours(0, 8 * HOUR_MS + 600_000) is None
    assert funding_interval_hours(0, 0) is None
    pairs = await ccxt_env.venue.load_markets(PAIRS)
    assert pairs["BTC/USDT"].funding_interval_hours == 8


async def test_time_offset_is_computed_once_when_resync_is_off(ccxt_env: VenueEnv):
    venue = CcxtVenue(ccxt_env.venue.client, time_resync_s=None, wall_ms=lambda: 1_000)
    first = await venue.now_ms()
    assert first == ccxt_env.clock.now_ms()
    ccxt_env.clock.advance(5_000)
    assert await venue.now_ms() == first  # local clock did not move; no new server call


async def test_watch_marks_falls_back_to_polling_when_the_stream_fails(ccxt_env: VenueEnv):
    conn = ccxt_env.handle.connection
    dead_ws = {"urls": {"api": {"ws": {"linear": "wss://127.0.0.1:9/fstream/ws"}}}}
    client = build_client(conn, pro=True, tls=True, rateLimit=1, **dead_ws)
    venue = CcxtVenue(client, time_resync_s=0, mark_poll_interval_s=0.01, stream_retry_s=30)
    try:
        stream = venue.watch_marks(["BTC/USDT", "ETH/USDT"])
        first = await asyncio.wait_for(anext(stream), 20)
        second = await asyncio.wait_for(anext(stream), 20)
        await stream.aclose()
    finally:
        await venue.close()
    assert {first.symbol, second.symbol} == {"BTC/USDT", "ETH/USDT"}
    funding = await ccxt_env.venue.fetch_funding(["BTC/USDT"])
    polled = first if first.symbol == "BTC/USDT" else second
    assert polled.mark_price == funding["BTC/USDT"].mark_price
    assert polled.next_funding_ms == funding["BTC/USDT"].next_funding_ms


async def test_mark_polling_waits_out_a_ban_instead_of_polling_through_it():
    """During a 418 the fallback poll asked again every 5 s; on Binance every request during a ban
    extends it. Now the poll says how long to wait: until the ban's end, or a growing backoff on 429."""
    import time

    until = int(time.time() * 1000) + 40_000
    scenario = {
        "faults": [
            {
                "endpoint": "GET /fapi/v1/premiumIndex",
                "code": -1003,
                "status": 418,
                "msg": f"Way too many requests; IP banned until {until}.",
                "count": 1,
            },
            {"endpoint": "GET /fapi/v1/premiumIndex", "code": -1003, "status": 429, "count": 2},
        ]
    }
    async with AsyncExitStack() as stack:
        env = await _env(stack, scenario)
        venue = env.venue
        updates, pause = await venue._poll_marks(["BTC/USDT:USDT"])
        assert updates == [] and 35 < pause <= 41
        _, first = await venue._poll_marks(["BTC/USDT:USDT"])
        _, second = await venue._poll_marks(["BTC/USDT:USDT"])
        assert (first, second) == (10.0, 20.0)  # the 2nd and 3rd limited polls in a row
        updates, pause = await venue._poll_marks(["BTC/USDT:USDT"])
        assert updates and pause == 0.0


@pytest.mark.parametrize("kind", ["truncate", "empty", "null", "garbage"])
async def test_garbled_answer_of_an_executed_order_is_unknown_and_found_by_client_id(kind: str):
    scenario = {"faults": [{"endpoint": "POST /fapi/v1/order", "kind": kind, "after": True, "count": 1}]}
    async with AsyncExitStack() as stack:
        env = await _env(stack, scenario)
        await env.venue.transfer("USDT", Decimal(1000), "spot", "futures")
        from bot.domain import Side
        from bot.venues.base import OrderRequest

        req = OrderRequest("lost-1", "BTC/USDT", Leg.PERP, Side.SELL, "market", Decimal("0.01"))
        with pytest.raises(ccxt.BadResponse) as err:
            await env.venue.create_order(req)
        assert "order lost-1" in str(err.value) and "did not parse" in str(err.value)
        assert classify(err.value, mutating=True) is ErrorClass.UNKNOWN_STATE
        found = await env.venue.fetch_order("BTC/USDT", Leg.PERP, "lost-1")
        assert found is not None and found.status == "closed" and found.filled == Decimal("0.01")


@pytest.mark.parametrize("kind", ["truncate", "empty", "null", "garbage"])
async def test_position_read_that_does_not_parse_raises_retryable_never_no_position(kind: str):
    scenario = {"faults": [{"endpoint": "GET /fapi/v3/positionRisk", "kind": kind, "count": 1}]}
    async with AsyncExitStack() as stack:
        env = await _env(stack, scenario)
        await env.venue.transfer("USDT", Decimal(1000), "spot", "futures")
        from bot.domain import Side
        from bot.venues.base import OrderRequest

        await env.venue.create_order(OrderRequest("p-1", "BTC/USDT", Leg.PERP, Side.SELL, "market", Decimal("0.01")))
        with pytest.raises(ccxt.BadResponse) as err:
            await env.venue.fetch_positions(PAIRS)
        assert classify(err.value) is ErrorClass.RETRYABLE
        positions = await env.venue.fetch_positions(PAIRS)  # the next read is whole
        assert positions["BTC/USDT"].qty == Decimal("-0.01") and positions["BTC/USDT"].margin_mode == "cross"


async def test_commission_rates_and_bnb_burn_read_and_set(venue_env) -> None:
    """Both venues report the account's own rates (the simulator's, through ccxt's
    privateGetAccountCommission / fapiPrivateGetCommissionRate for CcxtVenue) and toggle spotBNBBurn."""
    v = venue_env.venue
    sim = venue_env.sim
    sim.config = replace(sim.config, spot_maker_fee=Decimal("0.0009"), perp_taker_fee=Decimal("0.00045"))
    rates = await v.fetch_commission(["BTC/USDT", "ETH/USDT", "NOPE/USDT"])
    assert set(rates) == {"BTC/USDT", "ETH/USDT"}  # a symbol the venue does not list is left out
    r = rates["BTC/USDT"]
    assert (r.spot_maker, r.spot_taker, r.perp_maker, r.perp_taker) == (
        Decimal("0.0009"),
        Decimal("0.001"),
        Decimal("0.0002"),
        Decimal("0.00045"),
    )
    assert r.spot_taker_bnb == Decimal("0.00075")  # Binance's 25% discount while BNB pays
    assert await v.fetch_bnb_burn() is False
    assert await v.set_bnb_burn(True) is True
    assert sim.bnb_burn and await v.fetch_bnb_burn() is True
    assert await v.set_bnb_burn(False) is False


def test_commission_adds_special_and_tax_and_discounts_the_standard_part() -> None:
    """Binance's documented example: standard + special + tax; BNB discounts only the standard part."""
    spot = {
        "symbol": "BTCUSDT",
        "standardCommission": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0", "seller": "0"},
        "specialCommission": {"maker": "0.00010000", "taker": "0.00020000", "buyer": "0", "seller": "0"},
        "taxCommission": {"maker": "0.00000112", "taker": "0.00000114", "buyer": "0", "seller": "0"},
        "discount": {"enabledForAccount": True, "enabledForSymbol": True, "discountAsset": "BNB", "discount": "0.75"},
    }
    perp = {"symbol": "BTCUSDT", "makerCommissionRate": "0.0002", "takerCommissionRate": "0.0004"}
    r = commission_from("BTC/USDT", spot, perp)
    assert r.spot_taker == Decimal("0.00120114")
    assert r.spot_taker_bnb == Decimal("0.00075") + Decimal("0.00020114")
    off = commission_from("BTC/USDT", {**spot, "discount": {**spot["discount"], "enabledForSymbol": False}}, perp)
    assert off.spot_taker_bnb == off.spot_taker
    with pytest.raises(ccxt.BadResponse, match="standardCommission"):
        commission_from("BTC/USDT", {"symbol": "BTCUSDT"}, perp)
