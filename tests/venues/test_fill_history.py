"""Trade history as Binance serves it (the emulator's rules) and ``CcxtVenue.fetch_fills`` reaching all of it.

ccxt 4.5.90 caps a USD-M ``fetchMyTrades`` at since + 7 days, and Binance's userTrades never spans more
than 7 days, so a pair's fills read from its opening missed every trade a week later.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal

import ccxt
import pytest

from bot.domain import DAY_MS, HOUR_MS, Leg, Side
from bot.venues.base import OrderRequest

from .conftest import VenueEnv, open_env

PERP = "BTC/USDT:USDT"


async def _trade(env: VenueEnv, cid: str, leg: Leg, side: Side, qty: str) -> str:
    state = await env.venue.create_order(OrderRequest(cid, "BTC/USDT", leg, side, "market", Decimal(qty)))
    assert state.filled == Decimal(qty)
    return state.venue_order_id


@pytest.fixture
async def env():
    async with AsyncExitStack() as stack:
        env = await open_env("ccxt", stack)
        await env.venue.transfer("USDT", Decimal(4000), "spot", "futures")
        yield env


async def test_fills_made_8_6_days_after_since_are_all_fetched(env: VenueEnv) -> None:
    since = env.clock.now_ms()
    first = {
        leg: await _trade(env, f"a-{leg.value}", leg, Side.BUY if leg is Leg.SPOT else Side.SELL, "0.01")
        for leg in (Leg.SPOT, Leg.PERP)
    }
    await env.advance(int(8.6 * DAY_MS))
    later = []
    for i in range(2):
        later.append(await _trade(env, f"b-{i}", Leg.PERP, Side.SELL, "0.01"))
        await _trade(env, f"s-{i}", Leg.SPOT, Side.BUY, "0.01")
    perp = await env.venue.fetch_fills("BTC/USDT", Leg.PERP, since_ms=since)
    assert [f.venue_order_id for f in perp] == [first[Leg.PERP], *later]
    assert all(f.leg is Leg.PERP and f.side is Side.SELL for f in perp)
    spot = await env.venue.fetch_fills("BTC/USDT", Leg.SPOT, since_ms=since)
    assert len(spot) == 3 and spot[0].venue_order_id == first[Leg.SPOT]
    # only what is at or after since; nothing at all once since is past the last trade
    tail = await env.venue.fetch_fills("BTC/USDT", Leg.PERP, since_ms=perp[1].ts_ms)
    assert [f.venue_trade_id for f in tail] == [f.venue_trade_id for f in perp[1:]]
    assert await env.venue.fetch_fills("BTC/USDT", Leg.PERP, since_ms=env.clock.now_ms() + 1) == []
    assert len(await env.venue.fetch_fills("BTC/USDT", Leg.PERP)) == 3  # no since: the whole history


async def test_the_emulator_answers_trade_lists_with_binances_rules(env: VenueEnv) -> None:
    client = env.venue.client
    await _trade(env, "p-1", Leg.PERP, Side.SELL, "0.01")
    t0 = env.clock.now_ms()
    await env.advance(8 * DAY_MS)
    await _trade(env, "p-2", Leg.PERP, Side.SELL, "0.01")
    await _trade(env, "s-1", Leg.SPOT, Side.BUY, "0.01")
    week = 7 * 24 * HOUR_MS
    with pytest.raises(ccxt.BadRequest, match="-1127"):  # USD-M: a span longer than 7 days
        await client.fetch_my_trades(PERP, t0 - 1, 10, {"endTime": t0 + week})
    with pytest.raises(ccxt.BadRequest, match="-1127"):  # spot: longer than 24 hours
        await client.fetch_my_trades("BTC/USDT", t0, 10, {"endTime": t0 + 25 * HOUR_MS})
    for market in (PERP, "BTC/USDT"):  # fromId never with a time
        with pytest.raises(ccxt.BadRequest, match="-1128"):
            await client.fetch_my_trades(market, t0, 10, {"fromId": 0})
    # USD-M: startTime alone is a 7-day window from it; no time at all is the last 7 days
    raw = await client.fapiPrivateGetUserTrades({"symbol": "BTCUSDT", "startTime": t0 - 60_000})
    assert len(raw) == 1
    assert len(await client.fapiPrivateGetUserTrades({"symbol": "BTCUSDT"})) == 1
    # fromId pages the whole history, oldest first, ``limit`` at a time
    page = await client.fapiPrivateGetUserTrades({"symbol": "BTCUSDT", "fromId": 0, "limit": 1})
    rest = await client.fapiPrivateGetUserTrades({"symbol": "BTCUSDT", "fromId": int(page[0]["id"]) + 1})
    assert [r["orderId"] for r in page + rest] == sorted(r["orderId"] for r in page + rest) and len(rest) == 1


async def test_a_full_page_is_followed_by_the_next_one_by_trade_id(
    env: VenueEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.venues import ccxt_venue

    since = env.clock.now_ms()
    ids = [await _trade(env, f"p-{i}", Leg.PERP, Side.SELL, "0.01") for i in range(5)]
    monkeypatch.setattr(ccxt_venue, "_PAGE", 2)  # five trades: pages of 2, 2 and 1
    fills = await env.venue.fetch_fills("BTC/USDT", Leg.PERP, since_ms=since)
    assert [f.venue_order_id for f in fills] == ids
